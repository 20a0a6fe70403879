// Package dispatch sends the outbox's events to destinations: one worker
// per enabled destination, on the one instance that holds its lease.
//
// A worker reads the outbox from its destination's cursor, a batch at a
// time, and sends each recording's events in order while different
// recordings go in parallel (Options.Concurrency at a time). An event that
// fails is held for a retry on the schedule, and its recording's later
// events are held behind it, so event n+1 never goes before n was
// acknowledged; the cursor moves past held events (they are in the held
// table), so other recordings are not held up. An event whose retries are
// spent becomes a dead letter and the recording's next event goes. The
// cursor and the held events are committed after the attempts: a crash
// between the two sends those events again, with the same ids.
package dispatch

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/webhook"
)

// Options configure a Dispatcher; the zero value is the documented default
// but for Store and Owner.
type Options struct {
	Store delivery.Store
	// Owner names this instance in the destinations' leases.
	Owner string
	// Wake receives when the local engine committed events.
	Wake <-chan struct{}
	// Announce is told whether any destination exists (the engine keeps
	// the outbox only then).
	Announce func(on bool)
	Senders  Senders
	Schedule webhook.Schedule
	// DisableAfter disables a destination whose attempts have failed for
	// this long without a success (default 5 days).
	DisableAfter time.Duration
	Concurrency  int           // recordings in flight per destination (default 16)
	Batch        int           // outbox events per round (default 256)
	Poll         time.Duration // how often a worker looks for events without a wake-up (default 250 ms)
	Refresh      time.Duration // how often the destinations are reread (default 2 s)
	Lease        time.Duration // how long a lease lasts unrenewed (default 30 s: longer than an attempt may take)
	Retention    time.Duration // events older than this are pruned once handled (default 7 days)
	Now          func() time.Time
	Logger       *slog.Logger
	// OnAttempt, when set, is told of every attempt: its outcome and, for
	// a delivery, the time from the event's commit.
	OnAttempt func(destination string, outcome string, lag time.Duration)
	// OnDisabled, when set, is told of a destination the dispatcher
	// disabled.
	OnDisabled func(destination, reason string)
	// OnDead, when set, is told how many events a destination's round
	// made dead letters, once they are committed.
	OnDead func(destination string, n int)
}

func (o *Options) defaults() {
	if o.DisableAfter <= 0 {
		o.DisableAfter = 5 * 24 * time.Hour
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Batch <= 0 {
		o.Batch = 256
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Refresh <= 0 {
		o.Refresh = 2 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Senders == nil {
		o.Senders = DefaultSenders(false, o.Now)
	}
	if o.Announce == nil {
		o.Announce = func(bool) {}
	}
}

// Dispatcher runs the workers.
type Dispatcher struct {
	o      Options
	reload chan struct{}

	mu      sync.Mutex
	workers map[string]*worker
}

// New returns a dispatcher; Run starts it.
func New(o Options) *Dispatcher {
	o.defaults()
	return &Dispatcher{o: o, reload: make(chan struct{}, 1), workers: map[string]*worker{}}
}

// Reload makes the dispatcher reread the destinations now (one was added,
// changed or removed, or dead letters were redelivered).
func (d *Dispatcher) Reload() {
	select {
	case d.reload <- struct{}{}:
	default:
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, w := range d.workers {
		w.poke(true)
	}
}

// Run dispatches until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	refresh := time.NewTicker(d.o.Refresh)
	defer refresh.Stop()
	var wg sync.WaitGroup
	defer func() {
		d.mu.Lock()
		for id, w := range d.workers {
			w.stop()
			delete(d.workers, id)
		}
		d.mu.Unlock()
		wg.Wait()
	}()
	lastPrune := time.Time{}
	for {
		d.sync(ctx, &wg)
		if now := d.o.Now(); now.Sub(lastPrune) > time.Minute {
			lastPrune = now
			if n, err := d.o.Store.PruneOutbox(ctx, now.Add(-d.o.Retention).UnixMilli()); err != nil {
				d.o.Logger.Warn("outbox pruning failed", "err", err)
			} else if n > 0 {
				d.o.Logger.Debug("outbox pruned", "events", n)
			}
		}
		if !d.wait(ctx, refresh.C) {
			return nil
		}
	}
}

// wait passes the engine's wake-ups on to the workers until it is time to
// reread the destinations; false when ctx ended.
func (d *Dispatcher) wait(ctx context.Context, refresh <-chan time.Time) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case <-refresh:
			return true
		case <-d.reload:
			return true
		case <-d.o.Wake:
			d.mu.Lock()
			for _, w := range d.workers {
				w.poke(false)
			}
			d.mu.Unlock()
		}
	}
}

