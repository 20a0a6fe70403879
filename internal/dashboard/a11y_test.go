package dashboard_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// accessibilityProblems is a smoke check, not an audit: the page has a
// language and a title, one h1 and headings that do not skip a level,
// every form control a label, every image and figure a text alternative,
// every link and button a name, and unique ids.
func accessibilityProblems(doc *html.Node) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if h := find(doc, tag("html")); len(h) != 1 || func() string { v, _ := attr(h[0], "lang"); return v }() == "" {
		add("<html> has no lang")
	}
	if ts := find(find(doc, tag("head"))[0], tag("title")); len(ts) != 1 || text(ts[0]) == "" {
		add("no <title>")
	}
	ids := map[string]int{}
	for _, n := range find(doc, func(n *html.Node) bool { _, ok := attr(n, "id"); return ok }) {
		id, _ := attr(n, "id")
		ids[id]++
	}
	for id, n := range ids {
		if n > 1 {
			add("id %q used %d times", id, n)
		}
	}
	labelFor := map[string]bool{}
	for _, l := range find(doc, tag("label")) {
		if f, ok := attr(l, "for"); ok && text(l) != "" {
			labelFor[f] = true
		}
	}
	named := func(n *html.Node) bool {
		if v, _ := attr(n, "aria-label"); strings.TrimSpace(v) != "" {
			return true
		}
		if v, ok := attr(n, "aria-labelledby"); ok {
			for _, id := range strings.Fields(v) {
				if ids[id] == 0 {
					return false
				}
			}
			return v != ""
		}
		return false
	}
	for _, n := range find(doc, func(n *html.Node) bool { return n.Data == "input" || n.Data == "select" || n.Data == "textarea" }) {
		if typ, _ := attr(n, "type"); typ == "hidden" || typ == "submit" || typ == "button" {
			continue
		}
		id, _ := attr(n, "id")
		inLabel := false
		for p := n.Parent; p != nil; p = p.Parent {
			if p.Type == html.ElementNode && p.Data == "label" {
				inLabel = true
			}
		}
		if !(id != "" && labelFor[id]) && !inLabel && !named(n) {
			name, _ := attr(n, "name")
			add("<%s name=%q> has no label", n.Data, name)
		}
	}
	level := 0
	h1s := 0
	for _, h := range find(doc, func(n *html.Node) bool {
		return len(n.Data) == 2 && n.Data[0] == 'h' && n.Data[1] >= '1' && n.Data[1] <= '6'
	}) {
		l := int(h.Data[1] - '0')
		if l == 1 {
			h1s++
		}
		if l > level+1 {
			add("<%s> %q follows h%d", h.Data, text(h), level)
		}
		if text(h) == "" {
			add("empty <%s>", h.Data)
		}
		level = l
	}
	if h1s != 1 {
		add("%d <h1>, want 1", h1s)
	}
	for _, n := range find(doc, tag("img")) {
		if _, ok := attr(n, "alt"); !ok {
			add("<img> without alt")
		}
	}
	for _, n := range find(doc, tag("svg")) {
		if role, _ := attr(n, "role"); role != "img" || !named(n) {
			add("<svg> is not an image with a name")
		}
	}
	for _, n := range find(doc, func(n *html.Node) bool { return n.Data == "a" || n.Data == "button" || n.Data == "summary" }) {
		if text(n) == "" && !named(n) {
			add("<%s> without a name", n.Data)
		}
	}
	for _, n := range find(doc, func(n *html.Node) bool { return n.Data == "video" || n.Data == "audio" }) {
		if !named(n) {
			add("<%s> without a name", n.Data)
		}
	}
	// axe-core's landmark-unique: landmarks of one role are told apart by
	// their names.
	seen := map[[2]string]int{}
	for _, n := range find(doc, func(*html.Node) bool { return true }) {
		if role := landmarkRole(n, doc); role != "" {
			seen[[2]string{role, accessibleName(n, doc)}]++
		}
	}
	for k, n := range seen {
		if n > 1 {
			add("landmark-unique: %d %s landmarks named %q", n, k[0], k[1])
		}
	}
	return problems
}

