package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
)

// ErrRebuilding is returned by AnnounceFile while a rebuild runs: what a
// recording announced is being derived again; the caller retries later.
var ErrRebuilding = errors.New("the projections are being rebuilt")

// ErrNoFile is returned by AnnounceFile when the recording, or the file
// in it, is not stored (removed meanwhile): there is nothing to announce.
var ErrNoFile = errors.New("no such file in the projections")

// AnnounceFile announces an event about one file that the fold does not
// derive: the storage verifier's outcome (delivery.FileVerified,
// delivery.FileMissing), carrying the file's verification v. It runs
// under the step lock, as a step of its own: the record is loaded (from
// the cache or the store), and unless it already announced t for the file
// it marks it, counts it (the event's sequence) and, while outbound is
// on, puts the event in the outbox; the batch saved has no log rows and
// leaves the watermark where it is (From == To), so a concurrent
// projector's step fences it off (ErrMoved) as it does any step.
//
// It returns ErrNotLeader where another instance projects (the caller
// retries: only the projector writes records), ErrRebuilding during a
// rebuild, and ErrNoFile when the file is not stored. An event already
// announced is not announced again and is no error.
func (e *Engine) AnnounceFile(ctx context.Context, recordID, fileName string, t delivery.Type, v ledger.Verification) error {
	e.work.Lock()
	defer e.work.Unlock()
	if e.rebuilding {
		return ErrRebuilding
	}
	// A step first: it says whether this instance projects (ReadLog takes
	// the projector's lock where there is one), and brings the record up
	// to what the log holds.
	if _, _, err := e.stepLocked(ctx, e.o.Batch); err != nil {
		if errors.Is(err, ErrNotLeader) {
			return ErrNotLeader
		}
		if errors.Is(err, ErrRemoved) {
			e.cache.clear()
		}
		return fmt.Errorf("announce %s of %s: %w", t, fileName, err)
	}
	works, _, err := e.load(ctx, nil, []string{recordID})
	if err != nil {
		return fmt.Errorf("announce %s of %s: %w", t, fileName, err)
	}
	w := works[recordID]
	if w == nil || w.rec == nil {
		return fmt.Errorf("announce %s of %s in %s: %w", t, fileName, recordID, ErrNoFile)
	}
	if _, ok := w.rec.State.Files[fileName]; !ok {
		return fmt.Errorf("announce %s of %s in %s: %w", t, fileName, recordID, ErrNoFile)
	}
	a := &w.rec.Announced
	if a.Files[fileName][t] {
		return nil
	}
	if a.Files == nil {
		a.Files = map[string]map[delivery.Type]bool{}
	}
	if a.Files[fileName] == nil {
		a.Files[fileName] = map[delivery.Type]bool{}
	}
	a.Files[fileName][t] = true
	a.Count++
	now := e.o.Now().UnixMilli()
	pos := e.Projected()
	b := &Batch{From: pos, To: pos, Totals: ledger.TotalsChange{}}
	if e.outbound.Load() {
		ev := delivery.NewEvent(&w.rec.State, delivery.Change{Type: t, Sequence: a.Count, File: fileName}, now)
		if ev.File != nil {
			ev.File.Verification = &v
		}
		payload, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("announce %s of %s: %w", t, fileName, err)
		}
		b.Outbound = []Outbound{{ID: ev.ID, Type: string(ev.Type), RecordID: ev.RecordID, AppKey: ev.AppKey,
			RoomID: w.rec.State.RoomID, At: now, Payload: payload}}
	}
	blob, err := EncodeRecord(w.rec)
	if err != nil {
		return err
	}
	// The due time does not move: verification events are not what
	// Rules.Due waits for.
	s := Saved{Record: w.rec, Blob: blob, Before: w.before, DueBefore: w.dueBefore}
	if at, ok := e.o.Rules.Due(&w.rec.State, &w.rec.Announced); ok {
		s.DueAt = at
	}
	b.Records = []Saved{s}
	if err := e.d.Save(ctx, b); err != nil {
		e.cache.clear()
		if errors.Is(err, ErrMoved) {
			if pos, werr := e.d.Watermark(ctx); werr == nil {
				e.mu.Lock()
				e.projected, e.handed = pos, nil
				e.mu.Unlock()
			}
		}
		return fmt.Errorf("announce %s of %s: %w", t, fileName, err)
	}
	e.cache.put(w.rec)
	if len(b.Outbound) > 0 && e.o.OnOutbound != nil {
		e.o.OnOutbound()
	}
	return nil
}
