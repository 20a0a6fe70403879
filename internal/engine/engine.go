package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// Options tune an Engine; the zero value is the default.
type Options struct {
	// Batch bounds the rows of one projection step (default 1024), so a
	// backlog after a restart does not hold the projections' writer long.
	Batch int
	// Gather is how long the engine lets appends gather before it
	// projects them, unless a reader waits (default 200 ms): the longer,
	// the more callbacks of one recording share a load and a save.
	Gather time.Duration
	// Poll is how often a follower (an instance that does not project)
	// rereads the watermark while a reader waits (default 10 ms).
	Poll time.Duration
	// Nudge, when set, is called while a reader of a follower waits: it
	// asks the projecting instance to project now (PostgreSQL: NOTIFY).
	Nudge  func()
	Logger *slog.Logger // projection failures (none when nil)
	// Reported, when set, is told the outcome of every projection step
	// (nil for success), for readiness and metrics.
	Reported func(err error)
	// Rules derive the outbound events (their Settle).
	Rules delivery.Rules
	// Now is the clock of the events announced by time alone (default
	// time.Now); Due how often the engine looks for recordings they fell
	// due on (default 1 s).
	Now func() time.Time
	Due time.Duration
	// OnOutbound, when set, is called after a step committed outbound
	// events (to wake the dispatchers).
	OnOutbound func()
	// Completed, when set, is told of each recording a committed step
	// made complete (ended, every file uploaded), once, by the instance
	// that projected it; not while rebuilding (it happened before). The
	// state must not be changed.
	Completed func(st *ledger.State)
}

func (o *Options) defaults() {
	if o.Batch <= 0 {
		o.Batch = 1024
	}
	if o.Gather <= 0 {
		o.Gather = 200 * time.Millisecond
	}
	if o.Poll <= 0 {
		o.Poll = 10 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Due <= 0 {
		o.Due = time.Second
	}
}

// Engine keeps a store's projections just behind its log.
type Engine struct {
	d      Driver
	o      Options
	wake   chan struct{} // an append committed
	urgent chan struct{} // a reader waits

	work  sync.Mutex  // one step (or rebuild) at a time; guards cache, dueAt, rebuilding
	cache recordCache // recent records, so a recording is not read back per step
	// dueAt: when the step last looked for recordings due; rebuilding:
	// a rebuild runs, which announces nothing (what it derives again was
	// announced when it first happened).
	dueAt      time.Time
	rebuilding bool
	// rebuilt counts the callbacks applied while rebuilding, by Rebuild's
	// steps and by Run's, which may take turns with them.
	rebuilt  int64
	outbound atomic.Bool // some destination wants events: steps derive their payloads

	// Failures, for the log: Run's own.
	failing      bool
	failures     int
	failLoggedAt time.Time

	mu        sync.Mutex
	appended  LogPos   // newest row this instance committed
	handed    []handed // committed rows not yet projected, when the log numbers them
	projected Position
	changed   chan struct{} // closed when projected advances
	following bool          // another instance projects
	// moved: another instance's projector moved the watermark (Advance),
	// so the records this engine cached may be stale.
	moved bool
}

// handed is a committed row handed over with its parsed callback, so the
// engine need not read it back.
type handed struct {
	row Row
	cb  rc.Callback
}

// New returns an engine over d; Start loads its watermark.
func New(d Driver, o Options) *Engine {
	o.defaults()
	return &Engine{d: d, o: o, wake: make(chan struct{}, 1), urgent: make(chan struct{}, 1), changed: make(chan struct{})}
}

// Start reads the stored watermark and projects whatever the log holds
// beyond it (unless another instance projects), so the store is current
// before it is used.
func (e *Engine) Start(ctx context.Context) error {
	pos, err := e.d.Watermark(ctx)
	if err != nil {
		return fmt.Errorf("read projection watermark: %w", err)
	}
	e.advance(pos)
	if err := e.catchUp(ctx); err != nil && !errors.Is(err, ErrNotLeader) {
		return err
	}
	return nil
}

// Committed notes rows this instance's log just committed and wakes the
// engine. cbs, when given, are the rows' parsed callbacks: where the log
// numbers its rows (Row.Seq), the engine projects them from memory.
func (e *Engine) Committed(rows []Row, cbs []rc.Callback) {
	if len(rows) == 0 {
		return
	}
	e.mu.Lock()
	for _, r := range rows {
		if e.appended.Less(r.Log) {
			e.appended = r.Log
		}
	}
	if cbs != nil && rows[0].Seq != 0 {
		if n := len(e.handed); n > 0 && e.handed[n-1].row.Seq+1 != rows[0].Seq || n+len(rows) > maxHanded {
			e.handed = nil // not contiguous: the gap is read from the log
		}
		for i := range rows {
			cb := cbs[i]
			cb.Raw = nil // the log has it; the fold does not need it
			r := rows[i]
			r.Body = nil
			e.handed = append(e.handed, handed{row: r, cb: cb})
		}
	}
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// maxHanded bounds the rows kept in memory for the engine; past it (a
// projection failing for long) it reads the log.
const maxHanded = 1 << 16

// SetOutbound says whether steps commit the events they announce to the
// outbox: on while some destination exists. What a recording announced is
// kept either way, so a destination added later starts with what happens
// next, not with every recording's history.
func (e *Engine) SetOutbound(on bool) { e.outbound.Store(on) }

// Urge makes the engine project now (a reader waits, here or on another
// instance).
func (e *Engine) Urge() {
	select {
	case e.urgent <- struct{}{}:
	default:
	}
}

// Projected returns how far the projections have come, as this instance
// knows it.
func (e *Engine) Projected() Position {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.projected
}

// Following reports whether another instance projects.
func (e *Engine) Following() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.following
}

// Advance notes a watermark another instance's projector reached; it never
// moves back. Records cached here are dropped before the next step: the
// other projector may have changed them.
func (e *Engine) Advance(pos Position) {
	e.mu.Lock()
	e.moved = true
	e.mu.Unlock()
	e.advance(pos)
}

func (e *Engine) advance(pos Position) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.projected.Log.Less(pos.Log) || e.projected.Seq < pos.Seq {
		e.projected = pos
		close(e.changed)
		e.changed = make(chan struct{})
	}
}

