package egress

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter reads a Retry-After header (RFC 9110: delay-seconds or
// an HTTP-date) at time now. A date in the past is a wait of 0; a wait
// longer than limit is cut to it (each caller has its own bound: a
// webhook may ask for a day, a storage for an hour). ok is false when v
// is empty or neither form.
func ParseRetryAfter(v string, now time.Time, limit time.Duration) (wait time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if strings.Trim(v, "0123456789") == "" {
		secs, err := strconv.ParseInt(v, 10, 64)
		if err != nil || secs > int64(limit/time.Second) { // too many digits to parse, or too long
			return limit, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), limit), true
}
