package groupcommit_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/groupcommit"
)

// recorder is a commit function that remembers what it committed and
// answers each item with its double.
type recorder struct {
	mu        sync.Mutex
	committed map[int]bool
	batches   []int
	delay     time.Duration
	failNext  bool
}

func (r *recorder) commit(_ context.Context, items []int) ([]int, error) {
	time.Sleep(r.delay) // stands for the fsync
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failNext {
		r.failNext = false
		return nil, errors.New("disk full")
	}
	out := make([]int, len(items))
	for i, it := range items {
		if r.committed[it] {
			panic("item committed twice")
		}
		r.committed[it] = true
		out[i] = 2 * it
	}
	r.batches = append(r.batches, len(items))
	return out, nil
}

func start(t *testing.T, rec *recorder, o groupcommit.Options) (*groupcommit.Batcher[int, int], context.CancelFunc, chan error) {
	t.Helper()
	b := groupcommit.New(rec.commit, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	return b, cancel, done
}

func TestEveryWaiterGetsItsOwnResultInBatches(t *testing.T) {
	rec := &recorder{committed: map[int]bool{}, delay: 2 * time.Millisecond}
	b, cancel, done := start(t, rec, groupcommit.Options{MaxBatch: 32})
	defer func() { cancel(); <-done }()
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 20 {
				item := g*1000 + i
				got, err := b.Submit(context.Background(), item)
				if err != nil || got != 2*item {
					t.Errorf("Submit(%d) = %d, %v", item, got, err)
				}
			}
		})
	}
	wg.Wait()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.committed) != 64*20 {
		t.Fatalf("committed %d items, want %d", len(rec.committed), 64*20)
	}
	biggest := 0
	for _, n := range rec.batches {
		if n > 32 {
			t.Fatalf("a batch of %d exceeds MaxBatch 32", n)
		}
		biggest = max(biggest, n)
	}
	// 64 clients and a 2 ms commit: the queue fills while each commit runs.
	if biggest < 8 || len(rec.batches) >= 64*20/2 {
		t.Errorf("batches %v: want commits shared by many waiters", rec.batches)
	}
}

func TestFailedCommitFailsItsBatchOnly(t *testing.T) {
	rec := &recorder{committed: map[int]bool{}, failNext: true}
	b, cancel, done := start(t, rec, groupcommit.Options{})
	defer func() { cancel(); <-done }()
	if _, err := b.Submit(context.Background(), 1); err == nil {
		t.Fatal("Submit during a failing commit succeeded")
	}
	if got, err := b.Submit(context.Background(), 2); err != nil || got != 4 {
		t.Fatalf("Submit after recovery = %d, %v", got, err)
	}
}

func TestMaxWaitGathersABatch(t *testing.T) {
	rec := &recorder{committed: map[int]bool{}}
	b, cancel, done := start(t, rec, groupcommit.Options{MaxBatch: 4, MaxWait: time.Second})
	defer func() { cancel(); <-done }()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := b.Submit(context.Background(), i); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// The writer waits up to a second for the batch to fill, and it fills.
	if len(rec.batches) != 1 || rec.batches[0] != 4 {
		t.Errorf("batches %v, want one of 4", rec.batches)
	}
}

// TestShutdownAnswersTruthfully stops the writer while clients submit:
// each Submit either reports its item committed, and it was, or fails, and
// it was not.
func TestShutdownAnswersTruthfully(t *testing.T) {
	rec := &recorder{committed: map[int]bool{}, delay: time.Millisecond}
	b, cancel, done := start(t, rec, groupcommit.Options{MaxBatch: 8})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked = map[int]bool{}
	)
	for g := range 16 {
		wg.Go(func() {
			for i := range 1000 {
				item := g*10000 + i
				_, err := b.Submit(context.Background(), item)
				if errors.Is(err, groupcommit.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Submit: %v", err)
					return
				}
				mu.Lock()
				acked[item] = true
				mu.Unlock()
			}
		})
	}
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("nothing was committed before the stop")
	}
	for item := range acked {
		if !rec.committed[item] {
			t.Fatalf("item %d acknowledged but not committed", item)
		}
	}
	if len(rec.committed) != len(acked) {
		t.Fatalf("committed %d, acknowledged %d: a waiter was not answered truthfully", len(rec.committed), len(acked))
	}
	if _, err := b.Submit(context.Background(), -1); !errors.Is(err, groupcommit.ErrClosed) {
		t.Errorf("Submit after stop = %v, want ErrClosed", err)
	}
}