func (e *Engine) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.projected = Position{}
	e.handed = nil
}

// Fresh returns once every row this instance committed before the call is
// projected: a client that got a 200 then reads sees its callback.
func (e *Engine) Fresh(ctx context.Context) error {
	e.mu.Lock()
	target := e.appended
	e.mu.Unlock()
	var poll *time.Ticker
	for {
		e.mu.Lock()
		done, ch, following := !e.projected.Log.Less(target), e.changed, e.following
		e.mu.Unlock()
		if done {
			return nil
		}
		e.Urge()
		if following && e.o.Nudge != nil {
			e.o.Nudge()
		}
		if following && poll == nil {
			poll = time.NewTicker(e.o.Poll)
			defer poll.Stop()
		}
		var tick <-chan time.Time
		if poll != nil {
			tick = poll.C
		}
		select {
		case <-ch:
		case <-tick:
			pos, err := e.d.Watermark(ctx)
			if err != nil {
				return fmt.Errorf("read projection watermark: %w", err)
			}
			e.advance(pos)
		case <-ctx.Done():
			return fmt.Errorf("projections are behind the log: %w", ctx.Err())
		}
	}
}

// FreshFeed is Fresh for a reader of up to n feed events after seq after:
// one whose page ends before the end of what is projected (a stream
// replaying history) need not wait, and must not: under a steady flow of
// callbacks each page would wait for a projection step.
func (e *Engine) FreshFeed(ctx context.Context, after int64, n int) error {
	if e.Projected().Seq-after >= int64(n) {
		return nil
	}
	return e.Fresh(ctx)
}