// sync starts a worker for each enabled destination and stops those of
// the others.
func (d *Dispatcher) sync(ctx context.Context, wg *sync.WaitGroup) {
	list, err := d.o.Store.Destinations(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.o.Logger.Warn("reading the destinations failed; retrying", "err", err)
		}
		return
	}
	d.o.Announce(len(list) > 0)
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[string]bool{}
	for _, dst := range list {
		if !dst.Enabled {
			continue
		}
		seen[dst.ID] = true
		if w := d.workers[dst.ID]; w != nil {
			// A worker that stopped itself (it disabled the destination,
			// which was enabled again since) is replaced too.
			if w.stopped() || w.changed(&dst) {
				w.stop()
				delete(d.workers, dst.ID)
			} else {
				continue
			}
		}
		sender, err := d.o.Senders(&dst)
		if err != nil {
			d.o.Logger.Error("a destination cannot be served", "destination", dst.ID, "err", err)
			continue
		}
		w := newWorker(d, dst, sender)
		d.workers[dst.ID] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer sender.Close()
			w.run(ctx)
		}()
	}
	for id, w := range d.workers {
		if !seen[id] {
			w.stop()
			delete(d.workers, id)
		}
	}
}

// Depths returns, per destination served here, how many events it holds
// for a retry.
func (d *Dispatcher) Depths() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]int, len(d.workers))
	for id, w := range d.workers {
		out[id] = w.depth()
	}
	return out
}

// worker serves one destination.
type worker struct {
	d      *Dispatcher
	spec   delivery.Destination // as started: what sync compares (read only)
	dst    delivery.Destination // the worker's own copy
	sender Sender
	wake   chan struct{}
	quit   chan struct{}
	once   sync.Once

	mu      sync.Mutex
	reload  bool                       // reread the held events
	leased  bool                       // this instance holds the lease
	leaseAt time.Time                  // when it was last renewed
	cursor  int64                      // as committed
	held    map[string][]delivery.Held // by recording, in seq order
}

func newWorker(d *Dispatcher, dst delivery.Destination, s Sender) *worker {
	return &worker{d: d, spec: dst, dst: dst, sender: s, wake: make(chan struct{}, 1), quit: make(chan struct{})}
}

func (w *worker) poke(reload bool) {
	if reload {
		w.mu.Lock()
		w.reload = true
		w.mu.Unlock()
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) stop() { w.once.Do(func() { close(w.quit) }) }

func (w *worker) stopped() bool {
	select {
	case <-w.quit:
		return true
	default:
		return false
	}
}

// changed reports whether dst differs from what the worker serves in what
// sending depends on.
func (w *worker) changed(dst *delivery.Destination) bool {
	a, b := w.spec, *dst
	a.Cursor, b.Cursor, a.FailingSince, b.FailingSince = 0, 0, 0, 0
	return fmt.Sprint(a) != fmt.Sprint(b)
}

func (w *worker) depth() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, h := range w.held {
		n += len(h)
	}
	return n
}

func (w *worker) run(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-w.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer.C:
		}
		wait, err := w.serve(ctx)
		if err != nil && ctx.Err() == nil {
			w.d.o.Logger.Warn("delivery round failed; retrying", "destination", w.dst.ID, "err", err)
			wait = time.Second
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
	}
}

// serve runs rounds while there is work, holding the lease; it returns
// how long to wait before the next look.
func (w *worker) serve(ctx context.Context) (time.Duration, error) {
	o := &w.d.o
	for {
		leased, err := w.lease(ctx)
		if err != nil || !leased {
			return o.Lease / 3, err // another instance serves it
		}
		more, next, err := w.round(ctx)
		if err != nil {
			if errors.Is(err, delivery.ErrLeaseLost) {
				w.leased = false
				return o.Lease / 3, nil
			}
			return 0, err
		}
		if !more {
			wait := o.Poll
			if !next.IsZero() {
				wait = min(wait, max(next.Sub(o.Now()), 0))
			}
			return wait, nil
		}
		if ctx.Err() != nil {
			return 0, nil
		}
	}
}

