package dashboard_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/rc"
)

// TestNeedsAttention: the overview lists the recordings with findings,
// newest first, each with its kinds and evidence, linking to it; the
// recording page shows its findings; the list filters by them.
func TestNeedsAttention(t *testing.T) {
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const t0, slice = int64(1_700_000_000_000), int64(30 * 60_000)
	arrived := time.UnixMilli(t0)
	add := func(at time.Time, id string, typ rc.Type, ts int64, file string) {
		body := fmt.Sprintf(`{"timestamp":%d,"type":%d,"appKey":"app","recordId":%q,"roomId":"r","sessionId":"s","userId":"u","mode":1,"code":200,"config":{"slicesMin":30},"output":{"fileName":%q,"fileSize":10}}`,
			ts, typ, id, file)
		cb, err := rc.Parse([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	add(arrived, "gap", rc.TypeStart, t0, "")
	add(arrived, "gap", rc.TypeSegment, t0+slice, fmt.Sprintf("s_r_u_%d.mp4", t0))
	add(arrived, "gap", rc.TypeEnd, t0+3*slice, fmt.Sprintf("s_r_u_%d.mp4", t0+2*slice))
	add(arrived, "quiet", rc.TypeStart, t0, "")
	now := arrived.Add(3 * time.Hour)
	add(now, "fine", rc.TypeStart, t0, "")
	st := newSite(t, s, "", now)

	code, doc, _ := fetch(t, nil, st.URL+"/")
	if code != 200 {
		t.Fatalf("overview: %d", code)
	}
	lists := find(doc, hasAttr("data-attention", ""))
	if len(lists) != 1 {
		t.Fatalf("overview: %d attention lists", len(lists))
	}
	var links []string
	for _, a := range find(lists[0], tag("a")) {
		href, _ := attr(a, "href")
		links = append(links, href)
	}
	if want := []string{"/recordings/quiet", "/recordings/gap"}; !slices.Equal(links, want) {
		t.Errorf("attention links %v, want %v (newest first)", links, want)
	}
	listed := text(lists[0])
	for _, want := range []string{"stalled", "segment_gap", "missing_files", fmt.Sprintf("between s_r_u_%d.mp4 and s_r_u_%d.mp4", t0, t0+2*slice), "2 of 3 files"} {
		if !strings.Contains(listed, want) {
			t.Errorf("attention list lacks %q: %s", want, listed)
		}
	}
	if strings.Contains(listed, "not_ended") {
		t.Errorf("quiet is not_ended 3 hours in: %s", listed)
	}

	_, doc, _ = fetch(t, nil, st.URL+"/recordings/gap")
	if f := find(doc, hasAttr("data-findings", "")); len(f) != 1 || !strings.Contains(text(f[0]), "segment_gap") || !strings.Contains(text(f[0]), "missing_files") {
		t.Errorf("recording page findings: %d sections", len(f))
	}
	_, doc, _ = fetch(t, nil, st.URL+"/recordings/fine")
	if f := find(doc, hasAttr("data-findings", "")); len(f) != 0 {
		t.Errorf("fine has a findings section")
	}

	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"finding=any", []string{"quiet", "gap"}},
		{"finding=stalled", []string{"quiet"}},
		{"finding=missing_files", []string{"gap"}},
		{"finding=not_ended", nil},
	} {
		code, doc, _ := fetch(t, nil, st.URL+"/recordings?"+tt.query)
		var ids []string
		for _, n := range find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-record-id"); return ok }) {
			id, _ := attr(n, "data-record-id")
			ids = append(ids, id)
		}
		if code != 200 || !slices.Equal(ids, tt.want) {
			t.Errorf("?%s: %d %v, want %v", tt.query, code, ids, tt.want)
		}
	}
	if code, _, body := fetch(t, nil, st.URL+"/recordings?finding=gap"); code != 400 || !strings.Contains(body, "finding") {
		t.Errorf("?finding=gap: %d", code)
	}

	// None: the overview says so.
	empty, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "e.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { empty.Close() })
	_, doc, _ = fetch(t, nil, newSite(t, empty, "", now).URL+"/")
	if n := find(doc, hasAttr("data-attention-none", "")); len(n) != 1 {
		t.Errorf("an empty ledger: %d notes that nothing needs attention", len(n))
	}
}
