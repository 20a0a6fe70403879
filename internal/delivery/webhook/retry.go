package webhook

import (
	"math/rand/v2"
	"time"
)

// DefaultWaits are the waits before each retry of a failed message: seven
// retries over about 28 hours, past RC's own 24-hour upload retries.
var DefaultWaits = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour,
	5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// MaxRetryAfter bounds the wait a Retry-After header can ask for.
const MaxRetryAfter = 24 * time.Hour

// Schedule says when to retry a message after a failed attempt.
type Schedule struct {
	// Waits are the waits before retry 1, 2, ...; after the last, the
	// message is a dead letter (default DefaultWaits).
	Waits []time.Duration
	// Jitter spreads each wait by up to this fraction either way (default
	// 0.2), so messages that failed together do not retry together.
	Jitter float64
}

// Next returns the wait before retry n (1 for the first) of a message
// whose attempt a failed, and false when there is none left: the message
// is a dead letter. A Retry-After the receiver sent with a 429 or 503 is
// honoured (up to MaxRetryAfter) where it asks for longer than the
// schedule. rnd gives numbers in [0, 1) (rand.Float64 when nil).
func (s Schedule) Next(n int, a Attempt, rnd func() float64) (time.Duration, bool) {
	waits, jitter := s.settings()
	if n < 1 || n > len(waits) {
		return 0, false
	}
	if rnd == nil {
		rnd = rand.Float64
	}
	wait := time.Duration(float64(waits[n-1]) * (1 + jitter*(2*rnd()-1)))
	if a.RetryAfter > wait {
		wait = min(a.RetryAfter, MaxRetryAfter)
	}
	return wait, true
}

// Longest is the most all of the schedule's waits can add up to, jitter
// included: how long after a message's first attempt its last can come
// (a receiver's Retry-After aside).
func (s Schedule) Longest() time.Duration {
	waits, jitter := s.settings()
	var total time.Duration
	for _, w := range waits {
		total += w
	}
	return time.Duration(float64(total) * (1 + jitter))
}

// settings are the waits and jitter, defaults filled in.
func (s Schedule) settings() ([]time.Duration, float64) {
	waits, jitter := s.Waits, s.Jitter
	if waits == nil {
		waits = DefaultWaits
	}
	if jitter == 0 {
		jitter = 0.2
	}
	return waits, jitter
}