// lease takes or renews the destination's lease (renewed once a third of
// it has passed) and, when newly taken or asked to, rereads the cursor and
// the held events: another instance, or the API, may have changed them.
func (w *worker) lease(ctx context.Context) (bool, error) {
	o := &w.d.o
	now := o.Now()
	if !w.leased || now.Sub(w.leaseAt) > o.Lease/3 {
		ok, err := w.renew(ctx, now)
		if err != nil || !ok {
			w.leased = false
			return false, err
		}
		// Reread the cursor and the held events at every renewal, not only
		// when the lease is new: another instance's API may have put dead
		// letters back, and a lease this instance lost unnoticed (a stall
		// longer than the lease) may have been served by another.
		w.mu.Lock()
		w.reload = true
		w.mu.Unlock()
		w.leased, w.leaseAt = true, now
	}
	w.mu.Lock()
	reload := w.reload
	w.reload = false
	w.mu.Unlock()
	if !reload {
		return true, nil
	}
	dst, err := o.Store.Destination(ctx, w.dst.ID)
	if err == nil {
		var held []delivery.Held
		if held, err = o.Store.Held(ctx, w.dst.ID); err == nil {
			w.mu.Lock()
			w.cursor, w.dst.FailingSince = dst.Cursor, dst.FailingSince
			w.held = map[string][]delivery.Held{}
			for _, h := range held {
				w.held[h.RecordID] = append(w.held[h.RecordID], h)
			}
			w.mu.Unlock()
			return true, nil
		}
	}
	w.mu.Lock()
	w.reload = true // again next time
	w.mu.Unlock()
	return false, err
}

// renew takes or extends the lease from now for Options.Lease.
func (w *worker) renew(ctx context.Context, now time.Time) (bool, error) {
	return w.d.o.Store.Lease(ctx, w.dst.ID, w.d.o.Owner, now.UnixMilli(), now.Add(w.d.o.Lease).UnixMilli())
}

// item is an event to attempt in a round.
type item struct {
	ev   delivery.Stored
	held *delivery.Held // nil for an event read from the cursor
}

// outcome is what a round did with one recording's items.
type outcome struct {
	hold     []delivery.Held
	release  []int64
	dead     []delivery.DeadLetter
	attempts []delivery.AttemptRecord
	ok, fail bool
	gone     bool
}

