package storagecheck

import "time"

// DefaultWaits are the waits before each retry of a check that failed
// transiently: a passing outage is ridden out within the day, and after
// the last the file stays unreachable.
var DefaultWaits = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute, time.Hour, 6 * time.Hour}

// MaxRetryAfter bounds the wait a storage's Retry-After can ask for.
const MaxRetryAfter = time.Hour

// NextWait says how long to wait before retry n (1 for the first) after
// a check with result r, and false when there is no retry: r was not
// transient, or the waits are used up. A Retry-After longer than the
// schedule's wait is honoured (Result.RetryAfter is already capped).
// waits nil means DefaultWaits.
func NextWait(waits []time.Duration, n int, r Result) (time.Duration, bool) {
	if waits == nil {
		waits = DefaultWaits
	}
	if !r.Transient || n < 1 || n > len(waits) {
		return 0, false
	}
	return max(waits[n-1], min(r.RetryAfter, MaxRetryAfter)), true
}
