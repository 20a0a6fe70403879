package engine

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// memDriver is a Driver in memory: the engine's rules are tested here
// without a database; the stores' conformance suite tests them with one.
type memDriver struct {
	mu        sync.Mutex
	log       []Row // in log order
	records   map[string][]byte
	feed      map[int64]Logged
	watermark Position
	totals    ledger.TotalsChange
	minutes   map[int64]ledger.Minute
	due       map[string]int64 // Saved.DueAt of the records due
	outbox    []Outbound       // never reset, as the stores' outbox
	reads     int              // ReadLog calls
	follower  bool             // ReadLog answers ErrNotLeader
	failSave  error            // Save fails with it
	// removedOnce: recordings were removed since the engine cached them
	// (ledger.Remover): the next Save fails with ErrRemoved.
	removedOnce bool
	// saving, when set, receives once when a Save begins, which then
	// waits for its context to end and fails with its error (a save cut
	// short by shutdown).
	saving chan struct{}
}

func newMemDriver() *memDriver {
	return &memDriver{records: map[string][]byte{}, feed: map[int64]Logged{}, totals: ledger.TotalsChange{}, minutes: map[int64]ledger.Minute{}, due: map[string]int64{}}
}

func (d *memDriver) DueRecords(_ context.Context, now int64, limit int) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for id, at := range d.due {
		if at <= now {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b string) int { return cmp.Or(cmp.Compare(d.due[a], d.due[b]), strings.Compare(a, b)) })
	return ids[:min(limit, len(ids))], nil
}

// add logs a body, numbering rows as SQLite does (numbered: Seq = ID) or
// not (PostgreSQL: the engine numbers them).
func (d *memDriver) add(body []byte, at int64, numbered bool) Row {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := int64(len(d.log) + 1)
	r := Row{Log: LogPos{ID: id}, ReceivedAt: at, Body: body}
	if numbered {
		r.Seq = id
	} else {
		r.Log.Tx = uint64(id) // any order consistent with ID
	}
	d.log = append(d.log, r)
	return r
}

