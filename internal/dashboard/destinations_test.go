package dashboard_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/recledger/recledger/internal/delivery"
)

const (
	testDestination = "dst_test"
	testSecret      = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// addDestination gives the store a failing webhook destination with a
// dead letter and attempts, whose URL carries a token in its query.
func addDestination(t *testing.T, s delivery.Source, at time.Time) {
	t.Helper()
	ctx := context.Background()
	d := s.Delivery()
	dst := delivery.Destination{ID: testDestination, Kind: delivery.Webhook, URL: "https://hooks.example/r?token=t0k3n-in-query",
		Description: "the <b>app</b>", Enabled: true, CreatedAt: at.UnixMilli(), Keys: []delivery.Key{{Secret: testSecret}},
		Filter: delivery.Filter{Types: []delivery.Type{delivery.Completed}, RoomPrefix: "room"}}
	if err := d.AddDestination(ctx, &dst); err != nil {
		t.Fatal(err)
	}
	if ok, err := d.Lease(ctx, testDestination, "test", 1, 1<<62); !ok || err != nil {
		t.Fatal(ok, err)
	}
	failing := at.Add(-time.Hour).UnixMilli()
	if err := d.Commit(ctx, &delivery.Progress{Destination: testDestination, Owner: "test", FailingSince: &failing,
		Dead: []delivery.DeadLetter{{Seq: 7, EventID: "evt_dead7", Type: delivery.Completed, RecordID: "rec-done", Attempts: 8,
			LastStatus: 500, LastError: "answered <500>", DeadAt: at.UnixMilli()}},
		Attempts: []delivery.AttemptRecord{{At: at.UnixMilli(), Seq: 7, EventID: "evt_dead7", Type: delivery.Completed,
			Outcome: "failed", Status: 500, LatencyMs: 12, Error: "answered 500"}}}); err != nil {
		t.Fatal(err)
	}
}

// TestDestinationPages: the list and a destination's page show its state,
// attempts and dead letters, never its secret or its URL's query values;
// a dead letter is redelivered from its button (same-site posts only).
func TestDestinationPages(t *testing.T) {
	s := fill(t, now)
	site := newSite(t, s, "", now)
	status, _, body := fetch(t, nil, site.URL+"/destinations")
	if status != 200 || !strings.Contains(body, `href="/destinations/dst_test"`) || !strings.Contains(body, "failing") {
		t.Fatalf("/destinations: %d\n%s", status, body)
	}
	status, doc, page := fetch(t, nil, site.URL+"/destinations/"+testDestination)
	if status != 200 || !strings.Contains(page, "evt_dead7") || !strings.Contains(page, "answered 500") ||
		!strings.Contains(page, "recording.completed") || !strings.Contains(page, "REDACTED") {
		t.Fatalf("the destination's page: %d\n%s", status, page)
	}
	for _, b := range []string{body, page} {
		if strings.Contains(b, testSecret[6:]) || strings.Contains(b, "t0k3n-in-query") || strings.Contains(b, "<b>app</b>") {
			t.Errorf("a page shows the secret, the URL's token or unescaped HTML:\n%s", b)
		}
	}
	if forms := find(doc, func(n *html.Node) bool {
		return n.Data == "form" && func() bool { a, _ := attr(n, "action"); return a == "/destinations/dst_test/redeliver" }()
	}); len(forms) != 2 {
		t.Errorf("%d redeliver forms, want one per dead letter and one for all", len(forms))
	}
	c := &http.Client{CheckRedirect: noRedirect}
	req, _ := http.NewRequest("POST", site.URL+"/destinations/dst_test/redeliver", strings.NewReader(url.Values{"seq": {"7"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a cross-site redeliver: %v %v", resp, err)
	}
	resp, err := c.PostForm(site.URL+"/destinations/dst_test/redeliver", url.Values{"seq": {"7"}})
	if err != nil || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/destinations/dst_test?redelivered=1" {
		t.Fatalf("redeliver: %v %v", resp, err)
	}
	if held, _ := s.Delivery().Held(context.Background(), testDestination); len(held) != 1 || held[0].Seq != 7 {
		t.Errorf("held after the redelivery: %+v", held)
	}
	if _, _, page := fetch(t, nil, site.URL+"/destinations/dst_test?redelivered=1"); !strings.Contains(page, "1 dead letter put back") ||
		!strings.Contains(page, "No dead letters") {
		t.Errorf("after the redelivery:\n%s", page)
	}
	for _, u := range []string{"/destinations/nope", "/destinations/nope%00"} {
		if status, _, _ := fetch(t, nil, site.URL+u); status != 404 {
			t.Errorf("%s: %d, want 404", u, status)
		}
	}
	if resp, _ := c.PostForm(site.URL+"/destinations/dst_test/redeliver", url.Values{"seq": {"x"}}); resp == nil || resp.StatusCode != 400 {
		t.Errorf("a redeliver of seq x: %v", resp)
	}
}
