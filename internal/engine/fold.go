package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/logbody"
	"github.com/recledger/recledger/rc"
)

// work is a recording being projected in one step.
type work struct {
	rec       *Record
	before    ledger.State // as stored, for the totals
	dueBefore int64        // its DueAt as stored
	new       bool
	// originals: the identities of its originals, once it has many
	// (hasOriginal)
	originals map[uint64]bool
}

// fold applies rows to their records, then announces what fell due by
// now on the recordings due, and returns the batch to save and how many
// callbacks it applied.
func (e *Engine) fold(ctx context.Context, from Position, rows []Row, cbs []rc.Callback, due []string, now int64) (*Batch, int64, error) {
	if cbs == nil {
		cbs = make([]rc.Callback, len(rows))
		for i := range rows {
			if Tombstone(rows[i].Body) {
				continue // a removed recording's row folds into nothing
			}
			body, err := logbody.Decode(rows[i].Body)
			if err != nil {
				e.o.Logger.Error("a logged callback cannot be read; not projected", "log_id", rows[i].Log.ID, "err", err)
				continue
			}
			cb, err := rc.Parse(body)
			if err != nil {
				// Logged by a build whose Parse accepted it: skipped rather
				// than stopping the projections for good; rebuild after a fix.
				e.o.Logger.Error("a logged callback no longer parses; not projected", "log_id", rows[i].Log.ID, "err", err)
				continue
			}
			cbs[i] = cb
		}
	}
	works, order, err := e.load(ctx, cbs, due)
	if err != nil {
		return nil, 0, err
	}
	b := &Batch{From: from, To: from, Events: make([]Logged, 0, len(rows)), Totals: ledger.TotalsChange{}}
	ann := announcer{rules: e.o.Rules, b: b, payloads: e.outbound.Load() && !e.rebuilding}
	var (
		minutes ledger.MinuteCounter
		seq     = from.Seq
		applied int64
	)
	for i, r := range rows {
		seq++
		if r.Seq != 0 {
			seq = r.Seq
		}
		l := Logged{Seq: seq, Log: r.Log, ReceivedAt: r.ReceivedAt}
		cb := &cbs[i]
		if cb.RecordID == "" { // did not parse
			b.Events = append(b.Events, l)
			minutes.Stored(r.ReceivedAt, false)
			continue
		}
		l.RecordID = cb.RecordID
		w := works[cb.RecordID]
		if w.rec == nil {
			w.rec, w.new = &Record{FirstSeq: seq}, true
		}
		id := Identity(cb.Key())
		l.Duplicate = w.hasOriginal(id)
		w.rec.Events = append(w.rec.Events, EventRef{Seq: seq, Identity: id, Duplicate: l.Duplicate})
		if !l.Duplicate && w.originals != nil {
			w.originals[id] = true
		}
		if !l.Duplicate {
			// What fell due before this callback came was announced then
			// (by the periodic pass) and is announced before it here, at
			// the time it fell due: a rebuild derives what live
			// projection did, in the same order.
			if err := ann.due(w.rec, r.ReceivedAt); err != nil {
				return nil, 0, err
			}
			w.rec.State = ledger.Apply(w.rec.State, *cb, r.ReceivedAt)
			applied++
			if err := ann.announce(w.rec, e.o.Rules.Derive(&w.rec.State, &w.rec.Announced, r.ReceivedAt), r.ReceivedAt); err != nil {
				return nil, 0, err
			}
		}
		b.Events = append(b.Events, l)
		minutes.Stored(r.ReceivedAt, l.Duplicate)
	}
	if len(rows) > 0 {
		b.To = Position{Seq: seq, Log: rows[len(rows)-1].Log}
	}
	b.Minutes = minutes.Minutes()
	for _, id := range due {
		if w := works[id]; w != nil && w.rec != nil {
			if err := ann.due(w.rec, now); err != nil {
				return nil, 0, err
			}
		}
	}
	for _, id := range order {
		w := works[id]
		if w.rec == nil {
			continue // due, but no longer stored (a rebuild emptied the store)
		}
		blob, err := EncodeRecord(w.rec)
		if err != nil {
			return nil, 0, err
		}
		s := Saved{Record: w.rec, Blob: blob, New: w.new, Before: w.before, DueBefore: w.dueBefore}
		if at, ok := e.o.Rules.Due(&w.rec.State, &w.rec.Announced); ok {
			s.DueAt = at
		}
		if w.new || findingInputsChanged(&w.before, &w.rec.State) {
			s.Findings = ledger.StateFindingMask(&w.rec.State)
			s.FindingsChanged = w.new && s.Findings != 0 || !w.new && ledger.StateFindingMask(&w.before) != s.Findings
		}
		s.Completed = w.rec.State.Status() == ledger.StatusComplete && (w.new || w.before.Status() != ledger.StatusComplete)
		var users map[string]bool
		for name := range w.rec.State.Files {
			if _, ok := w.before.Files[name]; !ok {
				s.NewFiles = append(s.NewFiles, name)
				for _, k := range fileUserKeys(name, &w.rec.State) {
					if users == nil {
						users = map[string]bool{}
					}
					users[k] = true
				}
			}
		}
		for k := range users {
			s.NewFiles = append(s.NewFiles, k)
		}
		sort.Strings(s.NewFiles)
		b.Records = append(b.Records, s)
		b.Totals.Move(w.before, w.rec.State)
	}
	return b, applied, nil
}