func (d *memDriver) ReadLog(_ context.Context, after LogPos, limit int) ([]Row, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reads++
	if d.follower {
		return nil, ErrNotLeader
	}
	var out []Row
	for _, r := range d.log {
		if after.Less(r.Log) && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (d *memDriver) LoadRecords(_ context.Context, ids []string) (map[string][]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string][]byte{}
	for _, id := range ids {
		if b, ok := d.records[id]; ok {
			out[id] = b
		}
	}
	return out, nil
}

func (d *memDriver) Save(ctx context.Context, b *Batch) error {
	d.mu.Lock()
	if saving := d.saving; saving != nil {
		d.saving = nil
		d.mu.Unlock()
		saving <- struct{}{}
		<-ctx.Done()
		return fmt.Errorf("save: %w", ctx.Err())
	}
	defer d.mu.Unlock()
	if d.failSave != nil {
		return d.failSave
	}
	if d.removedOnce {
		d.removedOnce = false
		return ErrRemoved
	}
	if d.watermark != b.From {
		return ErrMoved
	}
	for _, s := range b.Records {
		id := s.Record.State.RecordID
		d.records[id] = s.Blob
		if s.DueBefore != d.due[id] {
			return fmt.Errorf("record %s: DueBefore %d, stored %d", id, s.DueBefore, d.due[id])
		}
		if s.DueAt == 0 {
			delete(d.due, id)
		} else {
			d.due[id] = s.DueAt
		}
	}
	d.outbox = append(d.outbox, b.Outbound...)
	for _, e := range b.Events {
		if _, ok := d.feed[e.Seq]; ok {
			return fmt.Errorf("seq %d given twice", e.Seq)
		}
		d.feed[e.Seq] = e
	}
	for k, t := range b.Totals {
		c := d.totals[k]
		c.Recordings += t.Recordings
		c.PendingFiles += t.PendingFiles
		d.totals[k] = c
	}
	for _, m := range b.Minutes {
		c := d.minutes[m.Start]
		c.Start = m.Start
		c.Callbacks += m.Callbacks
		c.Duplicates += m.Duplicates
		d.minutes[m.Start] = c
	}
	d.watermark = b.To
	return nil
}

func (d *memDriver) Watermark(context.Context) (Position, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.watermark, nil
}

func (d *memDriver) Reset(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.records, d.feed, d.watermark, d.due = map[string][]byte{}, map[int64]Logged{}, Position{}, map[string]int64{}
	d.totals, d.minutes = ledger.TotalsChange{}, map[int64]ledger.Minute{}
	return nil
}

var base = time.UnixMilli(1_700_000_000_000)

func body(recordID string, typ rc.Type, offset time.Duration, file string, code int) []byte {
	out := ""
	if file != "" {
		out = fmt.Sprintf(`,"output":{"fileName":%q,"fileSize":1000,"fileUrl":"https://oss/%s"}`, file, file)
	}
	return fmt.Appendf(nil, `{"appKey":"app","recordId":%q,"roomId":"room","sessionId":"sess","userId":"u1","type":%d,"timestamp":%d,"code":%d,"mode":0%s}`,
		recordID, typ, base.Add(offset).UnixMilli(), code, out)
}

// recording is a start, segments, an end and uploads of one recording.
func recording(id string, segments int) [][]byte {
	out := [][]byte{body(id, rc.TypeStart, 0, "", 200)}
	for i := range segments {
		name := fmt.Sprintf("sess_room_u1_%s_%d.mp4", id, i)
		out = append(out, body(id, rc.TypeSegment, time.Duration(i+1)*time.Minute, name, 200),
			body(id, rc.TypeUpload, time.Duration(i+1)*time.Minute+time.Second, name, 200))
	}
	return append(out, body(id, rc.TypeEnd, time.Hour, "", 200))
}

func start(t *testing.T, d Driver, o Options) *Engine {
	t.Helper()
	e := New(d, o)
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e
}

func mustParse(t testing.TB, b []byte) rc.Callback {
	t.Helper()
	cb, err := rc.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

// TestDuplicatesAndFold: every row gets a feed seq in log order; a row
// whose identity a recording already logged is a duplicate and folds
// nothing; the records hold Apply's state over the originals.
func TestDuplicatesAndFold(t *testing.T) {
	for _, numbered := range []bool{true, false} {
		t.Run(fmt.Sprint("numbered=", numbered), func(t *testing.T) {
			d := newMemDriver()
			bodies := append(recording("r1", 2), recording("r2", 1)...)
			bodies = append(bodies, bodies[1], bodies[3], bodies[1]) // redeliveries
			// Another code is another callback, not a duplicate.
			bodies = append(bodies, body("r1", rc.TypeEnd, time.Hour, "", 500))
			want := map[string]ledger.State{}
			var wantDup []bool
			seen := map[string]bool{}
			for i, b := range bodies {
				d.add(b, base.UnixMilli()+int64(i), numbered)
				cb := mustParse(t, b)
				dup := seen[string(b)]
				seen[string(b)] = true
				wantDup = append(wantDup, dup)
				if !dup {
					want[cb.RecordID] = ledger.Apply(want[cb.RecordID], cb, base.UnixMilli()+int64(i))
				}
			}
			e := start(t, d, Options{Batch: 3}) // batches cut recordings apart
			for seq := int64(1); seq <= int64(len(bodies)); seq++ {
				l, ok := d.feed[seq]
				if !ok || l.Duplicate != wantDup[seq-1] || l.Log.ID != seq {
					t.Errorf("feed seq %d = %+v (%v), want log id %d, duplicate %v", seq, l, ok, seq, wantDup[seq-1])
				}
			}
			if got := e.Projected(); got.Seq != int64(len(bodies)) {
				t.Errorf("projected %+v, want seq %d", got, len(bodies))
			}
			for id, st := range want {
				r, err := DecodeRecord(d.records[id])
				if err != nil {
					t.Fatal(err)
				}
				if diff := gocmp.Diff(st, r.State); diff != "" {
					t.Errorf("%s (-Apply +engine):\n%s", id, diff)
				}
				if r.FirstSeq != map[string]int64{"r1": 1, "r2": 7}[id] {
					t.Errorf("%s first seq %d", id, r.FirstSeq)
				}
			}
			var dups int64
			for _, m := range d.minutes {
				dups += m.Duplicates
			}
			if dups != 3 {
				t.Errorf("activity counts %d duplicates, want 3", dups)
			}
		})
	}
}

// TestRebuildGivesTheSameBytes: records built live, in steps of any size
// and with the cache, equal a rebuild's byte for byte, what they announced
// included: callbacks come 7 s apart, so recordings settle and are
// completed by the periodic pass between some callbacks and others.
func TestRebuildGivesTheSameBytes(t *testing.T) {
	d := newMemDriver()
	var bodies [][]byte
	for i := range 12 {
		bodies = append(bodies, recording(fmt.Sprint("rb-", i), i%4)...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
	for i := range 10 { // redeliveries
		bodies = append(bodies, bodies[rng.IntN(len(bodies))])
		_ = i
	}
	// Files that come late, after their recordings were completed: a
	// rebuild must announce the completed before them, as live did.
	for i := range 12 {
		name := fmt.Sprintf("late-%d.mp4", i)
		bodies = append(bodies, body(fmt.Sprint("rb-", i), rc.TypeSegment, 2*time.Hour, name, 200),
			body(fmt.Sprint("rb-", i), rc.TypeUpload, 2*time.Hour, name, 200))
	}
	var clock time.Time
	e := start(t, d, Options{Batch: 5, Due: time.Nanosecond, Now: func() time.Time { return clock }})
	e.SetOutbound(true)
	for i, b := range bodies {
		clock = base.Add(time.Duration(i) * 7 * time.Second)
		d.add(b, clock.UnixMilli(), true)
		if rng.IntN(4) == 0 {
			if err := e.catchUp(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := e.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	completed := 0
	for _, o := range d.outbox {
		if o.Type == string(delivery.Completed) {
			completed++
		}
	}
	if completed == 0 {
		t.Fatal("no recording was completed live: the test would not show the periodic pass")
	}
	live, feed, totals, outbox := maps.Clone(d.records), maps.Clone(d.feed), maps.Clone(d.totals), len(d.outbox)
	n, err := e.Rebuild(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(bodies)-10) {
		t.Errorf("Rebuild applied %d, want %d originals", n, len(bodies)-10)
	}
	if len(live) != 12 || !maps.EqualFunc(live, d.records, bytes.Equal) {
		t.Errorf("rebuilt records differ from the live ones")
	}
	if len(d.outbox) != outbox {
		t.Errorf("the rebuild announced %d events again", len(d.outbox)-outbox)
	}
	if diff := gocmp.Diff(feed, d.feed); diff != "" {
		t.Errorf("rebuilt feed (-live +rebuilt):\n%s", diff)
	}
	nonzero := func(c ledger.TotalsChange) ledger.TotalsChange {
		maps.DeleteFunc(c, func(_ ledger.TotalKey, t ledger.Total) bool { return t == ledger.Total{} })
		return c
	}
	if diff := gocmp.Diff(nonzero(totals), nonzero(d.totals)); diff != "" {
		t.Errorf("rebuilt totals (-live +rebuilt):\n%s", diff)
	}
}

// TestHandedRowsAndGaps: rows handed over with their parsed callbacks are
// projected from memory; where the hand-over has a gap (a restart, a
// failure) the engine reads the log, in order, and uses memory again where
// it continues.
func TestHandedRowsAndGaps(t *testing.T) {
	d := newMemDriver()
	e := start(t, d, Options{Batch: 100})
	var rows []Row
	var cbs []rc.Callback
	for i := range 8 {
		b := body(fmt.Sprint("gap-", i), rc.TypeStart, 0, "", 200)
		rows = append(rows, d.add(b, base.UnixMilli(), true))
		cbs = append(cbs, mustParse(t, b))
	}
	// Only the last four are handed over; the callbacks handed say
	// "memory-" so that the test sees where each came from.
	for i := 4; i < 8; i++ {
		cbs[i] = mustParse(t, body(fmt.Sprint("memory-", i), rc.TypeStart, 0, "", 200))
	}
	e.Committed(rows[4:], cbs[4:])
	reads := d.reads
	if err := e.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d.reads == reads {
		t.Error("the gap was not read from the log")
	}
	for i := range 8 {
		want := fmt.Sprint("gap-", i)
		if i >= 4 {
			want = fmt.Sprint("memory-", i)
		}
		if _, ok := d.records[want]; !ok {
			t.Errorf("seq %d: no record %s; records: %v", i+1, want, slices.Sorted(maps.Keys(d.records)))
		}
	}
}

// TestMovedWatermark: when another projector moved the watermark, the
// step fails without applying anything, and the engine continues from the
// stored watermark.
func TestMovedWatermark(t *testing.T) {
	d := newMemDriver()
	e := start(t, d, Options{})
	for i, b := range recording("mv", 2) {
		d.add(b, base.UnixMilli()+int64(i), true)
	}
	// Another projector applied the first three rows meanwhile.
	other := New(d, Options{Batch: 3})
	if _, err := other.step(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	e.cache.put(&Record{State: ledger.State{RecordID: "mv"}}) // stale
	if _, err := e.step(context.Background(), 100); !errors.Is(err, ErrMoved) {
		t.Fatalf("step over a moved watermark: %v, want ErrMoved", err)
	}
	if err := e.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := DecodeRecord(d.records["mv"])
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Events) != 6 || e.Projected().Seq != 6 {
		t.Errorf("after the move: %d events in the record, projected %d; want 6 and 6", len(r.Events), e.Projected().Seq)
	}
}

// TestFollowerFresh: an instance that does not project answers a read
// once the projecting one has passed its rows, polling the watermark and
// nudging the projector.
func TestFollowerFresh(t *testing.T) {
	d := newMemDriver()
	d.follower = true
	nudged := make(chan struct{}, 100)
	e := start(t, d, Options{Poll: time.Millisecond, Nudge: func() { nudged <- struct{}{} }})
	r := d.add(body("f", rc.TypeStart, 0, "", 200), base.UnixMilli(), false)
	e.Committed([]Row{r}, nil)
	if n, err := e.step(context.Background(), 10); n != 0 || !errors.Is(err, ErrNotLeader) || !e.Following() {
		t.Fatalf("step on a follower = %d, %v (following %v)", n, err, e.Following())
	}
	leader := New(&leaderView{d}, Options{})
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- e.Fresh(ctx)
	}()
	<-nudged
	if err := leader.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Fresh on the follower: %v", err)
	}
	if e.Projected().Seq != 1 {
		t.Errorf("follower's position %+v", e.Projected())
	}
}

// leaderView is the same driver, seen by the instance that projects.
type leaderView struct{ *memDriver }

func (l *leaderView) ReadLog(ctx context.Context, after LogPos, limit int) ([]Row, error) {
	l.mu.Lock()
	l.follower = false
	l.mu.Unlock()
	defer func() { l.mu.Lock(); l.follower = true; l.mu.Unlock() }()
	return l.memDriver.ReadLog(ctx, after, limit)
}

// TestUnparseableRow: a logged body that no longer parses keeps its feed
// seq and folds nothing; the rows after it are projected.
func TestUnparseableRow(t *testing.T) {
	d := newMemDriver()
	d.add([]byte(`{"not":"a callback"}`), base.UnixMilli(), true)
	d.add(body("after", rc.TypeStart, 0, "", 200), base.UnixMilli(), true)
	start(t, d, Options{})
	if l := d.feed[1]; l.RecordID != "" || l.Duplicate {
		t.Errorf("feed seq 1 = %+v, want no recording", l)
	}
	if _, ok := d.records["after"]; !ok || d.watermark.Seq != 2 {
		t.Errorf("the row after the bad one was not projected (watermark %+v)", d.watermark)
	}
}

// TestFailedSaveIsRetried: a failed save leaves nothing applied in the
// engine's view (cache, position); the next step applies the rows once.
func TestFailedSaveIsRetried(t *testing.T) {
	d := newMemDriver()
	e := start(t, d, Options{})
	for i, b := range recording("fs", 1) {
		d.add(b, base.UnixMilli()+int64(i), true)
	}
	d.failSave = errors.New("disk full")
	if _, err := e.step(context.Background(), 100); err == nil {
		t.Fatal("step succeeded over a failing save")
	}
	if e.Projected().Seq != 0 {
		t.Fatalf("projected %+v after a failed save", e.Projected())
	}
	d.failSave = nil
	if err := e.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := DecodeRecord(d.records["fs"])
	if err != nil || len(r.Events) != 4 {
		t.Errorf("record after the retry: %d events (%v), want 4", len(r.Events), err)
	}
}

// TestAdvanceDropsTheCache: when another instance's projector moved the
// watermark (it led meanwhile), this engine's cached records may be stale:
// the next step reads them again instead of overwriting the other's work.
func TestAdvanceDropsTheCache(t *testing.T) {
	d := newMemDriver()
	a := start(t, d, Options{})
	bodies := recording("adv", 2)
	d.add(bodies[0], base.UnixMilli(), false)
	if err := a.catchUp(context.Background()); err != nil { // a caches the record
		t.Fatal(err)
	}
	d.add(bodies[1], base.UnixMilli()+1, false)
	b := New(d, Options{})
	if err := b.Start(context.Background()); err != nil { // b projects the second row
		t.Fatal(err)
	}
	a.Advance(b.Projected()) // as a notification tells a
	d.add(bodies[2], base.UnixMilli()+2, false)
	if err := a.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := DecodeRecord(d.records["adv"])
	if err != nil || len(r.Events) != 3 {
		t.Errorf("record after a led, b led, a led again: %d events (%v), want 3", len(r.Events), err)
	}
}

// TestLongRecordingDuplicates: past the short index scan, duplicates are
// still told apart (by the step's set of identities), within a step and
// across steps.
func TestLongRecordingDuplicates(t *testing.T) {
	d := newMemDriver()
	var bodies [][]byte
	for i := range 100 {
		bodies = append(bodies, body("long", rc.TypeSegment, time.Duration(i)*time.Minute, fmt.Sprintf("long_%d.mp4", i), 200))
	}
	all := append(slices.Clone(bodies), bodies[3], bodies[70], bodies[99]) // redeliveries
	for i, b := range all {
		d.add(b, base.UnixMilli()+int64(i), true)
	}
	e := start(t, d, Options{Batch: 40}) // steps of 40: the set is built mid-recording
	r, err := DecodeRecord(d.records["long"])
	if err != nil {
		t.Fatal(err)
	}
	dups := 0
	for i, ev := range r.Events {
		if ev.Duplicate {
			dups++
			if i < 100 {
				t.Errorf("event %d marked duplicate", i)
			}
		}
	}
	if len(r.Events) != 103 || dups != 3 || len(r.State.Files) != 100 || e.Projected().Seq != 103 {
		t.Errorf("%d events, %d duplicates, %d files; want 103, 3, 100", len(r.Events), dups, len(r.State.Files))
	}
}

// TestFreshFeed: a feed reader whose page ends before the end of what is
// projected does not wait for newer rows; one that reaches the end does.
func TestFreshFeed(t *testing.T) {
	d := newMemDriver()
	for i := range 10 {
		d.add(body(fmt.Sprint("ff-", i), rc.TypeStart, 0, "", 200), base.UnixMilli(), true)
	}
	e := start(t, d, Options{})
	r := d.add(body("ff-new", rc.TypeStart, 0, "", 200), base.UnixMilli(), true)
	e.Committed([]Row{r}, nil) // acknowledged, not projected (no Run)
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a wait would fail at once
	if err := e.FreshFeed(ctx, 0, 5); err != nil {
		t.Errorf("a page of history waited: %v", err)
	}
	if err := e.FreshFeed(ctx, 8, 5); err == nil {
		t.Error("a page reaching the end did not wait for the acknowledged row")
	}
}

// TestShutdownDuringAStep: a step that shutdown cuts short is not a
// projection failure (nothing is logged as one); Run catches up once more
// with a context that does not end, and every row is projected.
func TestShutdownDuringAStep(t *testing.T) {
	d := newMemDriver()
	var logged bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logged, mu: &mu}, nil))
	e := start(t, d, Options{Gather: time.Millisecond, Logger: logger})
	d.saving = make(chan struct{})
	saving := d.saving
	var rows []Row
	for i, b := range recording("sd", 1) {
		rows = append(rows, d.add(b, base.UnixMilli()+int64(i), true))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	e.Committed(rows, nil)
	<-saving
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if logged.Len() > 0 {
		t.Errorf("shutdown during a step logged:\n%s", logged.String())
	}
	if got := e.Projected().Seq; got != int64(len(rows)) {
		t.Errorf("projected %d rows at shutdown, want %d", got, len(rows))
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestOutboundInAnyOrder: a recording's callbacks in random orders, with
// redeliveries, projected in steps of random sizes with the periodic pass
// between them, announce each (type, file) once, numbered 1, 2, 3, ...,
// every upload before the one completed, and nothing while outbound is off.
func TestOutboundInAnyOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		d := newMemDriver()
		clock := base
		e := start(t, d, Options{Batch: 1 + rng.IntN(6), Due: time.Nanosecond, Now: func() time.Time { return clock }})
		e.SetOutbound(true)
		bodies := recording("r", 3)
		failed := body("r", rc.TypeUpload, 5*time.Minute, "sess_room_u1_r_0.mp4", 500) // an upload that failed, then (or before) succeeded
		bodies = append(bodies, failed)
		rng.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
		for range 3 {
			bodies = append(bodies, bodies[rng.IntN(len(bodies))])
		}
		for _, b := range bodies {
			// Apart by less than Settle: no file comes after completed.
			clock = clock.Add(time.Duration(rng.IntN(50)) * time.Second)
			d.add(b, clock.UnixMilli(), true)
			if rng.IntN(3) == 0 {
				if err := e.catchUp(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		}
		for range 2 { // the last rows, then a periodic pass that sees them stored
			clock = clock.Add(time.Hour)
			if err := e.catchUp(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		seen := map[string]bool{}
		uploaded, completed := 0, 0
		for i, o := range d.outbox {
			var ev delivery.Event
			if err := json.Unmarshal(o.Payload, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Sequence != i+1 || ev.ID != o.ID || string(ev.Type) != o.Type {
				t.Fatalf("round %d: event %d is %+v (sequence %d, id %s)", round, i, o, ev.Sequence, ev.ID)
			}
			if seen[o.ID] {
				t.Fatalf("round %d: %s announced twice", round, o.ID)
			}
			seen[o.ID] = true
			switch ev.Type {
			case delivery.FileUploaded:
				uploaded++
			case delivery.Completed:
				completed++
				if uploaded != 3 || ev.Recording.UploadState != ledger.UploadComplete {
					t.Fatalf("round %d: completed after %d of 3 uploads, upload state %s", round, uploaded, ev.Recording.UploadState)
				}
			case delivery.UploadFailed:
				if uploaded > 0 && ev.File != nil && ev.File.UploadStatus == ledger.UploadStatusUploaded {
					t.Fatalf("round %d: upload_failed of an uploaded file", round)
				}
			}
		}
		if completed != 1 || uploaded != 3 {
			t.Fatalf("round %d: %d completed, %d uploaded; want 1 and 3", round, completed, uploaded)
		}
	}
}

// TestOutboundOff: while no destination wants events, nothing is put in
// the outbox, but what a recording announced is kept: once outbound is on,
// only what happens next is announced.
func TestOutboundOff(t *testing.T) {
	d := newMemDriver()
	clock := base
	e := start(t, d, Options{Now: func() time.Time { return clock }})
	bodies := recording("r", 2)
	for _, b := range bodies[:3] { // the start, a segment and its upload
		d.add(b, clock.UnixMilli(), true)
	}
	if err := e.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(d.outbox) != 0 {
		t.Fatalf("outbound off, yet %d events in the outbox", len(d.outbox))
	}
	e.SetOutbound(true)
	for _, b := range bodies[3:] {
		d.add(b, clock.UnixMilli(), true)
	}
	if err := e.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(2 * delivery.DefaultSettle) // the periodic pass completes it
	if err := e.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range d.outbox {
		got = append(got, o.Type)
	}
	want := []string{"recording.file_created", "recording.file_uploaded", "recording.ended", "recording.completed"}
	if !slices.Equal(got, want) {
		t.Errorf("announced %q, want %q", got, want)
	}
}

// TestRebuildFinishesTheDuePass: a rebuild goes on until the periodic pass
// finds nothing more, though more recordings are due than a step takes,
// so the live projection after it announces nothing again.
func TestRebuildFinishesTheDuePass(t *testing.T) {
	d := newMemDriver()
	clock := base
	e := start(t, d, Options{Batch: 1, Due: time.Nanosecond, Now: func() time.Time { return clock }})
	e.SetOutbound(true)
	for i := range 12 {
		for _, b := range recording(fmt.Sprint("due-", i), 1) {
			d.add(b, clock.UnixMilli(), true)
		}
	}
	for range 30 { // steps of one row, then passes of one due recording each
		clock = clock.Add(time.Minute)
		if err := e.catchUp(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	completed := func() int {
		n := 0
		for _, o := range d.outbox {
			if o.Type == string(delivery.Completed) {
				n++
			}
		}
		return n
	}
	if completed() != 12 {
		t.Fatalf("%d recordings completed live, want 12", completed())
	}
	before := len(d.outbox)
	if _, err := e.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Minute)
	if err := e.catchUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(d.outbox) != before {
		t.Errorf("after the rebuild, %d events announced again", len(d.outbox)-before)
	}
}