// Run projects until ctx ends, then catches up once more and returns.
func (e *Engine) Run(ctx context.Context) error {
	retry := time.NewTicker(time.Second) // also retries after a failure, and follows
	defer retry.Stop()
	gather := time.NewTimer(e.o.Gather)
	defer gather.Stop()
	for {
		select {
		case <-e.wake:
			gather.Reset(e.o.Gather)
			select {
			case <-gather.C:
			case <-e.urgent:
			case <-ctx.Done():
			}
		case <-e.urgent:
		case <-retry.C:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			err := e.catchUp(context.WithoutCancel(ctx))
			if err != nil && !errors.Is(err, ErrNotLeader) {
				e.o.Logger.Error("projection at shutdown; it resumes at the next start", "err", err)
			}
			return nil
		}
		// Project what has gathered, and more only while a full batch
		// shows a backlog: chasing each new commit would undo the gathering.
		for {
			n, err := e.step(ctx, e.o.Batch)
			if err != nil && ctx.Err() != nil {
				break // cut short by shutdown, not failed: the catch-up above redoes it
			}
			e.report(err)
			if err != nil || n < e.o.Batch {
				break
			}
		}
	}
}

// failureLogEvery spaces the log lines of a projection that keeps failing
// (it retries every second).
const failureLogEvery = 30 * time.Second

// report tells Options.Reported a step's outcome and logs a failure: the
// first at once, then one line per failureLogEvery with how many were not
// logged, and the recovery. Not leading is not a failure.
func (e *Engine) report(err error) {
	if errors.Is(err, ErrNotLeader) {
		err = nil
	}
	if e.o.Reported != nil {
		e.o.Reported(err)
	}
	if err == nil {
		if e.failing {
			e.o.Logger.Info("projection recovered", "failures_not_logged", e.failures)
			e.failing, e.failures = false, 0
		}
		return
	}
	if e.failing && time.Since(e.failLoggedAt) < failureLogEvery {
		e.failures++
		return
	}
	e.o.Logger.Error("projection failed; retrying every second", "err", err, "failures_not_logged", e.failures)
	e.failing, e.failures, e.failLoggedAt = true, 0, time.Now()
}

// catchUp projects until nothing is left.
func (e *Engine) catchUp(ctx context.Context) error {
	for {
		n, err := e.step(ctx, e.o.Batch)
		if err != nil || n == 0 {
			return err
		}
	}
}

// Rebuild empties the projections and derives them again from the whole
// log, through the same steps as live projection (so it gives the same
// records byte for byte); it returns how many callbacks it applied
// (duplicates and bodies that no longer parse are not applied).
func (e *Engine) Rebuild(ctx context.Context) (int64, error) {
	e.work.Lock()
	e.rebuilding = true
	defer func() {
		e.work.Lock()
		e.rebuilding, e.dueAt = false, time.Time{}
		e.work.Unlock()
	}()
	e.cache.clear()
	if err := e.d.Reset(ctx); err != nil {
		e.work.Unlock()
		return 0, fmt.Errorf("rebuild: %w", err)
	}
	e.reset()
	e.rebuilt = 0
	e.work.Unlock()
	applied := func() int64 {
		e.work.Lock()
		defer e.work.Unlock()
		return e.rebuilt
	}
	for {
		n, _, err := e.stepCounting(ctx, 4*e.o.Batch)
		if err != nil {
			return applied(), fmt.Errorf("rebuild: %w", err)
		}
		if n == 0 {
			return applied(), nil
		}
	}
}

// Exclusive projects what the log holds, then runs fn while no step runs,
// and drops the cached records: fn may remove recordings (ledger.Remover),
// and a step must neither save a record fn deleted nor keep it cached.
// Rows committed while fn runs are projected after it.
func (e *Engine) Exclusive(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := e.catchUp(ctx); err != nil && !errors.Is(err, ErrNotLeader) {
		return err
	}
	// Where another instance projects, wait for it to have projected
	// what this one logged: fn reads the projections.
	if err := e.Fresh(ctx); err != nil {
		return err
	}
	e.work.Lock()
	defer e.work.Unlock()
	defer e.cache.clear()
	return fn(ctx)
}

// step applies up to limit rows after the watermark, and what fell due,
// and returns how many rows it read and due recordings it moved on.
func (e *Engine) step(ctx context.Context, limit int) (int, error) {
	n, _, err := e.stepCounting(ctx, limit)
	return n, err
}

func (e *Engine) stepCounting(ctx context.Context, limit int) (n int, applied int64, err error) {
	e.work.Lock()
	defer e.work.Unlock()
	n, applied, err = e.stepLocked(ctx, limit)
	if errors.Is(err, ErrRemoved) {
		// Another instance removed recordings since this one cached
		// them: the cache is dropped (stepLocked did), so once more.
		n, applied, err = e.stepLocked(ctx, limit)
	}
	if e.rebuilding {
		e.rebuilt += applied
	}
	return n, applied, err
}

