package engine

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/ledger"
)

// TestTombstonesFoldIntoNothing: a tombstone (an emptied log body) keeps
// its feed seq, makes no recording and logs no error, live and in a
// rebuild alike.
func TestTombstonesFoldIntoNothing(t *testing.T) {
	for _, numbered := range []bool{true, false} {
		d := newMemDriver()
		for i, b := range append(recording("gone", 1), recording("kept", 1)...) {
			d.add(b, base.UnixMilli()+int64(i), numbered)
		}
		n := len(recording("gone", 1))
		for i := range n {
			d.log[i].Body = []byte{}
		}
		var logs bytes.Buffer
		e := start(t, d, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		check := func(when string) {
			t.Helper()
			if _, ok := d.records["gone"]; ok {
				t.Errorf("numbered=%v, %s: a tombstoned recording was made", numbered, when)
			}
			if _, ok := d.records["kept"]; !ok {
				t.Errorf("numbered=%v, %s: the kept recording is missing", numbered, when)
			}
			for seq := int64(1); seq <= int64(len(d.log)); seq++ {
				l, ok := d.feed[seq]
				if !ok || seq <= int64(n) && (l.RecordID != "" || l.Duplicate) {
					t.Errorf("numbered=%v, %s: feed seq %d = %+v (%v), want a tombstone's place", numbered, when, seq, l, ok)
				}
			}
			if logs.Len() > 0 {
				t.Errorf("numbered=%v, %s: tombstones logged: %s", numbered, when, logs.String())
			}
		}
		check("live")
		if _, err := e.Rebuild(context.Background()); err != nil {
			t.Fatal(err)
		}
		check("rebuilt")
	}
}

// TestRemovedMeanwhile: when the store says recordings were removed since
// the engine cached them (ErrRemoved), the engine drops its cache and
// steps again at once: a later callback of a removed recording makes it
// from that callback alone, and the step is not reported as failed.
func TestRemovedMeanwhile(t *testing.T) {
	d := newMemDriver()
	bodies := recording("r", 1)
	for i, b := range bodies {
		d.add(b, base.UnixMilli()+int64(i), true)
	}
	var failures int
	e := start(t, d, Options{Reported: func(err error) {
		if err != nil {
			failures++
		}
	}})
	// Removed elsewhere: the record goes, the rows become tombstones.
	d.mu.Lock()
	delete(d.records, "r")
	delete(d.due, "r")
	for i := range d.log {
		d.log[i].Body = []byte{}
	}
	d.removedOnce = true
	d.mu.Unlock()
	late := body("r", 9, 2*time.Hour, "", 200)
	at := base.UnixMilli() + 100
	d.add(late, at, true)
	if _, err := e.step(context.Background(), 100); err != nil {
		t.Fatalf("step after a removal: %v", err)
	}
	r, err := DecodeRecord(d.records["r"])
	if err != nil {
		t.Fatal(err)
	}
	want := ledger.Apply(ledger.State{}, mustParse(t, late), at)
	if diff := gocmp.Diff(want, r.State); diff != "" || len(r.Events) != 1 {
		t.Errorf("r after a removal and a late callback: %d events (-want +got):\n%s", len(r.Events), diff)
	}
	if failures != 0 {
		t.Errorf("%d steps reported failed", failures)
	}
}
