package removal

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
)

// fakeStore holds recordings by id with the arrival of their last
// callback and their user, and quarantine rows by arrival.
type fakeStore struct {
	last       map[string]time.Time
	user       map[string]string
	named      map[string]string // the user a recording's file names name besides its own
	quarantine []time.Time
	forgets    [][]string // each Forget's ids
	stuck      bool       // Forget removes nothing
	rivals     int        // the next rivals Forget calls find their ids removed by another instance
	audits     []ledger.Audit
	onForget   func() // called by each Forget
}

func newFake() *fakeStore {
	return &fakeStore{last: map[string]time.Time{}, user: map[string]string{}, named: map[string]string{}}
}

func (f *fakeStore) ListRecordings(_ context.Context, q ledger.RecordingFilter) (ledger.RecordingPage, error) {
	var page ledger.RecordingPage
	for _, id := range slices.Sorted(func(yield func(string) bool) {
		for id := range f.last {
			if !yield(id) {
				return
			}
		}
	}) {
		if f.user[id] == q.UserID && len(page.Items) < q.Limit {
			page.Items = append(page.Items, ledger.State{RecordID: id})
		}
	}
	return page, nil
}

func (f *fakeStore) Forget(_ context.Context, ids []string) (ledger.Removed, error) {
	f.forgets = append(f.forgets, ids)
	if f.onForget != nil {
		f.onForget()
	}
	var r ledger.Removed
	if f.stuck {
		return r, nil
	}
	if f.rivals > 0 {
		f.rivals--
		for _, id := range ids {
			delete(f.last, id)
		}
		return r, nil
	}
	for _, id := range ids {
		if _, ok := f.last[id]; ok {
			delete(f.last, id)
			r.Recordings++
			r.LogRows += 3
		}
	}
	return r, nil
}

