package api_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
)

// fillFiles stores a complete recording (two files uploaded) and, after
// it, one whose first file's upload failed (the other uploaded).
func fillFiles(t *testing.T, s ledger.Store) {
	t.Helper()
	cbs := append(ledgertest.Recording(t, "rec-done", 2, false), ledgertest.Recording(t, "rec-stuck", 2, true)...)
	for i, cb := range cbs {
		if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: time.UnixMilli(1_700_000_000_000 + int64(i))}); err != nil {
			t.Fatal(err)
		}
	}
}

func listedKeys(items []ledger.ListedFile) []string {
	var out []string
	for _, f := range items {
		out = append(out, f.RecordID+"/"+f.FileName)
	}
	return out
}

// TestFileList: GET /v1/files answers the store's pages with each file's
// recordId and room, follows its cursor, and reads every filter.
func TestFileList(t *testing.T) {
	onBothStores(t, func(t *testing.T, s ledger.Store) {
		fillFiles(t, s)
		srv := server(t, s, "")
		const stuck1, stuck2 = "rec-stuck/sess_room_u1_rec-stuck_1.mp4", "rec-stuck/sess_room_u1_rec-stuck_2.mp4"
		const done1, done2 = "rec-done/sess_room_u1_rec-done_1.mp4", "rec-done/sess_room_u1_rec-done_2.mp4"
		for _, tt := range []struct {
			query string
			want  []string
		}{
			{"", []string{stuck2, stuck1, done2, done1}},
			{"?uploadState=not_uploaded", []string{stuck1}},
			{"?uploadState=failed", []string{stuck1}},
			{"?uploadState=pending", nil},
			{"?uploadState=uploaded&appKey=app", []string{stuck2, done2, done1}},
			{"?roomId=room&uploadState=uploaded&since=1700000000008", []string{stuck2}},
			{"?until=1700000000002", []string{done1}},
			{"?roomId=elsewhere", nil},
		} {
			var list api.FileList
			if code := get(t, srv.URL+"/v1/files"+tt.query, "", &list); code != 200 {
				t.Fatalf("%s: %d", tt.query, code)
			}
			if diff := cmp.Diff(tt.want, listedKeys(list.Items)); diff != "" || list.NextCursor != "" {
				t.Errorf("%s (-want +got):\n%s next %q", tt.query, diff, list.NextCursor)
			}
		}
		// One a page, following nextCursor, gives the same list.
		var got []string
		q := url.Values{"limit": {"1"}}
		for range 10 {
			var list api.FileList
			if code := get(t, srv.URL+"/v1/files?"+q.Encode(), "", &list); code != 200 {
				t.Fatalf("page: %d", code)
			}
			got = append(got, listedKeys(list.Items)...)
			if list.NextCursor == "" {
				break
			}
			q.Set("cursor", list.NextCursor)
		}
		if diff := cmp.Diff([]string{stuck2, stuck1, done2, done1}, got); diff != "" {
			t.Errorf("one a page (-want +got):\n%s", diff)
		}
		// Each item is a File with its recording's app and room.
		var raw struct{ Items []map[string]any }
		get(t, srv.URL+"/v1/files?uploadState=failed", "", &raw)
		if len(raw.Items) != 1 || raw.Items[0]["recordId"] != "rec-stuck" || raw.Items[0]["roomId"] != "room" ||
			raw.Items[0]["appKey"] != "app" || raw.Items[0]["uploadStatus"] != "failed" || raw.Items[0]["fileUrl"] != nil {
			t.Errorf("a failed file: %v", raw.Items)
		}
	})
}

// TestFileListEmptyIsAnArray: no file is "items": [], never null.
func TestFileListEmptyIsAnArray(t *testing.T) {
	srv := server(t, fill(t), "")
	status, body := getRaw(t, srv.URL+"/v1/files?roomId=nowhere")
	if status != 200 || !strings.Contains(string(body), `"items":[]`) || strings.Contains(string(body), "nextCursor") {
		t.Errorf("empty list: %d %s", status, body)
	}
}

// TestFileListRefusesWhatItCannotUse: every unusable parameter, an
// unknown one included, is a 400 naming it.
func TestFileListRefusesWhatItCannotUse(t *testing.T) {
	s := fill(t)
	srv := server(t, s, "")
	var first api.FileList
	get(t, srv.URL+"/v1/files?limit=1&roomId=room", "", &first)
	if first.NextCursor == "" {
		t.Fatal("want a second page")
	}
	for _, tt := range []struct{ query, code, param string }{
		{"?uploadstate=failed", "unknown_parameter", `"uploadstate"`}, // misspelt: not silently ignored
		{"?status=failed", "unknown_parameter", `"status"`},           // a recordings filter, not a files one
		{"?uploadState=partial", "bad_parameter", "uploadState"},      // a recording's upload state, not a file's
		{"?uploadState=FAILED", "bad_parameter", "uploadState"},
		{"?limit=0", "bad_parameter", "limit"},
		{"?limit=501", "bad_parameter", "limit"},
		{"?since=yesterday", "bad_parameter", "since"},
		{"?until=-1", "bad_parameter", "until"},
		{"?cursor=nope", "bad_parameter", "cursor"},
		{"?cursor=" + first.NextCursor, "bad_parameter", "cursor"}, // roomId's cursor without it
	} {
		var e apiError
		if code := get(t, srv.URL+"/v1/files"+tt.query, "", &e); code != 400 || e.Error.Code != tt.code || !strings.Contains(e.Error.Message, tt.param) {
			t.Errorf("%s: %d %+v, want 400 %s naming %s", tt.query, code, e, tt.code, tt.param)
		}
	}
	// The single-file route still answers beside the list.
	var f ledger.File
	if code := get(t, srv.URL+"/v1/files/sess_room_u1_rec-done_1.mp4", "", &f); code != 200 || f.RecordID != "rec-done" {
		t.Errorf("one file: %d %+v", code, f)
	}
}

// TestFileListHostileParameterNames: a parameter name no filter has (NUL,
// invalid UTF-8, 100 KB) is a short 400 unknown_parameter, on both backends.
func TestFileListHostileParameterNames(t *testing.T) {
	onBothStores(t, func(t *testing.T, s ledger.Store) {
		fillFiles(t, s)
		srv := server(t, s, "")
		for _, name := range []string{"a%00b", "a%FFb", strings.Repeat("n", 100<<10), "uploadState%00"} {
			status, body := getRaw(t, srv.URL+"/v1/files?"+name+"=1")
			var e apiError
			json.Unmarshal(body, &e)
			if status != 400 || e.Error.Code != "unknown_parameter" || len(body) > 1000 {
				t.Errorf("parameter %.40s: %d %.300s, want a short 400 unknown_parameter", name, status, body)
			}
		}
	})
}
