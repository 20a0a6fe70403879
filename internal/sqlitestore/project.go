package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// projection keeps the recordings and files tables just behind the log.
// The acknowledged commit only appends (a few pages, one fsync); the
// projector then applies whatever was appended since its last run in one
// transaction, so a recording touched by many callbacks in that time is
// loaded and saved once. Its watermark (projection.seq) commits with the
// projections it covers, so after a crash it resumes where it stopped: the
// projections can be behind the log for a moment, never for good.
type projection struct {
	store  *Store
	logged atomic.Int64  // newest seq acknowledged
	wake   chan struct{} // an append committed
	urgent chan struct{} // a reader waits for the projections
	log    *slog.Logger

	runs, applied atomic.Int64 // projection transactions and events read, for benchmarks
	work          sync.Mutex   // one projection (or rebuild) at a time; guards cache
	cache         stateCache   // recent states, so a recording is not read back per batch

	// Failures, for the log: the run goroutine's own.
	failing      bool
	failures     int       // since the last line logged
	failLoggedAt time.Time // when the last failure was logged

	mu        sync.Mutex
	pending   []loggedEvent // logged, not yet projected, in seq order
	projected int64         // every event up to here is applied
	changed   chan struct{} // closed when projected advances
}

// projectBatch bounds one projection transaction, so a backlog after a
// restart does not hold the writer for long.
const projectBatch = 256

// projectEvery is how long the projector lets appends gather before it
// applies them, unless a reader is waiting: the longer, the more callbacks
// of one recording share a load and a save.
const projectEvery = 200 * time.Millisecond

func newProjection(s *Store, log *slog.Logger) *projection {
	return &projection{store: s, wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1), changed: make(chan struct{}), log: log}
}