// landmarkRole is the landmark role of n under HTML-AAM, or "" when n is
// not one: header and footer are banner and contentinfo outside sectioning
// content, section and form landmarks only when named.
func landmarkRole(n *html.Node, doc *html.Node) string {
	if role, ok := attr(n, "role"); ok {
		switch role {
		case "banner", "complementary", "contentinfo", "main", "navigation", "search":
			return role
		case "region", "form":
			if accessibleName(n, doc) != "" {
				return role
			}
		}
		return ""
	}
	switch n.Data {
	case "nav":
		return "navigation"
	case "main":
		return "main"
	case "aside":
		return "complementary"
	case "header", "footer":
		for p := n.Parent; p != nil; p = p.Parent {
			switch p.Data {
			case "article", "aside", "main", "nav", "section":
				return ""
			}
		}
		if n.Data == "header" {
			return "banner"
		}
		return "contentinfo"
	case "section", "form":
		if accessibleName(n, doc) != "" {
			return map[string]string{"section": "region", "form": "form"}[n.Data]
		}
	}
	return ""
}

// accessibleName is n's aria-labelledby text, else its aria-label.
func accessibleName(n *html.Node, doc *html.Node) string {
	if ids, ok := attr(n, "aria-labelledby"); ok {
		var parts []string
		for _, id := range strings.Fields(ids) {
			for _, m := range find(doc, hasAttr("id", id)) {
				parts = append(parts, text(m))
			}
		}
		return strings.Join(parts, " ")
	}
	v, _ := attr(n, "aria-label")
	return strings.TrimSpace(v)
}

func TestPagesPassAccessibilitySmokeCheck(t *testing.T) {
	open := newSite(t, fill(t, now), "", now)
	locked := newSite(t, fill(t, now), "tok-a11y", now)
	for _, u := range []string{
		open.URL + "/",
		open.URL + "/recordings",
		open.URL + "/recordings?status=ended&uploadState=failed",
		open.URL + "/recordings/rec-stuck",
		open.URL + "/recordings/" + url.PathEscape(hostileID),
		open.URL + "/quarantine",
		open.URL + "/destinations",
		open.URL + "/destinations/dst_test",
		open.URL + "/recordings/nope",
		open.URL + "/recordings?mode=99",
		open.URL + "/search?q=nothing",
		locked.URL + "/login",
	} {
		_, doc, _ := fetch(t, nil, u)
		for _, p := range accessibilityProblems(doc) {
			t.Errorf("%s: %s", u, p)
		}
	}
}

// The check finds what it looks for.
func TestAccessibilityCheckFindsProblems(t *testing.T) {
	page := `<!doctype html><html><head><title></title></head><body>
		<h2>Skipped</h2><h1>One</h1><h1>Two</h1><h4>Deep</h4>
		<input name="q"><select id="s"></select><label for="s"></label>
		<img src="x.png"><a href="/"></a><button></button><svg></svg><video src="v.mp4"></video>
		<p id="dup"></p><p id="dup"></p>
		<nav></nav><nav aria-label="Pages"></nav><nav></nav>
		<section aria-labelledby="h-x"><h2 id="h-x">X</h2><div role="region" aria-label="X"></div></section>
		<section></section><section></section><nav aria-label="Pages"><header></header><header></header></nav></body></html>`
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(accessibilityProblems(doc), "\n")
	// Unnamed sections and headers inside sectioning content are no landmarks.
	if strings.Contains(got, "region landmarks named \"\"") || strings.Contains(got, "banner") {
		t.Errorf("the check counts what is no landmark:\n%s", got)
	}
	for _, want := range []string{"no lang", "no <title>", `id "dup"`, `<input name="q"> has no label`, `<select name="">`,
		`<h4> "Deep" follows h1`, "2 <h1>", "<img> without alt", "<a> without a name", "<button> without a name",
		"<svg> is not an image", "<video> without a name", `landmark-unique: 2 navigation landmarks named ""`,
		`landmark-unique: 2 navigation landmarks named "Pages"`, `landmark-unique: 2 region landmarks named "X"`} {
		if !strings.Contains(got, want) {
			t.Errorf("the check missed %q; it said:\n%s", want, got)
		}
	}
}