// round reads a batch from the cursor and the retries due, attempts them
// and commits; more says a full batch was read, next when the earliest
// held event falls due.
func (w *worker) round(ctx context.Context) (more bool, next time.Time, err error) {
	o := &w.d.o
	events, err := o.Store.Outbox(ctx, w.cursor, o.Batch)
	if err != nil {
		return false, next, err
	}
	now := o.Now()
	groups := map[string][]item{}
	var order []string
	add := func(rec string, it item) {
		if _, ok := groups[rec]; !ok {
			order = append(order, rec)
		}
		groups[rec] = append(groups[rec], it)
	}
	p := delivery.Progress{Destination: w.dst.ID, Owner: o.Owner}
	// Retries due: each recording's held events, when the first is due.
	w.mu.Lock()
	var due []delivery.Held
	for _, hs := range w.held {
		if hs[0].NextAt <= now.UnixMilli() {
			due = append(due, hs...)
		}
	}
	w.mu.Unlock()
	if len(due) > 0 {
		seqs := make([]int64, len(due))
		for i, h := range due {
			seqs[i] = h.Seq
		}
		stored, err := o.Store.OutboxEvents(ctx, seqs)
		if err != nil {
			return false, next, err
		}
		for _, h := range due {
			ev, ok := stored[h.Seq]
			if !ok { // pruned while held: nothing left to send
				p.Release = append(p.Release, h.Seq)
				continue
			}
			add(h.RecordID, item{ev: ev, held: &h})
		}
	}
	w.mu.Lock()
	for _, ev := range events {
		if !w.dst.Filter.Matches(&ev) {
			continue
		}
		if len(w.held[ev.RecordID]) > 0 {
			// Behind a held event: held too, in order.
			p.Hold = append(p.Hold, delivery.Held{Seq: ev.Seq, RecordID: ev.RecordID})
			continue
		}
		add(ev.RecordID, item{ev: ev})
	}
	w.mu.Unlock()
	if len(events) > 0 {
		p.Cursor = events[len(events)-1].Seq
	}

	// The lease is renewed while the attempts run (a round of slow
	// receivers can outlast it); if it is lost, the attempts stop and the
	// new holder sends them.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	heartbeat := make(chan struct{})
	defer close(heartbeat)
	go func() {
		tick := time.NewTicker(o.Lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-heartbeat:
				return
			case <-tick.C:
				if ok, err := w.renew(ctx, o.Now()); err != nil || !ok {
					cancel()
					return
				}
			}
		}
	}()
	outs := make([]outcome, len(order))
	sem := make(chan struct{}, o.Concurrency)
	var wg sync.WaitGroup
	for i, rec := range order {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			outs[i] = w.attempt(ctx, groups[rec])
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return false, next, ctx.Err() // attempts cut short: the next holder sends them again
	}

	var (
		ok, fail, gone bool
		lastDelivered  *delivery.AttemptRecord
	)
	for _, out := range outs {
		p.Hold = append(p.Hold, out.hold...)
		p.Release = append(p.Release, out.release...)
		p.Dead = append(p.Dead, out.dead...)
		// The attempt log keeps every failure, and of a round's
		// deliveries the last: a row per delivered event would double
		// the store's writes while all is well.
		for i, a := range out.attempts {
			if a.Outcome != webhook.Delivered.String() {
				p.Attempts = append(p.Attempts, a)
			} else if lastDelivered == nil || a.At >= lastDelivered.At {
				lastDelivered = &out.attempts[i]
			}
		}
		ok, fail, gone = ok || out.ok, fail || out.fail, gone || out.gone
	}
	if lastDelivered != nil {
		p.Attempts = append(p.Attempts, *lastDelivered)
	}
	failingSince := w.dst.FailingSince
	switch {
	case gone:
		p.Disable = "the receiver answered 410 Gone"
		p.Cursor = 0 // re-enabled, it resumes where it stood
		p.Hold, p.Release, p.Dead = nil, nil, nil
	case fail && failingSince == 0:
		failingSince = now.UnixMilli()
		p.FailingSince = &failingSince
	case ok && !fail && failingSince != 0:
		failingSince = 0
		p.FailingSince = &failingSince
	}
	if !gone && failingSince != 0 && now.Sub(time.UnixMilli(failingSince)) >= o.DisableAfter {
		p.Disable = fmt.Sprintf("failing since %s", time.UnixMilli(failingSince).UTC().Format(time.RFC3339))
	}
	if p.Disable != "" {
		ev := delivery.NewDisabledEvent(&w.dst, RedactURL(w.dst.URL), p.Disable, now.UnixMilli())
		payload, err := json.Marshal(ev)
		if err != nil {
			return false, next, err
		}
		p.Announce = &delivery.Stored{ID: ev.ID, Type: ev.Type, At: now.UnixMilli(), CommittedAt: now.UnixMilli(), Payload: payload}
	}
	if p.Cursor == 0 && len(p.Hold) == 0 && len(p.Release) == 0 && len(p.Dead) == 0 && len(p.Attempts) == 0 && p.Disable == "" && p.FailingSince == nil {
		return false, w.nextDue(), nil
	}
	if err := o.Store.Commit(ctx, &p); err != nil {
		return false, next, err
	}
	w.apply(&p)
	w.dst.FailingSince = failingSince
	if len(p.Dead) > 0 && o.OnDead != nil {
		o.OnDead(w.dst.ID, len(p.Dead))
	}
	if p.Disable != "" {
		o.Logger.Error("destination disabled", "destination", w.dst.ID, "reason", p.Disable)
		if o.OnDisabled != nil {
			o.OnDisabled(w.dst.ID, p.Disable)
		}
		w.stop()
		return false, next, nil
	}
	return len(events) == o.Batch, w.nextDue(), nil
}

