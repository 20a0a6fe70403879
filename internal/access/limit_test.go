package access

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSource(t *testing.T) {
	r := NewRule(Options{Token: "t", TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"),
	}})
	for _, tt := range []struct {
		name   string
		remote string
		header map[string][]string
		want   string
	}{
		{"direct v4", "192.0.2.7:5000", nil, "192.0.2.7"},
		{"direct v6 counts by its /64", "[2001:db8:1:2:3::9]:5000", nil, "2001:db8:1:2::/64"},
		{"direct mapped v4", "[::ffff:192.0.2.7]:5000", nil, "192.0.2.7"},
		{"unparseable peer", "pipe", nil, sharedSource},
		{"forwarded by an unknown proxy", "192.0.2.7:5000", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, sharedSource},
		{"X-Real-Ip from an unknown proxy", "192.0.2.7:5000", map[string][]string{"X-Real-Ip": {"198.51.100.1"}}, sharedSource},
		{"CF-Connecting-IP from an unknown proxy", "192.0.2.7:5000", map[string][]string{"Cf-Connecting-Ip": {"198.51.100.1"}}, sharedSource},
		{"trusted proxy names the client", "10.1.1.1:5000", map[string][]string{"X-Forwarded-For": {"198.51.100.1"}}, "198.51.100.1"},
		{"rightmost untrusted hop wins over a spoofed left", "10.1.1.1:5000", map[string][]string{"X-Forwarded-For": {"1.2.3.4, 198.51.100.1"}}, "198.51.100.1"},
		{"trusted hops are skipped", "10.1.1.1:5000", map[string][]string{"X-Forwarded-For": {"198.51.100.1, 10.2.2.2"}}, "198.51.100.1"},
		{"several header lines", "10.1.1.1:5000", map[string][]string{"X-Forwarded-For": {"1.2.3.4", "198.51.100.1"}}, "198.51.100.1"},
		{"hop with a port", "10.1.1.1:5000", map[string][]string{"X-Forwarded-For": {"198.51.100.1:443"}}, "198.51.100.1"},
		{"v6 hop", "[fd00::1]:5000", map[string][]string{"X-Forwarded-For": {"2001:db8::1"}}, "2001:db8::/64"},
		{"garbage hop", "10.1.1.1:5000", map[string][]string{"X-Forwarded-For": {"not-an-ip"}}, sharedSource},
		{"only trusted hops", "10.1.1.1:5000", map[string][]string{"X-Forwarded-For": {"10.3.3.3"}}, "10.1.1.1"},
		{"trusted proxy without the header", "10.1.1.1:5000", nil, "10.1.1.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tt.remote
			for k, vs := range tt.header {
				for _, v := range vs {
					req.Header.Add(k, v)
				}
			}
			if got := r.source(req); got != tt.want {
				t.Errorf("source = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestBackOffGrows: within the budget a failure is answered at once; past
// it the waits double up to MaxDelay; the budget refills with time.
func TestBackOffGrows(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var waits []time.Duration
	lm := newLimiter(Limits{Failures: 3, Window: time.Minute, Delay: time.Millisecond, MaxDelay: 5 * time.Millisecond,
		Sleep: func(_ context.Context, d time.Duration) { waits = append(waits, d) }}, func() time.Time { return now })
	for i := range 8 {
		err := lm.fail(context.Background(), "192.0.2.1")
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("failure %d: %v", i+1, err)
		}
		if wantWait := i >= 3; (RetryAfter(err) > 0) != wantWait {
			t.Errorf("failure %d: Retry-After %v", i+1, RetryAfter(err))
		}
	}
	want := []time.Duration{1, 2, 4, 5, 5}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if diff := cmp.Diff(want, waits); diff != "" {
		t.Errorf("back-offs (-want +got):\n%s", diff)
	}
	if err := lm.fail(context.Background(), "192.0.2.2"); RetryAfter(err) != 0 {
		t.Errorf("another source was slowed: %v", err)
	}
	now = now.Add(time.Hour) // the budget refilled
	waits = nil
	if err := lm.fail(context.Background(), "192.0.2.1"); RetryAfter(err) != 0 || len(waits) != 0 {
		t.Errorf("after an hour: %v, waited %v", err, waits)
	}
}

// TestSourcesBounded: a spray of addresses never tracks more than
// MaxSources; the least recently seen go first.
func TestSourcesBounded(t *testing.T) {
	lm := newLimiter(Limits{MaxSources: 100, Sleep: func(context.Context, time.Duration) {}}, time.Now)
	lm.fail(context.Background(), "keep")
	for i := range 1000 {
		lm.fail(context.Background(), fmt.Sprintf("198.51.%d.%d", i/256, i%256))
		if i%50 == 0 {
			lm.fail(context.Background(), "keep") // seen recently: stays
		}
	}
	if len(lm.sources) != 100 || lm.order.Len() != 100 {
		t.Errorf("tracking %d sources (%d in order), want 100", len(lm.sources), lm.order.Len())
	}
	if _, ok := lm.sources["keep"]; !ok {
		t.Error("the recently seen source was evicted")
	}
	if _, ok := lm.sources["198.51.0.1"]; ok {
		t.Error("the oldest source was kept")
	}
}

// TestWaitingQuotaUnderRace: wrong tokens arriving together (past the
// check Check makes first) never put more than MaxWaiting of a source in
// its back-off; the rest are answered at once with ErrTooManyAttempts.
func TestWaitingQuotaUnderRace(t *testing.T) {
	var entered atomic.Int32
	hold := make(chan struct{})
	lm := newLimiter(Limits{Failures: 1, MaxWaiting: 2, Sleep: func(ctx context.Context, _ time.Duration) {
		entered.Add(1)
		<-hold
	}}, time.Now)
	lm.fail(context.Background(), "192.0.2.1") // the budget
	results := make(chan error, 10)
	for range 10 {
		go func() { results <- lm.fail(context.Background(), "192.0.2.1") }()
	}
	for range 8 {
		select {
		case err := <-results:
			if !errors.Is(err, ErrTooManyAttempts) {
				t.Errorf("over the quota: %v, want ErrTooManyAttempts", err)
			}
		case <-time.After(10 * time.Second):
			close(hold)
			t.Fatalf("more than MaxWaiting wrong tokens are waiting (%d)", entered.Load())
		}
	}
	if n := entered.Load(); n > 2 {
		t.Errorf("%d waiting, want at most 2", n)
	}
	close(hold)
	for range 2 {
		if err := <-results; !errors.Is(err, ErrUnauthorized) || RetryAfter(err) == 0 {
			t.Errorf("a waiting wrong token: %v", err)
		}
	}
}