// findingInputsChanged reports whether what ledger.StateFindings reads
// may differ between before and after (files are only ever added to a
// state, so their count tells; an end naming a file already known changes
// its kind and the end its stream is judged to): most saves change only
// times and uploads, and need not parse every file name again.
func findingInputsChanged(before, after *ledger.State) bool {
	slices := func(st *ledger.State) int {
		if st.Config == nil {
			return -1
		}
		return st.Config.SlicesMin
	}
	start := func(st *ledger.State) int64 {
		if st.StartFrom == nil {
			return -1
		}
		return st.StartFrom.Timestamp
	}
	return len(before.Files) != len(after.Files) || before.Failed != after.Failed ||
		!equalPtr(before.EndedAt, after.EndedAt) || start(before) != start(after) || slices(before) != slices(after) ||
		before.SessionID != after.SessionID || before.RoomID != after.RoomID || before.UserID != after.UserID || before.Mode != after.Mode ||
		finalEnds(before) != finalEnds(after)
}

// finalEnds sums what the rules read of the files an end named: their
// number and the timestamps of the ends their sizes came from.
func finalEnds(st *ledger.State) [2]int64 {
	var n [2]int64
	for _, f := range st.Files {
		if f.Kind == ledger.KindFinal {
			n[0]++
			if f.SizeFrom != nil && f.SizeFrom.Type == rc.TypeEnd {
				n[1] += f.SizeFrom.Timestamp
			}
		}
	}
	return n
}

func equalPtr(a, b *int64) bool { return a == b || a != nil && b != nil && *a == *b }

// load returns the records the callbacks and the due list concern, from
// the cache or the driver, as copies the step may change, and their ids in
// the order first named.
func (e *Engine) load(ctx context.Context, cbs []rc.Callback, due []string) (map[string]*work, []string, error) {
	works := map[string]*work{}
	var missing, order []string
	ids := make([]string, 0, len(cbs)+len(due))
	for i := range cbs {
		ids = append(ids, cbs[i].RecordID)
	}
	ids = append(ids, due...)
	for _, id := range ids {
		if id == "" || works[id] != nil {
			continue
		}
		w := &work{}
		works[id] = w
		order = append(order, id)
		if r, ok := e.cache.get(id); ok {
			w.set(r, e.o.Rules, true) // cached: written by this build
			continue
		}
		missing = append(missing, id)
	}
	if len(missing) == 0 {
		return works, order, nil
	}
	blobs, err := e.d.LoadRecords(ctx, missing)
	if err != nil {
		return nil, nil, fmt.Errorf("load records: %w", err)
	}
	for _, id := range missing {
		blob, ok := blobs[id]
		if !ok {
			continue // new: fold creates it
		}
		r, err := DecodeRecord(blob)
		if err != nil {
			return nil, nil, fmt.Errorf("load record %s: %w", id, err)
		}
		// A record stored before outbound delivery predates the due_at
		// column: its due time is not stored, whatever Due says.
		works[id].set(&r, e.o.Rules, blob[0] == recordV4)
	}
	return works, order, nil
}

