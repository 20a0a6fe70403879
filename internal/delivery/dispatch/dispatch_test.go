package dispatch_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natsd "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/dispatch"
	"github.com/recledger/recledger/internal/delivery/webhook"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/pgstore"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/internal/storetest"
)

// store is what the tests need of a store.
type store interface {
	ledger.Store
	delivery.Source
}

// receiver is a webhook endpoint that checks every request with the
// Standard Webhooks library and the order rule: a recording's event n+1
// never arrives before n was acknowledged.
type receiver struct {
	t      *testing.T
	wh     *standardwebhooks.Webhook
	srv    *httptest.Server
	answer func(n int, ev *delivery.Event) (int, http.Header) // nil: 200

	mu        sync.Mutex
	requests  int
	acked     map[string][]string // recordId → event ids acknowledged, in order (repeats kept)
	last      map[string]int      // recordId → the highest sequence acknowledged
	inFlight  map[string]bool     // recordId → a request is being answered
	times     []time.Time         // of every request
	unordered map[string]bool     // recordIds whose order is not checked (an event dies)
	filtered  bool                // the filter leaves out some of each recording's events: their sequences have gaps
}

func newReceiver(t *testing.T, secret webhook.Secret) *receiver {
	wh, err := standardwebhooks.NewWebhook(secret.Reveal())
	if err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, wh: wh, acked: map[string][]string{}, last: map[string]int{}, inFlight: map[string]bool{}, unordered: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := r.wh.Verify(body, req.Header); err != nil {
		r.t.Errorf("the Standard Webhooks library refuses a request: %v", err)
		w.WriteHeader(400)
		return
	}
	var ev delivery.Event
	if err := json.Unmarshal(body, &ev); err != nil || req.Header.Get("webhook-id") != ev.ID {
		r.t.Errorf("body %s, webhook-id %s: %v", body, req.Header.Get("webhook-id"), err)
	}
	r.mu.Lock()
	r.requests++
	n := r.requests
	r.times = append(r.times, time.Now())
	if r.inFlight[ev.RecordID] {
		r.t.Errorf("two events of %s in flight at once", ev.RecordID)
	}
	if ev.Sequence > r.last[ev.RecordID]+1 && !r.unordered[ev.RecordID] && !r.filtered {
		r.t.Errorf("%s: event %d sent before %d was acknowledged", ev.RecordID, ev.Sequence, r.last[ev.RecordID]+1)
	}
	r.inFlight[ev.RecordID] = true
	r.mu.Unlock()
	status, header := 200, http.Header(nil)
	if r.answer != nil {
		status, header = r.answer(n, &ev)
	}
	r.mu.Lock()
	delete(r.inFlight, ev.RecordID)
	if status/100 == 2 {
		r.acked[ev.RecordID] = append(r.acked[ev.RecordID], ev.ID)
		r.last[ev.RecordID] = max(r.last[ev.RecordID], ev.Sequence)
	}
	r.mu.Unlock()
	for k, v := range header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
}

// ackedOnce returns each recording's acknowledged ids, repeats dropped.
func (r *receiver) ackedOnce() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for rec, ids := range r.acked {
		seen := map[string]bool{}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				out[rec] = append(out[rec], id)
			}
		}
	}
	return out
}