// attempt sends one recording's items in order, until one fails.
func (w *worker) attempt(ctx context.Context, items []item) outcome {
	o := &w.d.o
	var out outcome
	for i, it := range items {
		a := w.sender.Send(ctx, &it.ev)
		if ctx.Err() != nil {
			return out
		}
		at := o.Now()
		rec := delivery.AttemptRecord{At: at.UnixMilli(), Seq: it.ev.Seq, EventID: it.ev.ID, Type: it.ev.Type,
			Outcome: a.Outcome.String(), Status: a.Status, LatencyMs: a.Latency.Milliseconds()}
		if a.Err != nil {
			rec.Error = a.Err.Error()
		}
		out.attempts = append(out.attempts, rec)
		if o.OnAttempt != nil {
			o.OnAttempt(w.dst.ID, rec.Outcome, at.Sub(time.UnixMilli(it.ev.CommittedAt)))
		}
		switch a.Outcome {
		case webhook.Delivered:
			out.ok = true
			if it.held != nil {
				out.release = append(out.release, it.ev.Seq)
			}
			continue
		case webhook.Gone:
			out.gone = true
			return out
		}
		out.fail = true
		attempts := 1
		if it.held != nil {
			attempts = it.held.Attempts + 1
		}
		lastError := rec.Error
		if lastError == "" {
			lastError = fmt.Sprintf("answered %d", a.Status)
		}
		wait, retry := o.Schedule.Next(attempts, a, nil)
		if !retry {
			out.dead = append(out.dead, delivery.DeadLetter{Seq: it.ev.Seq, EventID: it.ev.ID, Type: it.ev.Type, RecordID: it.ev.RecordID,
				Attempts: attempts, LastStatus: a.Status, LastError: lastError, DeadAt: at.UnixMilli()})
			continue // the recording's next event goes
		}
		out.hold = append(out.hold, delivery.Held{Seq: it.ev.Seq, RecordID: it.ev.RecordID, Attempts: attempts,
			NextAt: at.Add(wait).UnixMilli(), LastStatus: a.Status, LastError: lastError})
		for _, rest := range items[i+1:] {
			if rest.held == nil {
				out.hold = append(out.hold, delivery.Held{Seq: rest.ev.Seq, RecordID: rest.ev.RecordID})
			}
		}
		return out
	}
	return out
}

// apply brings the in-memory state to what p committed.
func (w *worker) apply(p *delivery.Progress) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p.Cursor > w.cursor {
		w.cursor = p.Cursor
	}
	gone := map[int64]bool{}
	for _, s := range p.Release {
		gone[s] = true
	}
	for _, d := range p.Dead {
		gone[d.Seq] = true
	}
	touched := map[string]bool{}
	for rec, hs := range w.held {
		w.held[rec] = slices.DeleteFunc(hs, func(h delivery.Held) bool { return gone[h.Seq] })
		touched[rec] = true
	}
	for _, h := range p.Hold {
		hs := w.held[h.RecordID]
		if i := slices.IndexFunc(hs, func(x delivery.Held) bool { return x.Seq == h.Seq }); i >= 0 {
			hs[i] = h
		} else {
			hs = append(hs, h)
		}
		w.held[h.RecordID] = hs
		touched[h.RecordID] = true
	}
	for rec := range touched {
		hs := w.held[rec]
		if len(hs) == 0 {
			delete(w.held, rec)
			continue
		}
		slices.SortFunc(hs, func(a, b delivery.Held) int { return cmp.Compare(a.Seq, b.Seq) })
		// The first is due: right away when it waited behind one that
		// was delivered or died.
		if hs[0].NextAt == 0 {
			hs[0].NextAt = w.d.o.Now().UnixMilli()
		}
	}
}

// nextDue is when the earliest held event falls due (zero when none).
func (w *worker) nextDue() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var next int64
	for _, hs := range w.held {
		if next == 0 || hs[0].NextAt < next {
			next = hs[0].NextAt
		}
	}
	if next == 0 {
		return time.Time{}
	}
	return time.UnixMilli(next)
}
