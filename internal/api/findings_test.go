package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// TestFindings: every recording view carries its findings (absent when
// none), ?finding= selects by them, by the server's clock and
// --max-recording-length, on both backends.
func TestFindings(t *testing.T) {
	onBothStores(t, func(t *testing.T, s ledger.Store) {
		arrived := time.UnixMilli(filterT0)
		add := func(at time.Time, body string) {
			cb, err := rc.Parse([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: at}); err != nil {
				t.Fatal(err)
			}
		}
		cb := func(id string, typ rc.Type, ts int64, file string) string {
			return fmt.Sprintf(`{"timestamp":%d,"type":%d,"appKey":"app","recordId":%q,"roomId":"r","sessionId":"s","userId":"u","mode":1,"code":200,"config":{"slicesMin":30},"output":{"fileName":%q,"fileSize":10}}`,
				ts, typ, id, file)
		}
		const slice = 30 * 60_000
		// gap: files at 0 and 2 slices, ended: a gap and a file missing.
		add(arrived, cb("gap", rc.TypeStart, filterT0, ""))
		add(arrived, cb("gap", rc.TypeSegment, filterT0+slice, fmt.Sprintf("s_r_u_%d.mp4", filterT0)))
		add(arrived, cb("gap", rc.TypeEnd, filterT0+3*slice, fmt.Sprintf("s_r_u_%d.mp4", filterT0+2*slice)))
		// open: a start only, stalled at now; fine: a start just now.
		add(arrived, cb("open", rc.TypeStart, filterT0, ""))
		now := arrived.Add(3 * time.Hour)
		add(now, cb("fine", rc.TypeStart, filterT0, ""))

		mux := http.NewServeMux()
		api.New(s.(api.Store), api.Options{Now: func() time.Time { return now }, FindingRules: ledger.FindingRules{MaxOpen: 2 * time.Hour}}).Register(mux)
		srv := httptest.NewServer(mux)
		defer srv.Close()

		for _, tt := range []struct {
			query string
			want  []string
			kinds map[string][]ledger.FindingKind
		}{
			{"", []string{"fine", "open", "gap"}, map[string][]ledger.FindingKind{
				"open": {ledger.FindingNotEnded, ledger.FindingStalled}, "gap": {ledger.FindingSegmentGap, ledger.FindingMissingFiles}}},
			{"finding=any", []string{"open", "gap"}, nil},
			{"finding=not_ended", []string{"open"}, nil},
			{"finding=stalled", []string{"open"}, nil},
			{"finding=segment_gap", []string{"gap"}, nil},
			{"finding=missing_files&limit=1", []string{"gap"}, nil},
			{"finding=any&status=ended", []string{"gap"}, nil},
		} {
			var list api.RecordingList
			if code := get(t, srv.URL+"/v1/recordings?"+tt.query, "", &list); code != 200 {
				t.Errorf("?%s: answered %d", tt.query, code)
				continue
			}
			var ids []string
			for _, r := range list.Items {
				ids = append(ids, r.RecordID)
				if tt.kinds == nil {
					continue
				}
				var kinds []ledger.FindingKind
				for _, f := range r.Findings {
					kinds = append(kinds, f.Kind)
				}
				if !slices.Equal(kinds, tt.kinds[r.RecordID]) {
					t.Errorf("?%s: %s has findings %v, want %v", tt.query, r.RecordID, kinds, tt.kinds[r.RecordID])
				}
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("?%s: %v, want %v", tt.query, ids, tt.want)
			}
		}

		// The detail: the gap's evidence; a recording without findings has
		// no findings key, and uploadLagMs is null until every upload.
		var gap api.RecordingDetail
		get(t, srv.URL+"/v1/recordings/gap", "", &gap)
		if len(gap.Findings) != 2 || gap.Findings[0].Evidence.After != fmt.Sprintf("s_r_u_%d.mp4", filterT0) ||
			gap.Findings[0].Evidence.GapMs != 2*slice || gap.Findings[1].Evidence.Expected != 3 || gap.Findings[1].Evidence.Got != 2 {
			t.Errorf("gap's findings: %+v", gap.Findings)
		}
		var raw map[string]json.RawMessage
		get(t, srv.URL+"/v1/recordings/fine", "", &raw)
		if _, ok := raw["findings"]; ok {
			t.Errorf("fine has findings: %s", raw["findings"])
		}
		if string(raw["uploadLagMs"]) != "null" {
			t.Errorf("fine's uploadLagMs: %s, want null", raw["uploadLagMs"])
		}

		for _, bad := range []string{"bogus", "ANY", "any%00", strings.Repeat("x", 100<<10), "stalled,gap"} {
			var e apiError
			if code := get(t, srv.URL+"/v1/recordings?finding="+bad, "", &e); code != 400 || e.Error.Code != "bad_parameter" || !strings.Contains(e.Error.Message, "finding") || len(e.Error.Message) > 300 {
				t.Errorf("finding=%.20s: %d %+v", bad, code, e)
			}
		}
	})
}
