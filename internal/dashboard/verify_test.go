package dashboard_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/recledger/recledger/internal/access"
	"github.com/recledger/recledger/internal/dashboard"
	"github.com/recledger/recledger/internal/ledger"
)

// verifyingSite serves the dashboard over s with storage verification on
// or off.
func verifyingSite(t *testing.T, s dashboard.Store, on bool) *httptest.Server {
	t.Helper()
	clock := func() time.Time { return now }
	mux := http.NewServeMux()
	d, err := dashboard.New(s, dashboard.Options{Access: access.New("", clock), Now: clock, VerifyStorage: on})
	if err != nil {
		t.Fatal(err)
	}
	d.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// addChecks stores checks of rec-done's two files (missing, with an error
// holding markup, and of another size) and of one file of rec-stuck
// (verified).
func addChecks(t *testing.T, v ledger.Verifications) {
	t.Helper()
	ctx := context.Background()
	for _, c := range []struct {
		rec, file string
		state     ledger.VerificationState
		status    int
		err       string
	}{
		{"rec-done", "sess_room_u1_rec-done_1.mp4", ledger.VerifyMissing, 404, "answered <b>404</b>"},
		{"rec-done", "sess_room_u1_rec-done_2.mp4", ledger.VerifySizeMismatch, 200, "size 10, RC said 1029"},
		{"rec-stuck", "sess_room_u1_rec-stuck_2.mp4", ledger.VerifyVerified, 200, ""},
	} {
		check := ledger.FileCheck{RecordID: c.rec, FileName: c.file, AppKey: "app", URLHash: ledger.URLHash(c.file),
			Verification: ledger.Verification{State: ledger.VerifyPending}, NextAt: 1}
		if err := v.QueueVerifications(ctx, []ledger.FileCheck{check}, 1); err != nil {
			t.Fatal(err)
		}
		at := now.Add(-time.Minute).UnixMilli()
		check.Verification = ledger.Verification{State: c.state, HTTPStatus: &c.status, CheckedAt: &at, Attempts: 1, Error: c.err}
		check.NextAt = 0
		if ok, err := v.SaveVerification(ctx, check); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
}

// badges returns the storage badges of a recording page's files table, by
// file name.
func badges(doc *html.Node) map[string]string {
	out := map[string]string{}
	for _, row := range find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-file"); return ok && n.Data == "tr" }) {
		name, _ := attr(row, "data-file")
		for _, b := range find(row, func(n *html.Node) bool { c, _ := attr(n, "class"); return strings.Contains(c, "ver-") }) {
			c, _ := attr(b, "class")
			out[name] = strings.TrimPrefix(strings.TrimPrefix(c, "badge "), "ver-")
		}
	}
	return out
}

// TestStorageVerificationPages: the overview counts the files missing in
// storage and links to them, the recordings list filters by a file's
// storage state, a recording's files carry their badge, and its
// "Re-check storage" button (verification on only, same-site posts only)
// makes their checks due again.
func TestStorageVerificationPages(t *testing.T) {
	s := fill(t, now)
	addChecks(t, s)
	site := verifyingSite(t, s, true)

	_, doc, body := fetch(t, nil, site.URL+"/")
	missing := find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-storage-missing"); return ok })
	other := find(doc, func(n *html.Node) bool { _, ok := attr(n, "data-storage-size-mismatch"); return ok })
	if len(missing) != 1 || text(missing[0]) != "2" || len(other) != 1 || text(other[0]) != "1 of another size" ||
		!strings.Contains(body, `href="/recordings?verification=missing"`) || !strings.Contains(body, `href="/recordings?verification=size_mismatch"`) {
		t.Errorf("overview: the storage count is missing or wrong:\n%s", body)
	}

	for q, want := range map[string]string{"missing": "rec-done", "size_mismatch": "rec-done", "verified": "rec-stuck"} {
		code, doc, body := fetch(t, nil, site.URL+"/recordings?verification="+q)
		links := find(doc, func(n *html.Node) bool {
			h, _ := attr(n, "href")
			return n.Data == "a" && strings.HasPrefix(h, "/recordings/rec-")
		})
		var got []string
		for _, l := range links {
			h, _ := attr(l, "href")
			got = append(got, strings.TrimPrefix(h, "/recordings/"))
		}
		if code != 200 || strings.Join(got, ",") != want || !strings.Contains(body, `<option value="`+q+`" selected>`) {
			t.Errorf("/recordings?verification=%s: %d, %v, want [%s] with the option selected", q, code, got, want)
		}
	}
	if code, _, body := fetch(t, nil, site.URL+"/recordings?verification=lost"); code != 400 || !strings.Contains(body, "storage") {
		t.Errorf("/recordings?verification=lost: %d\n%s", code, body)
	}

	code, doc, body := fetch(t, nil, site.URL+"/recordings/rec-done")
	want := map[string]string{"sess_room_u1_rec-done_1.mp4": "missing", "sess_room_u1_rec-done_2.mp4": "size_mismatch"}
	if got := badges(doc); code != 200 || len(got) != 2 || got["sess_room_u1_rec-done_1.mp4"] != want["sess_room_u1_rec-done_1.mp4"] ||
		got["sess_room_u1_rec-done_2.mp4"] != want["sess_room_u1_rec-done_2.mp4"] {
		t.Errorf("rec-done's badges: %v, want %v", got, want)
	}
	if strings.Contains(body, "<b>404</b>") || !strings.Contains(body, "answered &lt;b&gt;404&lt;/b&gt;") || !strings.Contains(body, "HTTP 404") {
		t.Errorf("the storage error is not shown escaped, or the status not at all:\n%s", body)
	}
	if forms := find(doc, func(n *html.Node) bool {
		a, _ := attr(n, "action")
		return n.Data == "form" && a == "/recordings/rec-done/verify"
	}); len(forms) != 1 ||
		!strings.Contains(text(forms[0]), "Re-check storage") {
		t.Errorf("%d re-check forms, want one", len(forms))
	}

	c := &http.Client{CheckRedirect: noRedirect}
	req, _ := http.NewRequest("POST", site.URL+"/recordings/rec-done/verify", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site re-check: %v %v", resp, err)
	}
	if got := badges(mustDoc(t, site.URL+"/recordings/rec-done")); got["sess_room_u1_rec-done_1.mp4"] != "missing" {
		t.Errorf("a refused re-check changed the checks: %v", got)
	}
	resp, err := c.PostForm(site.URL+"/recordings/rec-done/verify", url.Values{})
	if err != nil || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/recordings/rec-done?rechecked=2#files" {
		t.Fatalf("re-check: %v %v", resp, err)
	}
	_, doc, body = fetch(t, nil, site.URL+"/recordings/rec-done?rechecked=2")
	if got := badges(doc); got["sess_room_u1_rec-done_1.mp4"] != "pending" || got["sess_room_u1_rec-done_2.mp4"] != "pending" ||
		!strings.Contains(body, "2 files to check in storage again") {
		t.Errorf("after the re-check: %v\n%s", got, body)
	}
	due, err := s.DueVerifications(context.Background(), now.UnixMilli(), 10)
	if err != nil || len(due) != 2 {
		t.Errorf("due after the re-check: %d, %v; want rec-done's two files", len(due), err)
	}
	for _, id := range []string{"nope", "a%00b", strings.Repeat("x", 300)} {
		resp, err := c.PostForm(site.URL+"/recordings/"+id+"/verify", url.Values{})
		if err != nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("re-check of %.20s: %v %v, want 404", id, resp, err)
		}
	}

	// Verification off: no button, and a post is refused.
	off := verifyingSite(t, s, false)
	_, doc, _ = fetch(t, nil, off.URL+"/recordings/rec-done")
	if forms := find(doc, func(n *html.Node) bool { a, _ := attr(n, "action"); return a == "/recordings/rec-done/verify" }); len(forms) != 0 {
		t.Errorf("a re-check button while verification is off")
	}
	if len(badges(doc)) != 2 {
		t.Errorf("the checks made are not shown while verification is off")
	}
	resp, err = c.PostForm(off.URL+"/recordings/rec-done/verify", url.Values{})
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("re-check while off: %v %v, want 400", resp, err)
	}

	// A store never checked, verification off: the overview says nothing of storage.
	plain := verifyingSite(t, fill(t, now), false)
	if _, _, body := fetch(t, nil, plain.URL+"/"); strings.Contains(body, "missing in storage") {
		t.Errorf("the overview counts storage without any check")
	}
}

func mustDoc(t *testing.T, u string) *html.Node {
	t.Helper()
	_, doc, _ := fetch(t, nil, u)
	return doc
}
