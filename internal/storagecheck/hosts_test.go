package storagecheck

import (
	"errors"
	"maps"
	"net/url"
	"strings"
	"testing"
)

func TestParseHosts(t *testing.T) {
	for _, tc := range []struct {
		list    string
		allowed []string
		refused []string
		bad     bool
	}{
		{list: "", refused: []string{"http://a.example/"}},
		{list: "S3.Example.COM", allowed: []string{"https://s3.example.com/b/k", "http://S3.EXAMPLE.com/k", "https://s3.example.com:443/k", "https://s3.example.com./k"},
			refused: []string{"https://s3.example.com:9000/k", "https://other.example.com/k", "ftp://s3.example.com/k"}},
		{list: " minio.local:9000 , 127.0.0.1:8080", allowed: []string{"http://MINIO.local:9000/k", "http://127.0.0.1:8080/k"},
			refused: []string{"http://minio.local/k", "https://127.0.0.1/k", "http://127.0.0.1:08080x/k"}},
		{list: "[::1]:9000,[2001:DB8::1]", allowed: []string{"http://[::1]:9000/k", "https://[2001:db8::1]/k", "http://[0:0:0:0:0:0:0:1]:9000/k"},
			refused: []string{"http://[::1]/k", "http://[::1%25lo]:9000/k"}},
		{list: "a.example:09000", allowed: []string{"http://a.example:9000/k"}},
		{list: "a,,b", bad: true},
		{list: "a.example:", bad: true},
		{list: "a.example:0", bad: true},
		{list: "a.example:65536", bad: true},
		{list: "http://a.example", bad: true},
		{list: "a.example/path", bad: true},
		{list: "user@a.example", bad: true},
		{list: "::1", bad: true},
		{list: "[::1", bad: true},
		{list: "[::1]x", bad: true},
		{list: "[127.0.0.1]:80", bad: true},
		{list: ":80", bad: true},
		{list: ".", bad: true},
		{list: "a..example", bad: true},
		{list: "bücher.example", bad: true},
		{list: "a%2e.example", bad: true},
	} {
		h, err := ParseHosts(tc.list)
		if tc.bad {
			if !errors.Is(err, ErrBadHosts) {
				t.Errorf("ParseHosts(%q) = %v, want ErrBadHosts", tc.list, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseHosts(%q): %v", tc.list, err)
		}
		for _, raw := range tc.allowed {
			if u, _ := url.Parse(raw); u == nil || !h.Allows(u) {
				t.Errorf("%q does not allow %s", tc.list, raw)
			}
		}
		for _, raw := range tc.refused {
			if u, _ := url.Parse(raw); u != nil && h.Allows(u) {
				t.Errorf("%q allows %s", tc.list, raw)
			}
		}
	}
}

// asciiUpper upper-cases ASCII letters only, leaving every other byte.
func asciiUpper(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

func FuzzParseHosts(f *testing.F) {
	for _, s := range []string{"", "s3.example.com", "a:9000,b", "[::1]:9000", "[::1", "a,,b", "A.Example.:443", "127.0.0.1:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHosts(s)
		hu, erru := ParseHosts(asciiUpper(s))
		if (err == nil) != (erru == nil) || !maps.Equal(h.entries, hu.entries) {
			t.Fatalf("case changes the list: %q -> %v %v, upper -> %v %v", s, h.entries, err, hu.entries, erru)
		}
		if err != nil {
			return
		}
		for e := range h.entries {
			u := &url.URL{Scheme: "http", Host: e, Path: "/k"}
			if !h.Allows(u) {
				t.Fatalf("%q: entry %s does not allow its own URL %s", s, e, u)
			}
		}
	})
}

func TestParseContentRange(t *testing.T) {
	for v, want := range map[string]int64{"bytes 0-0/1234": 1234, "bytes */0": 0, " bytes 0-9/10 ": 10} {
		if got, ok := parseContentRange(v); !ok || got != want {
			t.Errorf("parseContentRange(%q) = %d %v, want %d", v, got, ok, want)
		}
	}
	for _, v := range []string{"", "bytes 0-0/*", "bytes 0-0/", "bytes 0-0/-5", "bytes 5-0/10", "bytes 0-10/10", "items 0-0/10", "bytes 0-0/+10", "bytes -0/10", "bytes 0-0/99999999999999999999"} {
		if got, ok := parseContentRange(v); ok {
			t.Errorf("parseContentRange(%q) = %d, want not ok", v, got)
		}
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-0/1234", "bytes */0", "bytes 0-0/*", "bytes 5-0/10"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseContentRange(s)
		if ok && n < 0 {
			t.Fatalf("parseContentRange(%q) = %d", s, n)
		}
	})
}
