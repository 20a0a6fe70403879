package engine

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// TestCompletedHook: Options.Completed hears of a recording once, in the
// step that made it complete, after that step is saved; not of one that
// never completes, not of redeliveries, and not while rebuilding.
func TestCompletedHook(t *testing.T) {
	d := newMemDriver()
	var (
		mu        sync.Mutex
		completed []string
	)
	o := Options{Batch: 2, Completed: func(st *ledger.State) {
		mu.Lock()
		defer mu.Unlock()
		if st.Status() != ledger.StatusComplete {
			t.Errorf("%s told completed while %s", st.RecordID, st.Status())
		}
		if _, stored := d.records[st.RecordID]; !stored {
			t.Errorf("%s told completed before its step was saved", st.RecordID)
		}
		completed = append(completed, st.RecordID)
	}}
	bodies := append(recording("c1", 2), recording("c2", 0)...) // c2 has no file: never complete
	bodies = append(bodies, bodies[len(bodies)-1], bodies[3])   // redeliveries
	bodies = append(bodies, body("c1", rc.TypeUpload, 2*time.Hour, "sess_room_u1_c1_0.mp4", 200))
	for i, b := range bodies {
		d.add(b, base.UnixMilli()+int64(i), true)
	}
	e := start(t, d, o)
	if want := []string{"c1"}; !slices.Equal(completed, want) {
		t.Errorf("completed %v, want %v", completed, want)
	}
	if _, err := e.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"c1"}; !slices.Equal(completed, want) {
		t.Errorf("after a rebuild: completed %v, want %v (nothing more)", completed, want)
	}
}
