package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/display"
	"github.com/recledger/recledger/internal/ledger"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "write the dashboard screenshots of TestDashboardInBrowser to docs/screenshots")

// chromiumPath finds the browser for the browser tests: RECLEDGER_TEST_CHROMIUM
// names it (and then it must work); otherwise Debian's chromium if installed.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RECLEDGER_TEST_CHROMIUM"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("RECLEDGER_TEST_CHROMIUM=%s: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium: install Debian's chromium (apt-get install chromium) or set RECLEDGER_TEST_CHROMIUM to a Chromium binary")
	return ""
}

// newBrowser starts headless Chromium with a fresh profile and the flags
// this closed network needs (no background connections, no QUIC).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	var chromeLog bytes.Buffer
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
		chromedp.CombinedOutput(&chromeLog),
	)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() {
		cancelTimeout()
		cancelCtx()
		cancelAlloc()
		if t.Failed() && chromeLog.Len() > 0 {
			t.Logf("chromium said:\n%.4000s", chromeLog.String())
		}
	})
	return ctx
}

// apiGet reads the query API as the test's client (bearer token).
func apiGet(t *testing.T, addr, token, path string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// seedWith returns an RC seed example with some members replaced.
func seedWith(t *testing.T, name string, set map[string]any) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "rc", "testdata", "seed", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		if k == "output" {
			out := m["output"].(map[string]any)
			for ok, ov := range v.(map[string]any) {
				out[ok] = ov
			}
			continue
		}
		m[k] = v
	}
	b, _ := json.Marshal(m)
	return b
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		t.Fatalf("%s (at %s): %v", what, loc, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a page expression until it is true, across a navigation
// the page is making (which ends a poll's JavaScript context).
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(time.Until(deadline)), chromedp.WithPollingInterval(100*time.Millisecond)))
		if err == nil {
			return
		}
		navigating := strings.Contains(err.Error(), "navigated") || strings.Contains(err.Error(), "context was destroyed") ||
			strings.Contains(err.Error(), "Cannot find context")
		if !navigating || time.Now().After(deadline) {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			t.Fatalf("waiting for %s (at %s): %v", what, loc, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshot saves the viewport as docs/screenshots/NAME.png with
// -update-screenshots, else in the test's temporary folder.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := t.TempDir()
	if *updateScreenshots {
		dir = filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// chartText measures the overview chart: its tick text's rendered height
// and whether the y-axis label and legend show whole.
const chartText = `(() => {
  const fig = document.querySelector('figure.chart').getBoundingClientRect();
  const inside = r => r.width > 0 && r.height > 0 && r.left >= fig.left - 0.5 && r.right <= fig.right + 0.5 && r.top >= fig.top - 0.5 && r.bottom <= fig.bottom + 0.5;
  const ticks = [...document.querySelectorAll('figure.chart .tick, figure.chart svg text')].map(e => e.getBoundingClientRect());
  const y = document.querySelector('figure.chart [data-y-label]');
  const legend = [...document.querySelectorAll('figure.chart [data-legend] li')];
  const bar = document.querySelector('figure.chart rect.ok');
  const swatch = document.querySelector('figure.chart [data-legend] .swatch.ok');
  return {
    tickHeights: ticks.map(r => r.height),
    ticksInside: ticks.every(inside),
    yLabel: y ? y.textContent : '',
    yLabelInside: !!y && inside(y.getBoundingClientRect()) && y.scrollHeight <= y.clientHeight + 1 && y.scrollWidth <= y.clientWidth + 1,
    legend: legend.map(li => li.textContent.trim()),
    legendInside: legend.every(li => inside(li.getBoundingClientRect())),
    swatchIsBar: !!bar && !!swatch && getComputedStyle(swatch).backgroundColor === getComputedStyle(bar).fill,
  };
})()`

// checkChart checks the overview's chart at the current width: the y-axis
// label shows whole, a legend names both kinds of bar in their colours,
// and the tick text is readable (12 px or more), not shrunk or blown up
// with the chart's width.
func checkChart(t *testing.T, ctx context.Context, width string) {
	t.Helper()
	c := eval[struct {
		TickHeights               []float64
		TicksInside               bool
		YLabel                    string
		YLabelInside              bool
		Legend                    []string
		LegendInside, SwatchIsBar bool
	}](t, ctx, chartText)
	if c.YLabel == "" || !c.YLabelInside {
		t.Errorf("%s: the chart's y-axis label %q is missing or clipped", width, c.YLabel)
	}
	if strings.Join(c.Legend, ", ") != "stored callbacks, refused requests" || !c.LegendInside || !c.SwatchIsBar {
		t.Errorf("%s: the chart's legend %q (whole: %v, in the bars' colour: %v)", width, c.Legend, c.LegendInside, c.SwatchIsBar)
	}
	if len(c.TickHeights) < 4 || !c.TicksInside {
		t.Errorf("%s: %d tick labels, all inside the chart: %v", width, len(c.TickHeights), c.TicksInside)
	}
	for _, h := range c.TickHeights {
		if h < 12 || h > 24 {
			t.Errorf("%s: a tick label %.1f px high; want 12 to 24 px at any width", width, h)
		}
	}
}

// tooWide names the outermost elements that reach past the viewport's
// right edge, to say what makes a page scroll sideways.
const tooWide = `(() => {
  const w = document.documentElement.clientWidth, out = [];
  document.querySelectorAll('body *').forEach(e => {
    if (e.getBoundingClientRect().right <= w + 0.5 || !e.checkVisibility()) return;
    if (e.parentElement && e.parentElement.getBoundingClientRect().right > w + 0.5 && e.parentElement !== document.body) return;
    for (let a = e.parentElement; a; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') return; // it scrolls in there
    }
    out.push(e.tagName.toLowerCase() + (e.className ? '.' + e.className : '') + ' ' + Math.round(e.getBoundingClientRect().right) + 'px');
  });
  return out.slice(0, 5);
})()`

// brokenValues lists the ids, names, times and sizes in the page's tables
// that are laid out on more than one line.
const brokenValues = `(() => {
  const broken = [];
  document.querySelectorAll('table code, table time, table .badge, td.nowrap, table a.file-url').forEach(e => {
    if (!e.checkVisibility()) return;
    const r = document.createRange();
    r.selectNodeContents(e);
    const lines = new Set([...r.getClientRects()].filter(q => q.width > 0).map(q => Math.round(q.top)));
    if (lines.size > 1) broken.push(lines.size + ' lines: ' + e.textContent.trim().slice(0, 60));
  });
  return broken;
})()`

// checkLocalTimes checks that the page's script rewrote every time the
// server wrote in UTC into the browser's zone (zone) under display's rule,
// keeping the UTC text as the title.
func checkLocalTimes(t *testing.T, ctx context.Context, page string, zone *time.Location) {
	t.Helper()
	times := eval[[][3]string](t, ctx, `[...document.querySelectorAll('time[data-local]')].map(e => [e.getAttribute('datetime'), e.textContent, e.title])`)
	if len(times) == 0 {
		t.Errorf("%s: no times to show in the browser's zone", page)
	}
	for _, tm := range times {
		at, err := time.Parse(time.RFC3339Nano, tm[0])
		if err != nil {
			t.Errorf("%s: datetime %q: %v", page, tm[0], err)
			continue
		}
		if want := display.Time(at.UnixMilli(), zone); tm[1] != want {
			t.Errorf("%s: <time datetime=%q> shows %q, want %q (the browser's zone)", page, tm[0], tm[1], want)
		}
		if want := display.Time(at.UnixMilli(), time.UTC); tm[2] != want {
			t.Errorf("%s: <time datetime=%q> has title %q, want the UTC %q", page, tm[0], tm[2], want)
		}
	}
}

// lowContrast lists the visible text on the page whose colour against its
// background is below WCAG's 4.5:1 for body text.
const lowContrast = `(() => {
  const channels = c => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = c => {
    const [r, g, b] = channels(c).slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor, ch = channels(c);
      if (ch.length === 3 || (ch.length === 4 && ch[3] > 0)) return c;
    }
    return 'rgb(255, 255, 255)';
  };
  const bad = [];
  document.querySelectorAll('body *:not(svg):not(svg *)').forEach(el => {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim() !== '');
    if (!own || !el.checkVisibility()) return;
    const a = lum(getComputedStyle(el).color), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) bad.push(el.tagName.toLowerCase() + '.' + el.className + ' ' + ratio.toFixed(2) + ': ' + el.textContent.trim().slice(0, 40));
  });
  return bad;
})()`

// checkContrast fails the test for text below 4.5:1 on the current page.
func checkContrast(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	for _, bad := range eval[[]string](t, ctx, lowContrast) {
		t.Errorf("%s: low contrast: %s", page, bad)
	}
}

// TestDashboardInBrowser drives the dashboard in headless Chromium against
// a server the simulator filled: login, each page's content checked
// against the API, live updates without a reload, filters, search, the
// keyboard's first stop, and screenshots of every page.
func TestDashboardInBrowser(t *testing.T) {
	ctx := newBrowser(t)
	const token = "browser-test-token-7d1e"
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret, "--api-token", token)
	base := "http://" + srv.addr
	out, stderr, code := runBinary(t, "", "simulate", "--to", base+"/v1/callbacks/recording", "--app", testApp+"="+testSecret,
		"--recordings", "60", "--seed", "7", "--upload-failures", "0.3", "--never-uploaded", "0.1", "--failed-recordings", "0.1",
		"--faults", "badsig=0.05,malformed=0.05,dup=0.1")
	if code != 0 {
		t.Fatalf("simulate: exit %d\n%s%s", code, out, stderr)
	}
	var all api.RecordingList
	apiGet(t, srv.addr, token, "/v1/recordings?limit=500", &all)
	byStatus := map[string]int{}
	for _, r := range all.Items {
		byStatus[string(r.Status)]++
	}

	// The browser's zone is India's (+05:30, no summer time): the pages'
	// times are shown in it, under the rule, offset included.
	viewerZone := time.FixedZone("IST", 5*3600+30*60)
	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Kolkata"}); err != nil {
		t.Fatalf("emulate a time zone: %v", err)
	}

	// Login: the dashboard sends the browser to the form, the token opens it.
	do(t, ctx, "open the dashboard", chromedp.EmulateViewport(1280, 1000), chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#token")))
	if loc := eval[string](t, ctx, "location.pathname + location.search"); loc != "/login?next=%2F" {
		t.Errorf("without a session the dashboard went to %s", loc)
	}
	screenshot(t, ctx, "login")
	checkContrast(t, ctx, "login")
	do(t, ctx, "log in", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Submit(chromedp.CSS("#token")),
		chromedp.WaitVisible(chromedp.CSS("[data-count]")))
	if cookies := eval[string](t, ctx, "document.cookie"); strings.Contains(cookies, "recledger_session") {
		t.Error("the session cookie is readable by scripts; it must be HttpOnly")
	}

	// Overview: the counts are the API's.
	counts := eval[map[string]int](t, ctx, `Object.fromEntries([...document.querySelectorAll('[data-count]')].map(e => [e.dataset.count, Number(e.textContent)]))`)
	for _, s := range []string{"recording", "ended", "complete", "failed"} {
		if counts[s] != byStatus[s] {
			t.Errorf("overview shows %d %s, the API %d", counts[s], s, byStatus[s])
		}
	}
	if counts["complete"] == 0 || counts["failed"] == 0 {
		t.Errorf("the simulation should give complete and failed recordings: %v", counts)
	}
	screenshot(t, ctx, "overview")
	checkContrast(t, ctx, "overview")
	checkChart(t, ctx, "desktop")

	// Live: a new callback shows on the overview without a reload.
	before := eval[int](t, ctx, `Number(document.querySelector('[data-callbacks-hour]').textContent)`)
	eval[bool](t, ctx, `window.__sameDocument = true`)
	if status, err := postSigned(srv.addr, seedWith(t, "type1-start.json", map[string]any{"recordId": "browser-live-1", "timestamp": time.Now().UnixMilli()})); err != nil || status != 200 {
		t.Fatalf("post a start: %d %v", status, err)
	}
	waitFor(t, ctx, "the overview to count the new callback",
		fmt.Sprintf(`window.__sameDocument === true && Number(document.querySelector('[data-callbacks-hour]').textContent) > %d && Number(document.querySelector('[data-count="recording"]').textContent) === %d`,
			before, counts["recording"]+1))

	// The keyboard's first stop is the skip link.
	do(t, ctx, "press Tab", chromedp.KeyEvent("\t"))
	if cls := eval[string](t, ctx, "document.activeElement.className"); cls != "skip" {
		t.Errorf("first Tab focuses %q, want the skip link", cls)
	}

	// Recordings: newest first, filters, and live rows.
	do(t, ctx, "open recordings", chromedp.Navigate(base+"/recordings"), chromedp.WaitVisible(chromedp.CSS("table.recordings")))
	first := eval[string](t, ctx, `document.querySelector('tr[data-record-id]').dataset.recordId`)
	if first != "browser-live-1" {
		t.Errorf("newest first: the first row is %s", first)
	}
	eval[bool](t, ctx, `window.__sameDocument = true`)
	if status, err := postSigned(srv.addr, seedWith(t, "type1-start.json", map[string]any{"recordId": "browser-live-2", "timestamp": time.Now().UnixMilli()})); err != nil || status != 200 {
		t.Fatalf("post a start: %d %v", status, err)
	}
	waitFor(t, ctx, "the new recording's row", `window.__sameDocument === true && document.querySelector('tr[data-record-id]').dataset.recordId === 'browser-live-2'`)
	// The times, the new row's included, are in the browser's zone.
	checkLocalTimes(t, ctx, "recordings", viewerZone)
	screenshot(t, ctx, "recordings")
	checkContrast(t, ctx, "recordings")

	do(t, ctx, "filter by status", chromedp.SetValue(chromedp.CSS("#f-status"), "complete"), chromedp.Click(chromedp.CSS(".filters button[type=submit]")),
		chromedp.WaitVisible(chromedp.CSS("#f-status")))
	waitFor(t, ctx, "the filtered page", `location.search.includes('status=complete')`)
	statuses := eval[[]string](t, ctx, `[...document.querySelectorAll('tr[data-record-id] .badge[class*="st-"]')].map(e => e.textContent)`)
	if want := min(byStatus["complete"], 50); len(statuses) != want {
		t.Errorf("status=complete shows %d rows, want %d", len(statuses), want)
	}
	for _, s := range statuses {
		if s != "complete" {
			t.Errorf("a %s recording under status=complete", s)
		}
	}

	// A recording's detail: its files and URLs are the API's; raw JSON is one click away.
	// A complete recording with two files or more, in mp4 when there is one
	// (its files get an inline player).
	var known *ledger.Recording
	for i := range all.Items {
		r := &all.Items[i]
		if r.Status != ledger.StatusComplete || r.FileCount < 2 {
			continue
		}
		if known == nil || (r.Config != nil && r.Config.VideoFormat == "mp4" && r.Mode.HasVideo()) {
			known = r
		}
	}
	if known == nil {
		t.Fatal("no complete recording with two files to look at")
	}
	var detail api.RecordingDetail
	apiGet(t, srv.addr, token, "/v1/recordings/"+known.RecordID, &detail)
	do(t, ctx, "search for the recording", chromedp.SendKeys(chromedp.CSS("#search-q"), known.RecordID), chromedp.Submit(chromedp.CSS("#search-q")))
	waitFor(t, ctx, "the detail page", fmt.Sprintf(`location.pathname === '/recordings/%s' && document.querySelector('tr[data-file]') !== null`, known.RecordID))
	shown := eval[map[string]string](t, ctx, `Object.fromEntries([...document.querySelectorAll('tr[data-file]')].map(tr => [tr.dataset.file, (tr.querySelector('a.file-url') || {}).textContent || '']))`)
	if len(shown) != len(detail.Files) {
		t.Errorf("detail shows %d files, the API %d", len(shown), len(detail.Files))
	}
	for _, f := range detail.Files {
		if f.FileURL == nil || shown[f.FileName] != *f.FileURL {
			t.Errorf("file %s: shown link %q, API %v", f.FileName, shown[f.FileName], f.FileURL)
		}
	}
	players := 0
	for _, f := range detail.Files {
		if f.Format == "mp4" || f.Format == "mp3" || f.Format == "aac" || f.Format == "mkv" {
			players++
		}
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('details.player video[preload=none], details.player audio[preload=none]').length`); n != players {
		t.Errorf("inline players %d, want %d (one per uploaded mp4/mkv/mp3/aac)", n, players)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('tr[data-seq]').length`); n != len(detail.Events) {
		t.Errorf("timeline rows %d, API events %d", n, len(detail.Events))
	}
	screenshot(t, ctx, "recording")
	checkContrast(t, ctx, "recording")
	checkLocalTimes(t, ctx, "recording", viewerZone)
	do(t, ctx, "open a callback's JSON", chromedp.Click(chromedp.CSS("details.raw summary")))
	raw := eval[string](t, ctx, `(() => { const d = document.querySelector('details.raw'); return d.open && d.querySelector('pre').checkVisibility() ? d.querySelector('pre').textContent : '' })()`)
	if !strings.Contains(raw, `"recordId": "`+known.RecordID+`"`) {
		t.Errorf("the raw JSON is not shown on click: %q", raw)
	}
	// Live: an upload of a new file appears, and the open JSON stays open.
	eval[bool](t, ctx, `window.__sameDocument = true`)
	extra := map[string]any{"recordId": known.RecordID, "roomId": known.RoomID, "sessionId": known.SessionID, "userId": known.UserID,
		"mode": int(known.Mode), "timestamp": time.Now().UnixMilli(), "appKey": testApp,
		"output": map[string]any{"fileName": "browser-extra.mp4", "fileUrl": "https://storage.example.com/browser-extra.mp4"}}
	if status, err := postSigned(srv.addr, seedWith(t, "type4-upload.json", extra)); err != nil || status != 200 {
		t.Fatalf("post an upload: %d %v", status, err)
	}
	waitFor(t, ctx, "the new file on the detail page",
		`window.__sameDocument === true && document.querySelector('tr[data-file="browser-extra.mp4"]') !== null && document.querySelector('details.raw').open`)

	// Quarantine: the simulator's forged and malformed requests, with reasons.
	do(t, ctx, "open quarantine", chromedp.Navigate(base+"/quarantine"), chromedp.WaitVisible(chromedp.CSS("table.quarantine")))
	reasons := eval[[]string](t, ctx, `[...new Set([...document.querySelectorAll('tr[data-id] .reason')].map(e => e.textContent))].sort()`)
	if strings.Join(reasons, ",") != "bad_signature,invalid_json" {
		t.Errorf("quarantine reasons %v, want bad_signature and invalid_json", reasons)
	}
	screenshot(t, ctx, "quarantine")
	checkContrast(t, ctx, "quarantine")

	// A phone's width: the overview still reads without sideways scrolling.
	do(t, ctx, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile), chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS("[data-count]")))
	checkChart(t, ctx, "phone")
	screenshot(t, ctx, "overview-phone")
	// No page scrolls sideways on a phone (a wide table scrolls in its own
	// region), and the filter form starts folded.
	phonePages := []string{"/", "/recordings", "/recordings/" + known.RecordID, "/files?uploadState=not_uploaded", "/quarantine", "/destinations"}
	for _, p := range phonePages {
		do(t, ctx, "open "+p+" on a phone", chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS("h1")))
		// (A mobile browser widens innerWidth to a page too wide for it; the
		// layout viewport, clientWidth, stays the phone's.)
		if w := eval[[2]float64](t, ctx, `[document.scrollingElement.scrollWidth, document.documentElement.clientWidth]`); w[0] > w[1] {
			t.Errorf("%s on a phone scrolls sideways: %v px wide in a %v px viewport; too wide: %v", p, w[0], w[1], eval[[]string](t, ctx, tooWide))
		}
		if p == "/recordings" {
			if folded := eval[bool](t, ctx, `(() => { const d = document.querySelector('details.filter-box');
				return !!d && !d.open && d.querySelector('summary').checkVisibility() && !document.querySelector('#f-app').checkVisibility() })()`); !folded {
				t.Error("on a phone the filter form is not folded behind its summary")
			}
			screenshot(t, ctx, "recordings-phone")
		}
	}
	// On a desktop: the filter form is open, and no table breaks an id, a
	// name, a time or a size across lines.
	do(t, ctx, "desktop viewport", chromedp.EmulateViewport(1280, 1000))
	for _, p := range phonePages {
		do(t, ctx, "open "+p+" on a desktop", chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS("h1")))
		if p == "/recordings" {
			if open := eval[bool](t, ctx, `document.querySelector('details.filter-box').open && document.querySelector('#f-app').checkVisibility()`); !open {
				t.Error("on a desktop the filter form is folded")
			}
			// The list fits a desktop whole, ids unbroken.
			if w := eval[[2]float64](t, ctx, `(e => [e.scrollWidth, e.clientWidth])(document.querySelector('table.recordings').parentElement)`); w[0] > w[1] {
				t.Errorf("the recordings table needs %v px at 1280 px, its region has %v", w[0], w[1])
			}
		}
		for _, b := range eval[[]string](t, ctx, brokenValues) {
			t.Errorf("%s at 1280 px: %s", p, b)
		}
		if strings.HasPrefix(p, "/files") {
			if w := eval[[2]float64](t, ctx, `(e => [e.scrollWidth, e.clientWidth])(document.querySelector('table.files').parentElement)`); w[0] > w[1] {
				t.Errorf("the files table needs %v px at 1280 px, its region has %v", w[0], w[1])
			}
			checkContrast(t, ctx, p)
			screenshot(t, ctx, "files")
		}
	}

	// Dark mode (prefers-color-scheme: dark) keeps the contrast too.
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}}); err != nil {
		t.Fatalf("emulate dark mode: %v", err)
	}
	do(t, ctx, "desktop viewport", chromedp.EmulateViewport(1280, 1000))
	for _, p := range []string{"/", "/recordings", "/recordings/" + known.RecordID, "/files", "/quarantine"} {
		do(t, ctx, "open "+p+" in dark mode", chromedp.Navigate(base+p), chromedp.WaitVisible(chromedp.CSS("h1")))
		if dark := eval[bool](t, ctx, `matchMedia('(prefers-color-scheme: dark)').matches`); !dark {
			t.Fatal("dark mode is not emulated")
		}
		checkContrast(t, ctx, p+" (dark)")
		if p == "/" {
			screenshot(t, ctx, "overview-dark")
		}
	}

	if strings.Contains(srv.logs.String(), token) {
		t.Error("the API token reached the server log")
	}
}
