package dashboard

import (
	"testing"
	"time"

	"github.com/recledger/recledger/internal/display"
	"github.com/recledger/recledger/internal/ledger"
)

func TestActivityChart(t *testing.T) {
	from := int64(1_800_000_000_000) - 1_800_000_000_000%60_000
	c := activityChart([]ledger.Minute{
		{Start: from, Callbacks: 10, Duplicates: 2},
		{Start: from + 30*60_000, Callbacks: 30, Rejected: 10},
		{Start: from + 59*60_000, Rejected: 4},
	}, from)
	if len(c.Bars) != chartMinutes || c.Max != 40 || c.Peak.Start != from+30*60_000 || len(c.Active) != 3 {
		t.Fatalf("chart: %d bars, max %d, peak %+v, active %d", len(c.Bars), c.Max, c.Peak, len(c.Active))
	}
	for _, tt := range []struct {
		i         int
		okH, rejH float64
		okY, rejY float64
		label     string
	}{
		{0, 30, 0, 90, 90, ": 10 callbacks (2 duplicate), 0 rejected"},
		{1, 0, 0, 120, 120, ": 0 callbacks (0 duplicate), 0 rejected"},
		{30, 90, 30, 30, 0, ": 30 callbacks (0 duplicate), 10 rejected"},
		{59, 0, 12, 120, 108, ": 0 callbacks (0 duplicate), 4 rejected"},
	} {
		b := c.Bars[tt.i]
		if b.OkH != tt.okH || b.RejH != tt.rejH || b.OkY != tt.okY || b.RejY != tt.rejY {
			t.Errorf("bar %d: %+v", tt.i, b)
		}
		if want := display.Time(from+int64(tt.i)*60_000, time.UTC) + tt.label; b.Label != want {
			t.Errorf("bar %d label %q, want %q", tt.i, b.Label, want)
		}
	}
	// A quiet hour keeps a visible scale.
	if q := activityChart(nil, from); q.Max != 5 || len(q.Bars) != chartMinutes || len(q.Active) != 0 {
		t.Errorf("quiet hour: %+v", q)
	}
}

func TestTimelineCountsCrossings(t *testing.T) {
	ev := func(seq, ts, arrived int64) ledger.Event {
		return ledger.Event{Seq: seq, Timestamp: ts, ReceivedAt: arrived, Type: 2, Code: 200}
	}
	in := []ledger.Event{ev(1, 100, 1000), ev(2, 300, 1010), ev(3, 200, 1020), ev(4, 400, 1030)}
	tl := newTimeline(in)
	if tl.Crossings != 1 {
		t.Errorf("crossings %d, want 1 (seq 2 and 3 arrived out of RC's order)", tl.Crossings)
	}
	if tl.Marks[0].X1 != laneLeft || tl.Marks[3].X1 != laneRight || tl.Marks[0].X2 != laneLeft || tl.Marks[3].X2 != laneRight {
		t.Errorf("lanes not spanned: %+v", tl.Marks)
	}
	if got := newTimeline([]ledger.Event{ev(1, 5, 5)}); got.Marks[0].X1 != (laneLeft+laneRight)/2 {
		t.Errorf("one event: %+v", got.Marks)
	}
	failedDup := ledger.Event{Seq: 9, Timestamp: 1, ReceivedAt: 2, Type: 4, Code: 500, Duplicate: true}
	if got := newTimeline([]ledger.Event{failedDup}); got.Marks[0].Class != "t4 failed dup" {
		t.Errorf("class %q", got.Marks[0].Class)
	}
}

func TestCountCaption(t *testing.T) {
	for _, tt := range []struct {
		shown int
		total int64
		later bool
		want  string
	}{
		{0, 0, false, "0 recordings"},
		{1, 1, false, "1 recording"},
		{3, 3, false, "3 recordings"},
		{4, 3, false, "4 recordings"}, // counted a moment before the page
		{50, 57, false, "50 shown of 57 recordings"},
		{50, 1234, false, "50 shown of 1,234 recordings"},
		{50, countUpTo, false, "50 shown of 10,000 recordings"},
		{50, countUpTo + 1, false, "50 shown of 10,000+ recordings"},
		{7, 57, true, "7 older shown of 57 recordings"},
		{50, countUpTo + 1, true, "50 older shown of 10,000+ recordings"},
	} {
		if got := countCaption(tt.shown, tt.total, tt.later, "recording", "recordings"); got != tt.want {
			t.Errorf("countCaption(%d, %d, %v) = %q, want %q", tt.shown, tt.total, tt.later, got, tt.want)
		}
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
}