func TestSubmitGivesUpBeforeQueueing(t *testing.T) {
	rec := &recorder{committed: map[int]bool{}}
	b := groupcommit.New(rec.commit, groupcommit.Options{MaxBatch: 1})
	// No writer runs: the one queue slot fills, the next Submit waits.
	go b.Submit(context.Background(), 1)
	time.Sleep(10 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := b.Submit(ctx, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Submit with a full queue = %v, want the context's error", err)
	}
}

// errPoison stands for a value the database refuses (a constraint); any
// other error stands for the database being down.
var errPoison = errors.New("check constraint violated")

// poisonCommit fails a batch holding a poison item with errPoison, a batch
// while down is set with a transient error, and commits the rest.
type poisonCommit struct {
	mu      sync.Mutex
	poison  map[int]bool
	down    bool
	commits [][]int
	stored  map[int]int
}

func (p *poisonCommit) commit(_ context.Context, items []int) ([]int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.commits = append(p.commits, append([]int(nil), items...))
	if p.down {
		return nil, errors.New("connection refused")
	}
	for _, it := range items {
		if p.poison[it] {
			return nil, fmt.Errorf("insert %d: %w", it, errPoison)
		}
	}
	out := make([]int, len(items))
	for i, it := range items {
		p.stored[it]++
		out[i] = 2 * it
	}
	return out, nil
}

// submitBatch submits items 0..n-1 at once to a batcher that commits
// exactly n items per batch (MaxBatch n, a long MaxWait), so the first
// commit holds them all.
func submitBatch(t *testing.T, p *poisonCommit, n int) (results []int, errs []error) {
	t.Helper()
	b := groupcommit.New(p.commit, groupcommit.Options{MaxBatch: n, MaxWait: time.Minute,
		ItemError: func(err error) bool { return errors.Is(err, errPoison) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	defer func() { cancel(); <-done }()
	results, errs = make([]int, n), make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = b.Submit(context.Background(), i) })
	}
	wg.Wait()
	return results, errs
}

func TestBisectIsolatesPoisonItems(t *testing.T) {
	for _, tt := range []struct {
		name   string
		n      int
		poison []int
	}{
		{"one in sixteen", 16, []int{7}},
		{"first and last", 16, []int{0, 15}},
		{"two neighbours in an odd batch", 13, []int{5, 6}},
		{"alone", 1, []int{0}},
		{"all of them", 4, []int{0, 1, 2, 3}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := &poisonCommit{poison: map[int]bool{}, stored: map[int]int{}}
			for _, i := range tt.poison {
				p.poison[i] = true
			}
			results, errs := submitBatch(t, p, tt.n)
			if len(p.commits[0]) != tt.n {
				t.Fatalf("first commit held %d items, want the whole batch of %d", len(p.commits[0]), tt.n)
			}
			for i := range tt.n {
				var ie *groupcommit.ItemError
				switch {
				case p.poison[i]:
					if !errors.As(errs[i], &ie) || !errors.Is(errs[i], errPoison) {
						t.Errorf("poison item %d: err %v, want an *ItemError wrapping the store's error", i, errs[i])
					}
					if p.stored[i] != 0 {
						t.Errorf("poison item %d stored", i)
					}
				case errs[i] != nil || results[i] != 2*i || p.stored[i] != 1:
					t.Errorf("item %d: result %d, err %v, stored %d times; want %d, nil, once", i, results[i], errs[i], p.stored[i], 2*i)
				}
			}
			// Each poison costs at most two commits per halving.
			if limit := 1 + 2*len(tt.poison)*bitsLen(tt.n); len(p.commits) > limit {
				t.Errorf("%d commits for %d items with %d poison, want at most %d", len(p.commits), tt.n, len(tt.poison), limit)
			}
		})
	}
}

func bitsLen(n int) int {
	b := 0
	for ; n > 0; n >>= 1 {
		b++
	}
	return b
}

func TestTransientErrorFailsTheBatchOnce(t *testing.T) {
	p := &poisonCommit{poison: map[int]bool{3: true}, stored: map[int]int{}, down: true}
	_, errs := submitBatch(t, p, 8)
	if len(p.commits) != 1 {
		t.Errorf("%d commits against a database that is down, want 1 (no bisecting)", len(p.commits))
	}
	for i, err := range errs {
		var ie *groupcommit.ItemError
		if err == nil || errors.As(err, &ie) {
			t.Errorf("item %d: err %v, want the transient error, not an item error", i, err)
		}
	}
}