// set makes w a copy of r to change; dueStored says r's due time is in
// the store (it was written with it).
func (w *work) set(r *Record, rules delivery.Rules, dueStored bool) {
	c := *r
	c.Events = slices.Clone(r.Events) // the step appends; the cached one stays as stored
	c.Announced = r.Announced.Clone()
	w.rec, w.before = &c, r.State
	if at, ok := rules.Due(&r.State, &r.Announced); ok && dueStored {
		w.dueBefore = at
	}
}

// announcer turns what a step derives into the batch's outbound events.
type announcer struct {
	rules    delivery.Rules
	b        *Batch
	payloads bool // the outbox is kept: build the events
}

// due announces what fell due on rec by time alone up to until, each at
// the time it fell due.
func (a *announcer) due(rec *Record, until int64) error {
	for {
		at, ok := a.rules.Due(&rec.State, &rec.Announced)
		if !ok || at > until {
			return nil
		}
		changes := a.rules.Derive(&rec.State, &rec.Announced, at)
		if len(changes) == 0 {
			return nil // due promised more than Derive gives: never loop
		}
		if err := a.announce(rec, changes, at); err != nil {
			return err
		}
	}
}

func (a *announcer) announce(rec *Record, changes []delivery.Change, at int64) error {
	if !a.payloads {
		return nil
	}
	for _, c := range changes {
		ev := delivery.NewEvent(&rec.State, c, at)
		payload, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("announce %s of %s: %w", c.Type, rec.State.RecordID, err)
		}
		a.b.Outbound = append(a.b.Outbound, Outbound{ID: ev.ID, Type: string(ev.Type), RecordID: ev.RecordID,
			AppKey: ev.AppKey, RoomID: rec.State.RoomID, At: at, Payload: payload})
	}
	return nil
}

// hasOriginal reports whether the record logged an original with this
// identity. A short index is scanned; a long one (a recording of many
// segments, or a sender that never stops) gets a set for the step, so a
// step costs linear time, not quadratic, in the recording's callbacks.
func (w *work) hasOriginal(id uint64) bool {
	if w.originals == nil && len(w.rec.Events) > 32 {
		w.originals = make(map[uint64]bool, len(w.rec.Events))
		for _, ev := range w.rec.Events {
			if !ev.Duplicate {
				w.originals[ev.Identity] = true
			}
		}
	}
	if w.originals != nil {
		return w.originals[id]
	}
	for _, ev := range w.rec.Events {
		if ev.Identity == id && !ev.Duplicate {
			return true
		}
	}
	return false
}

// recordCache holds the records the engine wrote last. The engine is the
// only writer of records (on its instance, while it projects), so a cached
// one is the stored one. Two generations make it an approximate LRU
// without bookkeeping per access.
type recordCache struct {
	current, previous map[string]*Record
}

const recordCacheSize = 8192 // per generation

func (c *recordCache) get(id string) (*Record, bool) {
	if r, ok := c.current[id]; ok {
		return r, true
	}
	r, ok := c.previous[id]
	return r, ok
}

func (c *recordCache) put(r *Record) {
	if c.current == nil || len(c.current) >= recordCacheSize {
		c.previous, c.current = c.current, make(map[string]*Record, recordCacheSize)
	}
	c.current[r.State.RecordID] = r
}

func (c *recordCache) clear() { c.current, c.previous = nil, nil }