func (f *fakeStore) NamingRecordings(_ context.Context, user, _ string) ([]string, error) {
	var ids []string
	for id, u := range f.named {
		if _, ok := f.last[id]; ok && u == user {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (f *fakeStore) Expired(_ context.Context, cutoff time.Time, limit int) ([]string, error) {
	var ids []string
	for id, at := range f.last {
		if at.Before(cutoff) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids[:min(limit, len(ids))], nil
}

func (f *fakeStore) PruneQuarantine(_ context.Context, cutoff time.Time, limit int) (int64, error) {
	var n int64
	f.quarantine = slices.DeleteFunc(f.quarantine, func(at time.Time) bool {
		if at.Before(cutoff) && n < int64(limit) {
			n++
			return true
		}
		return false
	})
	return n, nil
}

func (f *fakeStore) EraseQuarantine(context.Context, []byte) (int64, error) { return 0, nil }

func (f *fakeStore) Audit(_ context.Context, a ledger.Audit) error {
	f.audits = append(f.audits, a)
	return nil
}

// TestRetentionPass: what is older than the limits goes, in batches of
// Batch, and the pass adds up what it removed; what is younger stays.
func TestRetentionPass(t *testing.T) {
	now := time.Now()
	f := newFake()
	for i := range 2*Batch + 5 {
		f.last[fmt.Sprintf("old-%03d", i)] = now.Add(-48 * time.Hour)
	}
	f.last["young"] = now.Add(-time.Hour)
	for range 3 {
		f.quarantine = append(f.quarantine, now.Add(-48*time.Hour))
	}
	f.quarantine = append(f.quarantine, now)
	var batches []ledger.Removed
	var batchQuarantine int64
	r := &Retention{Store: f, Recordings: 24 * time.Hour, Quarantine: 24 * time.Hour, Pause: time.Millisecond, Now: func() time.Time { return now },
		OnBatch: func(removed ledger.Removed, quarantine int64) {
			if removed != (ledger.Removed{}) {
				batches = append(batches, removed)
			}
			batchQuarantine += quarantine
		}}
	p := r.Pass(context.Background())
	// Metrics hear of each batch as it commits, and the batches add up
	// to the pass.
	var sum ledger.Removed
	for _, b := range batches {
		sum = sum.Add(b)
	}
	if len(batches) != 3 || sum != p.Removed || batchQuarantine != p.Quarantine {
		t.Errorf("OnBatch told %d batches summing to %+v and %d quarantine rows; the pass removed %+v and %d", len(batches), sum, batchQuarantine, p.Removed, p.Quarantine)
	}
	if p.Err != nil || p.Removed.Recordings != 2*Batch+5 || p.Removed.LogRows != 3*(2*Batch+5) || p.Quarantine != 3 {
		t.Errorf("pass = %+v, want %d recordings, %d rows, 3 quarantine rows", p, 2*Batch+5, 3*(2*Batch+5))
	}
	if len(f.forgets) != 3 || len(f.forgets[0]) != Batch || len(f.forgets[2]) != 5 {
		t.Errorf("Forget calls of %v recordings, want %d, %d, 5", lens(f.forgets), Batch, Batch)
	}
	if _, ok := f.last["young"]; !ok || len(f.quarantine) != 1 {
		t.Errorf("a young recording or request went")
	}
}

func lens(s [][]string) []int {
	var out []int
	for _, x := range s {
		out = append(out, len(x))
	}
	return out
}

// TestRetentionStuck: a Forget that removes nothing of what Expired
// listed ends the pass with ErrStuck instead of looping.
func TestRetentionStuck(t *testing.T) {
	f := newFake()
	f.last["old"] = time.Now().Add(-48 * time.Hour)
	f.stuck = true
	p := (&Retention{Store: f, Recordings: time.Hour}).Pass(context.Background())
	if !errors.Is(p.Err, ErrStuck) || len(f.forgets) != 1 {
		t.Errorf("pass = %+v after %d Forget calls, want ErrStuck after 1", p, len(f.forgets))
	}
	if _, err := Erase(context.Background(), f, "", "", time.Now()); err == nil {
		t.Errorf("Erase of no user: no error")
	}
	f.user["old"] = "u"
	if _, err := Erase(context.Background(), f, "u", "", time.Now()); !errors.Is(err, ErrStuck) {
		t.Errorf("Erase that removes nothing: %v, want ErrStuck", err)
	}
}

// TestEraseAudits: the audit row holds the app key and the counts.
func TestEraseAudits(t *testing.T) {
	f := newFake()
	for i := range Batch + 1 {
		id := fmt.Sprint("r", i)
		f.last[id], f.user[id] = time.Now(), "u"
	}
	f.last["other"], f.user["other"] = time.Now(), "v"
	got, err := Erase(context.Background(), f, "u", "app", time.UnixMilli(42))
	if err != nil || got.Recordings != Batch+1 {
		t.Fatalf("Erase = %+v, %v", got, err)
	}
	if len(f.audits) != 1 || f.audits[0].At != 42 || f.audits[0].AppKey != "app" || f.audits[0].Removed != got.Removed {
		t.Errorf("audits %+v", f.audits)
	}
	if _, ok := f.last["other"]; !ok {
		t.Errorf("another user's recording went")
	}
}

// TestRemovalRacesAnotherInstance: every instance runs retention (and an
// erasure may run beside it), so a batch another instance removed first
// removes nothing here; that is not ErrStuck, and the rest goes.
func TestRemovalRacesAnotherInstance(t *testing.T) {
	now := time.Now()
	f := newFake()
	for i := range 2*Batch + 5 {
		f.last[fmt.Sprintf("old-%03d", i)] = now.Add(-48 * time.Hour)
	}
	f.rivals = 1
	p := (&Retention{Store: f, Recordings: time.Hour, Pause: time.Millisecond, Now: func() time.Time { return now }}).Pass(context.Background())
	if p.Err != nil || p.Removed.Recordings != Batch+5 || len(f.last) != 0 {
		t.Errorf("pass = %+v, %d left; want no error, %d removed here, none left", p, len(f.last), Batch+5)
	}

	for i := range Batch + 1 {
		id := fmt.Sprint("r", i)
		f.last[id], f.user[id] = now, "u"
	}
	f.rivals = 1
	got, err := Erase(context.Background(), f, "u", "", now)
	if err != nil || got.Recordings != 1 || len(f.last) != 0 {
		t.Errorf("Erase = %+v, %v, %d left; want 1 removed here, none left", got, err, len(f.last))
	}
}

// TestEraseByFileNames: a recording of another userId whose file names
// name the user goes too, and one naming no one else stays.
func TestEraseByFileNames(t *testing.T) {
	f := newFake()
	f.last["own"], f.user["own"] = time.Now(), "u"
	f.last["shared"], f.user["shared"], f.named["shared"] = time.Now(), "first", "u"
	f.last["other"], f.user["other"] = time.Now(), "first"
	got, err := Erase(context.Background(), f, "u", "", time.Now())
	if err != nil || got.Recordings != 2 {
		t.Fatalf("Erase = %+v, %v; want 2 recordings", got, err)
	}
	if _, ok := f.last["shared"]; ok {
		t.Errorf("the recording whose file names name the user stayed")
	}
	if _, ok := f.last["other"]; !ok {
		t.Errorf("another user's recording went")
	}
}

// TestRetentionRestsAsLongAsABatchTook: between batches a pass rests at
// least Pause, and as long as the batch took when that was longer, so a
// slow store is held at most half the time.
func TestRetentionRestsAsLongAsABatchTook(t *testing.T) {
	clock := time.Now()
	f := newFake()
	for i := range 3 * Batch {
		f.last[fmt.Sprintf("old-%03d", i)] = clock.Add(-48 * time.Hour)
	}
	took := []time.Duration{300 * time.Millisecond, 10 * time.Millisecond, 0}
	f.onForget = func() { clock = clock.Add(took[len(f.forgets)-1]) }
	var rests []time.Duration
	r := &Retention{Store: f, Recordings: 24 * time.Hour, Pause: 100 * time.Millisecond, Now: func() time.Time { return clock },
		sleep: func(_ context.Context, d time.Duration) bool { rests = append(rests, d); return true }}
	if p := r.Pass(context.Background()); p.Err != nil || p.Removed.Recordings != 3*Batch {
		t.Fatalf("pass = %+v", p)
	}
	want := []time.Duration{300 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond}
	if !slices.Equal(rests, want) {
		t.Errorf("rests %v, want %v", rests, want)
	}
}