func (e *Engine) stepLocked(ctx context.Context, limit int) (n int, applied int64, err error) {
	e.mu.Lock()
	if e.moved {
		e.cache.clear()
		e.moved = false
	}
	e.mu.Unlock()
	from := e.Projected()
	rows, cbs, err := e.next(ctx, from, limit)
	if errors.Is(err, ErrNotLeader) {
		e.follow(ctx)
		return 0, 0, err
	}
	if err != nil {
		return 0, 0, err
	}
	e.mu.Lock()
	e.following = false
	e.mu.Unlock()
	var due []string
	now := e.o.Now()
	if len(rows) < limit && (e.rebuilding || now.Sub(e.dueAt) >= e.o.Due) {
		// Caught up with the log: what fell due by time alone comes next.
		if due, err = e.d.DueRecords(ctx, now.UnixMilli(), limit); err != nil {
			return 0, 0, fmt.Errorf("find recordings due: %w", err)
		}
		e.dueAt = now
	}
	if len(rows) == 0 && len(due) == 0 {
		return 0, 0, nil
	}
	b, applied, err := e.fold(ctx, from, rows, cbs, due, now.UnixMilli())
	if err != nil {
		return 0, 0, err
	}
	// Recordings whose due time moved count as work done, so a rebuild
	// (and the catch-up at start) goes on while the due pass finds more;
	// one whose due time did not move is not counted, so it cannot keep
	// the loop going.
	moved := 0
	if len(due) > 0 {
		isDue := make(map[string]bool, len(due))
		for _, id := range due {
			isDue[id] = true
		}
		for _, sv := range b.Records {
			if isDue[sv.Record.State.RecordID] && sv.DueAt != sv.DueBefore {
				moved++
			}
		}
	}
	if err := e.d.Save(ctx, b); err != nil {
		e.cache.clear() // what the step cached is not stored
		if errors.Is(err, ErrMoved) {
			if pos, werr := e.d.Watermark(ctx); werr == nil {
				e.mu.Lock()
				e.projected, e.handed = pos, nil
				e.mu.Unlock()
			}
		}
		return 0, 0, fmt.Errorf("project: %w", err)
	}
	for _, s := range b.Records {
		e.cache.put(s.Record)
		if s.Completed && e.o.Completed != nil && !e.rebuilding {
			e.o.Completed(&s.Record.State)
		}
	}
	e.advance(b.To)
	if len(b.Outbound) > 0 && e.o.OnOutbound != nil {
		e.o.OnOutbound()
	}
	return len(rows) + moved, applied, nil
}

// follow notes that another instance projects, and takes its watermark.
func (e *Engine) follow(ctx context.Context) {
	e.mu.Lock()
	e.following, e.handed = true, nil
	e.mu.Unlock()
	e.cache.clear() // the other instance writes the records now
	if pos, err := e.d.Watermark(ctx); err == nil {
		e.advance(pos)
	}
}

// next returns up to limit rows after from: from memory when the commits
// handed them over, else from the log (after a restart, for a gap, or on
// a log that does not number its rows). cbs is nil, or the rows' parsed
// callbacks.
func (e *Engine) next(ctx context.Context, from Position, limit int) ([]Row, []rc.Callback, error) {
	e.mu.Lock()
	i := 0
	for i < len(e.handed) && e.handed[i].row.Seq <= from.Seq {
		i++
	}
	e.handed = e.handed[i:]
	if len(e.handed) > 0 && e.handed[0].row.Seq == from.Seq+1 {
		k := min(len(e.handed), limit)
		rows, cbs := make([]Row, k), make([]rc.Callback, k)
		for j, h := range e.handed[:k] {
			rows[j], cbs[j] = h.row, h.cb
		}
		e.mu.Unlock()
		return rows, cbs, nil
	}
	if len(e.handed) > 0 { // read only the gap: memory has the rest
		limit = min(limit, int(e.handed[0].row.Seq-from.Seq-1))
	}
	e.mu.Unlock()
	rows, err := e.d.ReadLog(ctx, from.Log, limit)
	return rows, nil, err
}