// appended notes a committed append and wakes the projector.
func (p *projection) appended(seq int64) {
	for {
		cur := p.logged.Load()
		if seq <= cur || p.logged.CompareAndSwap(cur, seq) {
			break
		}
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *projection) advance(seq int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if seq > p.projected {
		p.projected = seq
		close(p.changed)
		p.changed = make(chan struct{})
	}
}

// wait returns once every callback acknowledged before the call is in the
// projections: a client that got a 200 then reads sees its callback.
func (p *projection) wait(ctx context.Context) error {
	target := p.logged.Load()
	for {
		p.mu.Lock()
		done, ch := p.projected >= target, p.changed
		p.mu.Unlock()
		if done {
			return nil
		}
		select {
		case p.urgent <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("projections are behind the log: %w", ctx.Err())
		}
	}
}

// run projects until ctx ends, then catches up once more and returns.
func (p *projection) run(ctx context.Context) {
	retry := time.NewTicker(time.Second) // also retries after a failure
	defer retry.Stop()
	gather := time.NewTimer(projectEvery)
	defer gather.Stop()
	for {
		select {
		case <-p.wake:
			gather.Reset(projectEvery)
			select {
			case <-gather.C:
			case <-p.urgent:
			case <-ctx.Done():
			}
		case <-p.urgent:
		case <-retry.C:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			if err := p.catchUp(context.WithoutCancel(ctx)); err != nil {
				p.log.Error("projection at shutdown; it resumes at the next start", "err", err)
			}
			return
		}
		// Project what has gathered, and more only while a full batch
		// shows a backlog: chasing each new commit would undo the gathering.
		for {
			n, err := p.once(ctx)
			p.report(err)
			if err != nil || n < projectBatch {
				break
			}
		}
	}
}

// failureLogEvery spaces the log lines of a projection that keeps failing
// (it retries every second).
const failureLogEvery = 30 * time.Second

// report records a projection run's outcome for Ping and the metrics, and
// logs a failure: the first at once, then one line per failureLogEvery
// with how many were not logged, and the recovery.
func (p *projection) report(err error) {
	p.store.health.Projected(err)
	if err == nil {
		if p.failing {
			p.log.Info("projection recovered", "failures_not_logged", p.failures)
			p.failing, p.failures = false, 0
		}
		return
	}
	if hook := p.store.opts.OnProjectionFailure; hook != nil {
		hook(err)
	}
	if p.failing && time.Since(p.failLoggedAt) < failureLogEvery {
		p.failures++
		return
	}
	p.log.Error("projection failed; retrying every second", "err", err, "failures_not_logged", p.failures)
	p.failing, p.failures, p.failLoggedAt = true, 0, time.Now()
}

// catchUp projects until nothing is left.
func (p *projection) catchUp(ctx context.Context) error {
	for {
		n, err := p.once(ctx)
		if err != nil || n == 0 {
			return err
		}
	}
}

// once applies up to projectBatch events after the watermark and returns
// how many it read. Everything but the writes happens outside the write
// transaction, through the read pool: only the projector (and Rebuild, which
// excludes it through work) writes projections, so what it reads cannot
// change under it, and the group commits wait only for the writes.
func (p *projection) once(ctx context.Context) (int, error) {
	p.work.Lock()
	defer p.work.Unlock()
	s := p.store
	p.mu.Lock()
	from := p.projected
	p.mu.Unlock()

	events, err := p.next(ctx, from)
	if err != nil {
		return 0, err
	}
	var (
		n      = len(events)
		last   = from
		states = map[string]*projected{}
		order  []string
	)
	for _, e := range events {
		last = e.seq
		if e.duplicate {
			continue
		}
		pr := states[e.cb.RecordID]
		if pr == nil {
			if pr, err = p.load(ctx, e.cb.RecordID); err != nil {
				return 0, err
			}
			pr.firstSeq = e.seq
			states[e.cb.RecordID] = pr
			order = append(order, e.cb.RecordID)
		}
		pr.state = ledger.Apply(pr.state, e.cb, e.receivedAt)
	}
	if n == 0 {
		return 0, nil
	}
	saves := make([]save, 0, len(order))
	totals := ledger.TotalsChange{}
	for _, id := range order {
		sv, err := newSave(states[id])
		if err != nil {
			return 0, err
		}
		saves = append(saves, sv)
		totals.Move(states[id].before, states[id].state)
	}

	tx, err := s.ledgerWriter.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("project: %w", err)
	}
	defer tx.Rollback()
	for i := range saves {
		if err := saves[i].write(ctx, tx, &s.stmts); err != nil {
			return 0, err
		}
	}
	if err := addTotals(ctx, tx, &s.stmts, totals); err != nil {
		return 0, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE projection SET seq = ? WHERE id = 1`, last); err != nil {
		return 0, fmt.Errorf("project: %w", err)
	}
	if err := tx.Commit(); err != nil {
		p.cache.clear() // what was cached during the batch may not be stored
		return 0, fmt.Errorf("project: %w", err)
	}
	for _, id := range order {
		p.cache.put(id, states[id].state)
	}
	p.runs.Add(1)
	p.applied.Add(int64(n))
	p.advance(last)
	return n, nil
}

// loggedEvent is an appended callback on its way to the projections.
type loggedEvent struct {
	seq        int64
	receivedAt int64
	duplicate  bool
	cb         rc.Callback
}

// maxPending bounds the appended callbacks kept in memory for the
// projector; past it (a projector failing for long) it reads the log.
const maxPending = 1 << 16

// handOver gives the projector the callbacks a commit just logged, so it
// need not read them back: they are parsed and in memory already.
func (p *projection) handOver(evs []loggedEvent) {
	for i := range evs {
		evs[i].cb.Raw = nil // the log has it; the projector does not need it
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.pending) > 0 && p.pending[len(p.pending)-1].seq+1 != evs[0].seq || len(p.pending)+len(evs) > maxPending {
		p.pending = nil // not contiguous: the projector reads the gap from the log
	}
	p.pending = append(p.pending, evs...)
}

// next returns up to projectBatch events after seq from: from memory when
// the commits handed them over, else from the log (after a restart, or for
// a gap).
func (p *projection) next(ctx context.Context, from int64) ([]loggedEvent, error) {
	p.mu.Lock()
	i := 0
	for i < len(p.pending) && p.pending[i].seq <= from {
		i++
	}
	p.pending = p.pending[i:]
	if len(p.pending) > 0 && p.pending[0].seq == from+1 {
		evs := p.pending[:min(len(p.pending), projectBatch):min(len(p.pending), projectBatch)]
		p.mu.Unlock()
		return evs, nil
	}
	upTo := int64(1<<63 - 1)
	if len(p.pending) > 0 {
		upTo = p.pending[0].seq
	}
	p.mu.Unlock()

	rows, err := p.store.reader.QueryContext(ctx, `SELECT seq, received_at, duplicate, body FROM events
		WHERE seq > ? AND seq < ? ORDER BY seq LIMIT ?`, from, upTo, projectBatch)
	if err != nil {
		return nil, fmt.Errorf("project: %w", err)
	}
	defer rows.Close()
	var evs []loggedEvent
	for rows.Next() {
		var (
			e    loggedEvent
			body []byte
		)
		if err := rows.Scan(&e.seq, &e.receivedAt, &e.duplicate, &body); err != nil {
			return nil, fmt.Errorf("project: %w", err)
		}
		if !e.duplicate {
			if e.cb, err = rc.Parse(body); err != nil {
				// Logged by a build whose Parse accepted it: skip it rather
				// than stop the projections for good; replay after a fix.
				p.log.Error("a logged callback no longer parses; not projected", "seq", e.seq, "err", err)
				e.duplicate = true
			}
		}
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("project: %w", err)
	}
	return evs, nil
}

// projected is a recording being projected and the files it had before.
type projected struct {
	state    ledger.State
	before   ledger.State     // as stored, for the totals (Apply never modifies a state)
	had      map[string]int64 // files stored before, with their FirstSeenAt
	firstSeq int64            // for a new recording: its first event (kept when it exists)
}

func (p *projection) load(ctx context.Context, recordID string) (*projected, error) {
	if st, ok := p.cache.get(recordID); ok {
		return newProjected(st), nil
	}
	pr := &projected{}
	var raw []byte
	err := p.store.ledgerReader.QueryRowContext(ctx, `SELECT state FROM recordings WHERE record_id = ?`, recordID).Scan(&raw)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, fmt.Errorf("load recording %s: %w", recordID, err)
	default:
		if err := json.Unmarshal(raw, &pr.state); err != nil {
			return nil, fmt.Errorf("load recording %s: %w", recordID, err)
		}
	}
	return newProjected(pr.state), nil
}

func newProjected(st ledger.State) *projected {
	pr := &projected{state: st, before: st, had: make(map[string]int64, len(st.Files))}
	for name, f := range st.Files {
		pr.had[name] = f.FirstSeenAt
	}
	return pr
}

// stateCache holds the states the projector wrote last. The projector is
// the only writer of states, so a cached one is the stored one. Two
// generations make it an approximate LRU without bookkeeping per access.
type stateCache struct {
	current, previous map[string]ledger.State
}

const stateCacheSize = 8192 // per generation

func (c *stateCache) get(id string) (ledger.State, bool) {
	if st, ok := c.current[id]; ok {
		return st, true
	}
	st, ok := c.previous[id]
	return st, ok
}

func (c *stateCache) put(id string, st ledger.State) {
	if c.current == nil || len(c.current) >= stateCacheSize {
		c.previous, c.current = c.current, make(map[string]ledger.State, stateCacheSize)
	}
	c.current[id] = st
}

func (c *stateCache) clear() { c.current, c.previous = nil, nil }

// save is one recording's row and the file rows that change, ready to
// write.
type save struct {
	state    *ledger.State
	raw      []byte
	files    []string
	firstSeq int64
}

func newSave(pr *projected) (save, error) {
	raw, err := json.Marshal(pr.state)
	if err != nil {
		return save{}, fmt.Errorf("save recording %s: %w", pr.state.RecordID, err)
	}
	sv := save{state: &pr.state, raw: raw, firstSeq: pr.firstSeq}
	for name, f := range pr.state.Files {
		// A file row changes only when it appears or an earlier arrival
		// of it is projected late.
		if seen, ok := pr.had[name]; !ok || seen != f.FirstSeenAt {
			sv.files = append(sv.files, name)
		}
	}
	sort.Strings(sv.files)
	return sv, nil
}

func (sv *save) write(ctx context.Context, tx *sql.Tx, st *writeStmts) error {
	s := sv.state
	var startedAt *int64
	if s.StartFrom != nil {
		startedAt = &s.StartFrom.Timestamp
	}
	_, err := tx.StmtContext(ctx, st.saveState).ExecContext(ctx, s.RecordID, s.AppKey, s.RoomID, s.SessionID, s.UserID,
		int64(s.Mode), string(s.Status()), string(s.BaseUploadState()), startedAt, s.EndReceivedAt, s.FirstSeenAt, s.LastEventAt, sv.raw, sv.firstSeq,
		len(s.Files), s.UploadedCount())
	if err != nil {
		return fmt.Errorf("save recording %s: %w", s.RecordID, err)
	}
	for _, name := range sv.files {
		if _, err := tx.StmtContext(ctx, st.saveFile).ExecContext(ctx, name, s.RecordID, s.Files[name].FirstSeenAt); err != nil {
			return fmt.Errorf("save file %s: %w", name, err)
		}
	}
	return nil
}

// addTotals adds a batch's change of the totals.
func addTotals(ctx context.Context, tx *sql.Tx, st *writeStmts, c ledger.TotalsChange) error {
	for _, k := range c.Cells() {
		t := c[k]
		if _, err := tx.StmtContext(ctx, st.addTotals).ExecContext(ctx, string(k.Status), string(k.Upload), t.Recordings, t.PendingFiles); err != nil {
			return fmt.Errorf("project totals: %w", err)
		}
	}
	return nil
}
