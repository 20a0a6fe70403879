package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRefusalLogFlushesWhenNoRefusalFollows: a burst held back and not
// followed by another refusal is still summarised, by the flush its first
// held line scheduled; and a flood of distinct app keys is counted under
// a bounded number of names.
func TestRefusalLogFlushesWhenNoRefusalFollows(t *testing.T) {
	for _, tt := range []struct {
		name     string
		keys     int // distinct app keys in the burst after the first line
		byAppKey string
	}{
		{"one key", 1, "k0=50"},
		{"a flood of keys", 200, fmt.Sprintf("(others)=%d", 50-maxHeldAppKeys)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := &refusalLog{logger: slog.New(slog.NewJSONHandler(&buf, nil))}
			now := time.Now()
			if !l.allow(now, "bad_signature", "k") {
				t.Fatal("the first refusal was held back")
			}
			for i := range 50 {
				if l.allow(now, "bad_signature", fmt.Sprintf("k%d", i%tt.keys)) {
					t.Fatalf("refusal %d in the same second was let through", i)
				}
			}
			if buf.Len() != 0 {
				t.Fatalf("logged before the flush: %s", buf.String())
			}
			l.flush() // as its timer does at the end of the second
			var line struct {
				Msg      string
				Held     int
				ByReason string `json:"by_reason"`
				ByAppKey string `json:"by_appKey"`
			}
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("%v: %s", err, buf.String())
			}
			if line.Msg != "50 refused-request lines held back" || line.Held != 50 || line.ByReason != "bad_signature=50" ||
				!strings.HasPrefix(line.ByAppKey, tt.byAppKey) {
				t.Errorf("summary %+v, want 50 held, by_appKey starting %q", line, tt.byAppKey)
			}
			if n := strings.Count(line.ByAppKey, "="); n > maxHeldAppKeys+1 {
				t.Errorf("%d app keys named in the summary, want at most %d and the rest", n, maxHeldAppKeys)
			}
			buf.Reset()
			l.flush()
			if buf.Len() != 0 {
				t.Errorf("a second flush logged again: %s", buf.String())
			}
		})
	}
}
