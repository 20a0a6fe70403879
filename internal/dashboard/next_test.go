package dashboard

import (
	"net/url"
	"strings"
	"testing"
)

// TestSafeNext: the known ways a "next" leaves the site, as the handler
// receives them (form and query values are decoded once already).
func TestSafeNext(t *testing.T) {
	for _, tt := range []struct{ next, want string }{
		{"/recordings?status=ended", "/recordings?status=ended"},
		{"/recordings/abc#files", "/recordings/abc#files"},
		{"/%2F%2Fevil.example", "/%2F%2Fevil.example"}, // an encoded slash is a path byte to the browser
		{"/search?q=a%20b", "/search?q=a%20b"},
		{"", "/"},
		{"//evil.example", "/"},
		{"///evil.example", "/"},
		{`/\evil.example`, "/"},
		{`\/evil.example`, "/"},
		{`/x\..\..\/evil.example`, "/"},
		{"/\t/evil.example", "/"}, // /%09/ decoded: browsers drop the tab, leaving //
		{"\t//evil.example", "/"},
		{"/\n/evil.example", "/"},
		{"/\r/evil.example", "/"},
		{" //evil.example", "/"},
		{"/ /evil.example", "/"},
		{"/\x00/evil.example", "/"},
		{"/\u00a0/evil.example", "/"},
		{"/\u200b/evil.example", "/"},
		{"/\xff/evil.example", "/"},
		{"https://evil.example", "/"},
		{"http:evil.example", "/"},
		{"javascript:alert(1)", "/"},
		{"evil.example", "/"},
		{"?next=//evil", "/"},
		{"recordings", "/"},
		{"/%", "/"},
		{"/%zz", "/"},
		{"/a\r\nSet-Cookie: x", "/"},
	} {
		if got := safeNext(tt.next); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.next, got, tt.want)
		}
	}
}

// FuzzSafeNext: nothing safeNext keeps resolves to another host, neither
// as Go parses it nor after a browser's clean-up (tab, CR and LF dropped,
// the ends trimmed, "\" read as "/").
func FuzzSafeNext(f *testing.F) {
	for _, seed := range []string{"/", "/recordings?x=1", "//evil", `/\evil`, "/\t/evil", "\t//evil", "/%2F%2Fevil", "https://evil", "javascript:x", "/a/../../evil", "/.//evil"} {
		f.Add(seed)
	}
	self, _ := url.Parse("https://self/")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != "/" && got != next {
			t.Fatalf("safeNext(%q) = %q: a kept value must be kept as given", next, got)
		}
		browser := strings.NewReplacer("\t", "", "\r", "", "\n", "", `\`, "/").Replace(got)
		browser = strings.TrimFunc(browser, func(r rune) bool { return r <= ' ' })
		for _, v := range []string{got, browser} {
			u, err := url.Parse(v)
			if err != nil {
				t.Fatalf("safeNext(%q) = %q, which does not parse: %v", next, got, err)
			}
			if r := self.ResolveReference(u); r.Host != "self" || r.Scheme != "https" {
				t.Fatalf("safeNext(%q) = %q leads to %s", next, got, r)
			}
		}
	})
}
