package display

import (
	"testing"
	"time"
)

func TestTimeAlwaysShowsItsZone(t *testing.T) {
	const ms = 1764454766123 // 2025-11-29 22:19:26.123 UTC
	tests := []struct {
		loc         *time.Location
		time, clock string
	}{
		{time.UTC, "2025-11-29 22:19:26 +00:00", "22:19:26.123 +00:00"},
		{time.FixedZone("CST", 8*3600), "2025-11-30 06:19:26 +08:00", "06:19:26.123 +08:00"},
		{time.FixedZone("NST", -(3*3600 + 30*60)), "2025-11-29 18:49:26 -03:30", "18:49:26.123 -03:30"},
	}
	for _, tt := range tests {
		if got := Time(ms, tt.loc); got != tt.time {
			t.Errorf("Time(%s) = %q, want %q", tt.loc, got, tt.time)
		}
		if got := Clock(ms, tt.loc); got != tt.clock {
			t.Errorf("Clock(%s) = %q, want %q", tt.loc, got, tt.clock)
		}
	}
}
