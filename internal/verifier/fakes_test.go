package verifier

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storagecheck"
)

// fakeStore is the feed, the recordings and ledger.Verifications in
// memory, as the conformance suite says a store keeps them.
type fakeStore struct {
	mu      sync.Mutex
	events  []ledger.Event
	states  map[string]ledger.State
	checks  map[[2]string]ledger.FileCheck
	cursor  int64
	arrival int64 // the ReceivedAt of the uploads added next
	failDue error // DueVerifications fails with it
}

func newFakeStore() *fakeStore {
	return &fakeStore{states: map[string]ledger.State{}, checks: map[[2]string]ledger.FileCheck{}}
}

// upload records a successful upload of file at url: the feed event and
// the recording's state.
func (s *fakeStore) upload(recordID, file, url string, size *int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[recordID]
	if !ok {
		st = ledger.State{RecordID: recordID, AppKey: "app", Files: map[string]ledger.FileState{}}
	}
	st.Files[file] = ledger.FileState{URL: url, Size: size}
	s.states[recordID] = st
	s.events = append(s.events, ledger.Event{Seq: int64(len(s.events) + 1), Type: 4, Code: 200, RecordID: recordID, FileName: file,
		ReceivedAt: s.arrival})
}

// other adds a feed event that names no upload to check.
func (s *fakeStore) other(ev ledger.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev.Seq = int64(len(s.events) + 1)
	s.events = append(s.events, ev)
}

func (s *fakeStore) check(recordID, file string) (ledger.FileCheck, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.checks[[2]string{recordID, file}]
	return c, ok
}

func (s *fakeStore) Events(_ context.Context, after int64, limit int) ([]ledger.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ledger.Event
	for _, e := range s.events {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *fakeStore) Recording(_ context.Context, id string) (ledger.State, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.states[id]
	if !ok {
		return ledger.State{}, ledger.ErrNotFound
	}
	files := make(map[string]ledger.FileState, len(st.Files))
	for k, v := range st.Files {
		files[k] = v
	}
	st.Files = files
	return st, nil
}

func (s *fakeStore) VerificationCursor(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor, nil
}

func (s *fakeStore) QueueVerifications(_ context.Context, checks []ledger.FileCheck, cursor int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range checks {
		k := [2]string{c.RecordID, c.FileName}
		if old, ok := s.checks[k]; ok && old.URLHash == c.URLHash {
			continue
		}
		s.checks[k] = c
	}
	s.cursor = cursor
	return nil
}

func (s *fakeStore) DueVerifications(_ context.Context, now int64, limit int) ([]ledger.FileCheck, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failDue != nil {
		return nil, s.failDue
	}
	var out []ledger.FileCheck
	for _, c := range s.checks {
		if c.NextAt != 0 && c.NextAt <= now {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b ledger.FileCheck) int {
		return cmp.Or(cmp.Compare(a.NextAt, b.NextAt), strings.Compare(a.RecordID, b.RecordID), strings.Compare(a.FileName, b.FileName))
	})
	return out[:min(limit, len(out))], nil
}

func (s *fakeStore) SaveVerification(_ context.Context, c ledger.FileCheck) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{c.RecordID, c.FileName}
	if old, ok := s.checks[k]; !ok || old.URLHash != c.URLHash || c.TakenAt != 0 && old.NextAt != c.TakenAt {
		return false, nil
	}
	c.TakenAt = 0 // not stored
	s.checks[k] = c
	return true, nil
}

func (s *fakeStore) DropVerification(_ context.Context, c ledger.FileCheck) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{c.RecordID, c.FileName}
	if old, ok := s.checks[k]; ok && old.URLHash == c.URLHash {
		delete(s.checks, k)
	}
	return nil
}

func (s *fakeStore) FileVerifications(_ context.Context, recordID string) (map[string]ledger.Verification, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]ledger.Verification{}
	for k, c := range s.checks {
		if k[0] == recordID {
			out[k[1]] = c.Verification
		}
	}
	return out, nil
}

func (s *fakeStore) Recheck(_ context.Context, f ledger.RecheckFilter, now int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for k, c := range s.checks {
		if (f.RecordID != "" && k[0] == f.RecordID && (f.FileName == "" || k[1] == f.FileName)) || (f.RecordID == "" && f.State != "" && c.State == f.State) {
			c.State, c.Attempts, c.NextAt, c.Announced = ledger.VerifyPending, 0, now, false
			s.checks[k] = c
			n++
		}
	}
	return n, nil
}

func (s *fakeStore) Unannounced(_ context.Context, limit int) ([]ledger.FileCheck, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ledger.FileCheck
	for _, c := range s.checks {
		if c.State.Final() && !c.Announced {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b ledger.FileCheck) int {
		return cmp.Or(strings.Compare(a.RecordID, b.RecordID), strings.Compare(a.FileName, b.FileName))
	})
	return out[:min(limit, len(out))], nil
}

func (s *fakeStore) MarkAnnounced(_ context.Context, c ledger.FileCheck) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := [2]string{c.RecordID, c.FileName}
	if old, ok := s.checks[k]; ok && old.URLHash == c.URLHash && old.State == c.State {
		old.Announced = true
		s.checks[k] = old
	}
	return nil
}

func (s *fakeStore) VerificationCounts(_ context.Context, states ...ledger.VerificationState) (map[ledger.VerificationState]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[ledger.VerificationState]int64{}
	for _, c := range s.checks {
		if len(states) == 0 || slices.Contains(states, c.State) {
			out[c.State]++
		}
	}
	return out, nil
}

var (
	errNotLeader = errors.New("not leader")
	errNoFile    = errors.New("no file")
)

// fakeAnnouncer records announcements; notLeader makes the next n
// announcements fail as on an instance that does not project.
type fakeAnnouncer struct {
	mu        sync.Mutex
	got       []announced
	notLeader int
	following bool
	asked     int // Projecting calls
}

type announced struct {
	recordID, file string
	t              delivery.Type
	v              ledger.Verification
}

func (a *fakeAnnouncer) AnnounceFile(_ context.Context, recordID, file string, t delivery.Type, v ledger.Verification) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.notLeader > 0 {
		a.notLeader--
		return errNotLeader
	}
	if file == "gone.mp4" {
		return errNoFile
	}
	a.got = append(a.got, announced{recordID, file, t, v})
	return nil
}

func (a *fakeAnnouncer) Projecting() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.asked++
	return !a.following
}

func (a *fakeAnnouncer) announcements() []announced {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.got)
}

// fakeChecker answers each URL (without its query) with a scripted
// sequence of results; the last repeats.
type fakeChecker struct {
	mu      sync.Mutex
	answers map[string][]storagecheck.Result
	asked   []string // the URLs asked, whole
}

func (c *fakeChecker) Check(_ context.Context, fileURL string, _ *int64) storagecheck.Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.asked = append(c.asked, fileURL)
	key := storagecheck.Redact(fileURL)
	rs := c.answers[key]
	if len(rs) == 0 {
		return storagecheck.Result{State: storagecheck.Unreachable, Err: errors.New(key + ": no answer scripted")}
	}
	r := rs[0]
	if len(rs) > 1 {
		c.answers[key] = rs[1:]
	}
	return r
}

func (c *fakeChecker) askedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.asked)
}

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