// expected returns the outbox's ids per recording, in order, as filter
// selects them.
func expected(t *testing.T, s store, f delivery.Filter) map[string][]string {
	t.Helper()
	events, err := s.Delivery().Outbox(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, e := range events {
		if f.Matches(&e) {
			out[e.RecordID] = append(out[e.RecordID], e.ID)
		}
	}
	return out
}

// waitFor polls cond for up to 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 30 s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// feed appends n recordings of segs segments, received 10 minutes ago so
// that they settle and are completed at the engine's next periodic pass,
// and waits until every one is completed.
func feed(t *testing.T, s store, prefix string, n, segs int) {
	t.Helper()
	at := time.Now().Add(-10 * time.Minute)
	for i := range n {
		for j, cb := range ledgertest.Recording(t, fmt.Sprintf("%s-%d", prefix, i), segs, false) {
			if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: at.Add(time.Duration(i*100+j) * time.Millisecond)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitFor(t, "every recording completed", func() bool {
		done := expectedOfType(t, s, delivery.Completed)
		for i := range n {
			if len(done[fmt.Sprintf("%s-%d", prefix, i)]) == 0 {
				return false
			}
		}
		return true
	})
}

func expectedOfType(t *testing.T, s store, typ delivery.Type) map[string][]string {
	return expected(t, s, delivery.Filter{Types: []delivery.Type{typ}})
}

var fastRetries = webhook.Schedule{Waits: []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond}}

// run starts a dispatcher on s until the test ends or stop is called.
func run(t *testing.T, s store, o dispatch.Options) (d *dispatch.Dispatcher, stop func()) {
	t.Helper()
	o.Store, o.Wake, o.Announce = s.Delivery(), s.Announced(), s.Announce
	if o.Owner == "" {
		o.Owner = "test"
	}
	if o.Senders == nil {
		o.Senders = dispatch.DefaultSenders(true, time.Now)
	}
	if o.Schedule.Waits == nil {
		o.Schedule = fastRetries
	}
	if o.Refresh == 0 {
		o.Refresh = 50 * time.Millisecond
	}
	d = dispatch.New(o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return d, stop
}

func addWebhook(t *testing.T, s store, id, url string, secret webhook.Secret, f delivery.Filter) {
	t.Helper()
	d := delivery.Destination{ID: id, Kind: delivery.Webhook, URL: url, Enabled: true, CreatedAt: time.Now().UnixMilli(),
		Filter: f, Keys: []delivery.Key{{Secret: secret.Reveal()}}}
	if err := s.Delivery().AddDestination(context.Background(), &d); err != nil {
		t.Fatal(err)
	}
	s.Announce(true) // the dispatcher would, at its next refresh
}

func sqlite(t *testing.T) store { return storetest.SQLite(t, sqlitestore.Options{}) }

// eachStore runs test on SQLite and PostgreSQL.
func eachStore(t *testing.T, test func(t *testing.T, s store)) {
	t.Run("sqlite", func(t *testing.T) { test(t, sqlite(t)) })
	t.Run("postgres", func(t *testing.T) { test(t, storetest.Postgres(t, pgstore.Options{})) })
}

// TestDeliversEveryEventInOrder: with a receiver that fails some events
// once or twice, every event reaches it, each recording's in order, one at
// a time, signed so that the Standard Webhooks library accepts them.
func TestDeliversEveryEventInOrder(t *testing.T) {
	eachStore(t, func(t *testing.T, s store) {
		secret := webhook.NewSecret()
		r := newReceiver(t, secret)
		var mu sync.Mutex
		rng := rand.New(rand.NewPCG(1, 2))
		failures := map[string]int{} // per event, how many attempts fail: at most 2 of the 4 it gets
		r.answer = func(_ int, ev *delivery.Event) (int, http.Header) {
			mu.Lock()
			defer mu.Unlock()
			n, ok := failures[ev.ID]
			if !ok {
				n = max(rng.IntN(6)-3, 0)
			}
			failures[ev.ID] = n - 1
			if n > 0 {
				return 500, nil
			}
			return 204, nil
		}
		addWebhook(t, s, "dst_1", r.srv.URL, secret, delivery.Filter{})
		run(t, s, dispatch.Options{})
		feed(t, s, "rec", 12, 3)
		want := expected(t, s, delivery.Filter{})
		waitFor(t, "every event acknowledged", func() bool { return fmt.Sprint(r.ackedOnce()) == fmt.Sprint(want) })
	})
}

// TestFilter: a destination receives only what its filter selects.
func TestFilter(t *testing.T) {
	s := sqlite(t)
	secret := webhook.NewSecret()
	r := newReceiver(t, secret)
	f := delivery.Filter{Types: []delivery.Type{delivery.Completed}}
	r.filtered = true
	addWebhook(t, s, "dst_f", r.srv.URL, secret, f)
	run(t, s, dispatch.Options{})
	feed(t, s, "flt", 3, 1)
	want := expected(t, s, f)
	waitFor(t, "the completed events", func() bool { return fmt.Sprint(r.ackedOnce()) == fmt.Sprint(want) })
	time.Sleep(200 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.requests != 3 {
		t.Errorf("%d requests, want 3 (one completed per recording)", r.requests)
	}
}

// TestRetryAfter: a 429 with Retry-After is retried no sooner than asked,
// though the schedule would retry sooner.
func TestRetryAfter(t *testing.T) {
	s := sqlite(t)
	secret := webhook.NewSecret()
	r := newReceiver(t, secret)
	r.answer = func(n int, _ *delivery.Event) (int, http.Header) {
		if n == 1 {
			return 429, http.Header{"Retry-After": {"2"}}
		}
		return 200, nil
	}
	r.filtered = true
	addWebhook(t, s, "dst_r", r.srv.URL, secret, delivery.Filter{Types: []delivery.Type{delivery.Completed}})
	run(t, s, dispatch.Options{})
	feed(t, s, "ra", 1, 1)
	waitFor(t, "the retry", func() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.requests >= 2 })
	r.mu.Lock()
	defer r.mu.Unlock()
	// Due times are kept to the millisecond: allow for its rounding.
	if gap := r.times[1].Sub(r.times[0]); gap < 2*time.Second-5*time.Millisecond {
		t.Errorf("retried %v after a 429 that asked for 2 s", gap)
	}
}

// TestGoneDisables: a 410 disables the destination, with the reason, and
// nothing more is sent to it.
func TestGoneDisables(t *testing.T) {
	s := sqlite(t)
	secret := webhook.NewSecret()
	r := newReceiver(t, secret)
	var gone atomic.Bool
	gone.Store(true)
	r.answer = func(int, *delivery.Event) (int, http.Header) {
		if gone.Load() {
			return 410, nil
		}
		return 200, nil
	}
	addWebhook(t, s, "dst_g", r.srv.URL, secret, delivery.Filter{})
	var disabled []string
	var mu sync.Mutex
	// No periodic look at the destinations: only Reload makes one, so the
	// re-enabling below comes while the stopped worker is still known.
	disp, _ := run(t, s, dispatch.Options{Refresh: time.Hour,
		OnDisabled: func(id, reason string) { mu.Lock(); disabled = append(disabled, id); mu.Unlock() }})
	feed(t, s, "gone", 2, 1)
	waitFor(t, "the destination disabled", func() bool {
		d, err := s.Delivery().Destination(context.Background(), "dst_g")
		return err == nil && !d.Enabled
	})
	d, _ := s.Delivery().Destination(context.Background(), "dst_g")
	mu.Lock()
	if d.DisabledReason == "" || fmt.Sprint(disabled) != "[dst_g]" {
		t.Errorf("disabled with reason %q; told %v", d.DisabledReason, disabled)
	}
	mu.Unlock()
	r.mu.Lock()
	n := r.requests
	r.mu.Unlock()
	time.Sleep(300 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.requests != n || n > 2 {
		t.Errorf("%d requests, then %d; want one per recording in flight, then none", n, r.requests)
	}
	r.mu.Unlock()
	// Enabled again at once (before the dispatcher's next look at the
	// destinations), it is served again: from where it stood.
	gone.Store(false)
	d.Enabled = true
	if err := s.Delivery().UpdateDestination(context.Background(), &d); err != nil {
		t.Fatal(err)
	}
	disp.Reload()
	want := expected(t, s, delivery.Filter{})
	waitFor(t, "every event after enabling", func() bool { return fmt.Sprint(r.ackedOnce()) == fmt.Sprint(want) })
	r.mu.Lock()
}

// TestDeadLettersAndRedelivery: an event whose retries are spent becomes a
// dead letter and its recording's next events go; redelivered, it
// arrives.
func TestDeadLettersAndRedelivery(t *testing.T) {
	eachStore(t, func(t *testing.T, s store) {
		secret := webhook.NewSecret()
		r := newReceiver(t, secret)
		var mu sync.Mutex
		refuse := true
		r.answer = func(_ int, ev *delivery.Event) (int, http.Header) {
			mu.Lock()
			defer mu.Unlock()
			if refuse && ev.Type == delivery.Ended {
				return 500, nil
			}
			return 200, nil
		}
		addWebhook(t, s, "dst_d", r.srv.URL, secret, delivery.Filter{})
		told := map[string]int{} // OnDead's counts, by destination
		d, _ := run(t, s, dispatch.Options{OnDead: func(id string, n int) { mu.Lock(); told[id] += n; mu.Unlock() }})
		r.unordered["dl-0"] = true // an event dies: the ones after it go without it
		feed(t, s, "dl", 1, 2)
		var dead []delivery.DeadLetter
		waitFor(t, "a dead letter", func() bool {
			dead, _ = s.Delivery().DeadLetters(context.Background(), "dst_d", 10)
			return len(dead) == 1
		})
		if dead[0].Type != delivery.Ended || dead[0].Attempts != 4 || dead[0].LastStatus != 500 {
			t.Errorf("dead letter %+v, want the ended event after 4 attempts, last answered 500", dead[0])
		}
		// OnDead is told after the commit the store showed.
		waitFor(t, "OnDead told of the dead letter", func() bool { mu.Lock(); defer mu.Unlock(); return told["dst_d"] >= 1 })
		mu.Lock()
		if len(told) != 1 || told["dst_d"] != 1 {
			t.Errorf("OnDead told %v, want one dead letter of dst_d", told)
		}
		mu.Unlock()
		want := expected(t, s, delivery.Filter{})["dl-0"]
		waitFor(t, "the events after the dead one", func() bool { return len(r.ackedOnce()["dl-0"]) == len(want)-1 })
		mu.Lock()
		refuse = false
		mu.Unlock()
		if n, err := s.Delivery().Redeliver(context.Background(), "dst_d", nil, time.Now().UnixMilli()); err != nil || n != 1 {
			t.Fatalf("Redeliver = %d, %v", n, err)
		}
		d.Reload()
		waitFor(t, "the redelivered event", func() bool { return len(r.ackedOnce()["dl-0"]) == len(want) })
		if dl, _ := s.Delivery().DeadLetters(context.Background(), "dst_d", 10); len(dl) != 0 {
			t.Errorf("dead letters after the redelivery: %+v", dl)
		}
	})
}

// TestRestartSendsAgainWithTheSameIDs: a dispatcher stopped in the middle
// and started again delivers everything, each recording in order; what it
// sends twice has the same ids.
func TestRestartSendsAgainWithTheSameIDs(t *testing.T) {
	s := sqlite(t)
	secret := webhook.NewSecret()
	r := newReceiver(t, secret)
	slow := make(chan struct{})
	r.answer = func(n int, _ *delivery.Event) (int, http.Header) {
		if n == 10 {
			close(slow) // stop the dispatcher while this one is answered
			time.Sleep(100 * time.Millisecond)
		}
		return 200, nil
	}
	addWebhook(t, s, "dst_k", r.srv.URL, secret, delivery.Filter{})
	feedAsync := make(chan struct{})
	_, stop := run(t, s, dispatch.Options{Concurrency: 2})
	go func() { defer close(feedAsync); feed(t, s, "kill", 8, 2) }()
	<-slow
	stop()
	<-feedAsync
	run(t, s, dispatch.Options{Owner: "test"})
	want := expected(t, s, delivery.Filter{})
	waitFor(t, "every event after the restart", func() bool { return fmt.Sprint(r.ackedOnce()) == fmt.Sprint(want) })
}

// TestLeaseHandover: two instances on one PostgreSQL database; one serves
// the destination, and when it stops the other takes over: nothing
// missing, each recording in order.
func TestLeaseHandover(t *testing.T) {
	stores := storetest.PostgresInstances(t, 2, pgstore.Options{})
	secret := webhook.NewSecret()
	r := newReceiver(t, secret)
	var (
		mu     sync.Mutex
		served []int // the instances that made attempts, in order
	)
	addWebhook(t, stores[0], "dst_l", r.srv.URL, secret, delivery.Filter{})
	stores[1].Announce(true)
	var stops [2]func()
	for i := range stores {
		_, stops[i] = run(t, stores[i], dispatch.Options{Owner: fmt.Sprint("instance-", i), Lease: time.Second,
			OnAttempt: func(string, string, time.Duration) {
				mu.Lock()
				defer mu.Unlock()
				if len(served) == 0 || served[len(served)-1] != i {
					served = append(served, i)
				}
			}})
	}
	feed(t, stores[0], "ha", 4, 1)
	waitFor(t, "an instance to serve", func() bool { mu.Lock(); defer mu.Unlock(); return len(served) > 0 })
	mu.Lock()
	first := served[0]
	mu.Unlock()
	stops[first]()
	other := stores[1-first]
	feed(t, other, "hb", 4, 1)
	want := expected(t, other, delivery.Filter{})
	defer func() {
		if t.Failed() {
			t.Logf("want %v\ngot  %v", want, r.ackedOnce())
			d, err := other.Delivery().Destination(context.Background(), "dst_l")
			t.Logf("%+v %v", d, err)
		}
	}()
	waitFor(t, "every event", func() bool { return fmt.Sprint(r.ackedOnce()) == fmt.Sprint(want) })
	mu.Lock()
	defer mu.Unlock()
	if len(served) < 2 || served[len(served)-1] != 1-first {
		t.Errorf("instances that served, in turn: %v; want %d, then %d", served, first, 1-first)
	}
}

// TestLaterEventsWaitBehindARetry: a recording's events that come while
// its first event waits for a retry are held behind it, not sent first.
func TestLaterEventsWaitBehindARetry(t *testing.T) {
	s := sqlite(t)
	secret := webhook.NewSecret()
	r := newReceiver(t, secret)
	first := make(chan struct{})
	r.answer = func(n int, _ *delivery.Event) (int, http.Header) {
		if n == 1 {
			close(first)
			return 503, nil
		}
		return 200, nil
	}
	addWebhook(t, s, "dst_w", r.srv.URL, secret, delivery.Filter{})
	run(t, s, dispatch.Options{Schedule: webhook.Schedule{Waits: []time.Duration{time.Second}}})
	cbs := ledgertest.Recording(t, "wait-0", 2, false)
	at := time.Now().Add(-10 * time.Minute)
	if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cbs[0], ReceivedAt: at}); err != nil {
		t.Fatal(err)
	}
	<-first
	for i, cb := range cbs[1:] {
		if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: at.Add(time.Duration(i+1) * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the completed event", func() bool { return len(expectedOfType(t, s, delivery.Completed)) == 1 })
	want := expected(t, s, delivery.Filter{})
	waitFor(t, "every event", func() bool { return fmt.Sprint(r.ackedOnce()) == fmt.Sprint(want) })
}

// TestDisabledAfterFailingTooLong: a destination whose attempts keep
// failing is disabled once it has failed for DisableAfter, with a reason
// that says since when.
func TestDisabledAfterFailingTooLong(t *testing.T) {
	s := sqlite(t)
	secret := webhook.NewSecret()
	r := newReceiver(t, secret)
	r.answer = func(int, *delivery.Event) (int, http.Header) { return 500, nil }
	addWebhook(t, s, "dst_x", r.srv.URL, secret, delivery.Filter{})
	var told []string
	var mu sync.Mutex
	run(t, s, dispatch.Options{DisableAfter: 300 * time.Millisecond,
		Schedule:   webhook.Schedule{Waits: []time.Duration{100 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond, time.Hour}},
		OnDisabled: func(id, reason string) { mu.Lock(); told = append(told, reason); mu.Unlock() }})
	feed(t, s, "fail", 1, 1)
	waitFor(t, "the destination disabled", func() bool {
		d, err := s.Delivery().Destination(context.Background(), "dst_x")
		return err == nil && !d.Enabled
	})
	d, _ := s.Delivery().Destination(context.Background(), "dst_x")
	mu.Lock()
	defer mu.Unlock()
	if !strings.HasPrefix(d.DisabledReason, "failing since ") || len(told) != 1 || told[0] != d.DisabledReason || d.FailingSince == 0 {
		t.Errorf("disabled with %q (failing since %d); told %q", d.DisabledReason, d.FailingSince, told)
	}
}

// TestDuplicatesWindow: a stream remembers ids for the whole retry
// schedule (jitter included), and never for less than 48 hours.
func TestDuplicatesWindow(t *testing.T) {
	if got := dispatch.DuplicatesWindow(webhook.Schedule{}); got != 48*time.Hour {
		t.Errorf("default schedule (about 33 h with jitter): %v, want 48h", got)
	}
	long := webhook.Schedule{Waits: []time.Duration{24 * time.Hour, 24 * time.Hour, 24 * time.Hour}}
	if got := dispatch.DuplicatesWindow(long); got < 72*time.Hour*12/10 {
		t.Errorf("three days of retries with 20 %% jitter: %v", got)
	}
}

// TestNATSDestination: a nats destination publishes every event once, in
// order, to <prefix>.<appKey>.<type> of a stream that keeps messages for
// the destination's maxAge.
func TestNATSDestination(t *testing.T) {
	ns, err := natsd.NewServer(&natsd.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded NATS did not start")
	}
	defer ns.Shutdown()
	s := sqlite(t)
	dst := delivery.Destination{ID: "dst_n", Kind: delivery.NATS, URL: ns.ClientURL(), Stream: "T", Prefix: "t", MaxAge: 96 * time.Hour, Enabled: true}
	if err := dispatch.Check(&dst, true); err != nil {
		t.Fatal(err)
	}
	short := dst
	short.MaxAge = time.Hour
	if err := dispatch.Check(&short, true); err == nil {
		t.Error("a stream keeping messages an hour was accepted")
	}
	if err := s.Delivery().AddDestination(context.Background(), &dst); err != nil {
		t.Fatal(err)
	}
	s.Announce(true)
	run(t, s, dispatch.Options{})
	feed(t, s, "nats", 3, 1)
	want := expected(t, s, delivery.Filter{})
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	got := map[string][]string{}
	waitFor(t, "every event in the stream", func() bool {
		str, err := js.Stream(context.Background(), "T")
		if err != nil {
			return false
		}
		info, err := str.Info(context.Background())
		if err != nil || info.Config.MaxAge != 96*time.Hour {
			return false
		}
		got = map[string][]string{}
		for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
			m, err := str.GetMsg(context.Background(), seq)
			if err != nil {
				return false
			}
			var ev delivery.Event
			json.Unmarshal(m.Data, &ev)
			if m.Subject != "t.app."+string(ev.Type) {
				t.Errorf("event %s on subject %s", ev.ID, m.Subject)
			}
			got[ev.RecordID] = append(got[ev.RecordID], ev.ID)
		}
		return fmt.Sprint(got) == fmt.Sprint(want)
	})
}

// TestDisablingIsAnnounced: when a destination is disabled, the other
// destinations receive a destination.disabled event naming it and why;
// the outbox keeps it in order with the recordings' events.
func TestDisablingIsAnnounced(t *testing.T) {
	eachStore(t, func(t *testing.T, s store) {
		secret := webhook.NewSecret()
		goneRecv, okRecv := newReceiver(t, secret), newReceiver(t, secret)
		goneRecv.answer = func(int, *delivery.Event) (int, http.Header) { return 410, nil }
		addWebhook(t, s, "dst_gone", goneRecv.srv.URL+"/x?token=hide-me", secret, delivery.Filter{})
		addWebhook(t, s, "dst_ok", okRecv.srv.URL, secret, delivery.Filter{})
		run(t, s, dispatch.Options{})
		feed(t, s, "ann", 1, 1)
		var ev delivery.Stored
		waitFor(t, "the destination.disabled event delivered", func() bool {
			events, _ := s.Delivery().Outbox(context.Background(), 0, 1000)
			for _, e := range events {
				if e.Type == delivery.DestinationDisabled {
					ev = e
				}
			}
			return ev.ID != "" && slices.Contains(okRecv.ackedOnce()[""], ev.ID)
		})
		var got delivery.DisabledEvent
		if err := json.Unmarshal(ev.Payload, &got); err != nil {
			t.Fatal(err)
		}
		if got.Destination.ID != "dst_gone" || got.Reason == "" || got.ID != ev.ID ||
			strings.Contains(string(ev.Payload), "hide-me") || !strings.Contains(got.Destination.URL, "REDACTED") {
			t.Errorf("the event: %s", ev.Payload)
		}
	})
}
