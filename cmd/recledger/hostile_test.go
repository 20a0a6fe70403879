package main

import (
	"strings"
	"testing"
)

// TestCLIHostileValues: the CLI is a client of the API's reads; a filter or
// an id no stored value can equal is answered by the server's 400 (exit 1,
// the message naming the flag, no "retry") or 404 (exit 3), and a
// valid but odd value (quotes, SQL, an emoji) is simply found nowhere.
func TestCLIHostileValues(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
	server := "http://" + srv.addr
	for _, tt := range []struct {
		args []string
		code int
		want string // in stderr
	}{
		{[]string{"recordings", "ls", "--room", "a\xffb"}, exitError, "--room: invalid UTF-8"},
		{[]string{"recordings", "ls", "--user", "a\x1b[2Jb"}, exitError, "--user: control character U+001B"},
		{[]string{"recordings", "ls", "--session", strings.Repeat("s", 300)}, exitError, "--session: 300 bytes, at most 256"},
		{[]string{"recordings", "ls", "--app-key", "a\u0085b"}, exitError, "--app-key: control character U+0085"},
		{[]string{"recordings", "show", "a\xffb"}, exitNotFound, "not found"},
		{[]string{"files", "show", strings.Repeat("f", 2000)}, exitNotFound, "not found"},
		{[]string{"recordings", "ls", "--room", `x' OR '1'='1"; DROP TABLE recordings; --`}, exitOK, ""},
		{[]string{"recordings", "ls", "--room", "\U0001F600"}, exitOK, ""},
	} {
		_, stderr, code := runBinary(t, "", append(tt.args, "--server", server)...)
		name := strings.Join(tt.args, " ")
		if len(name) > 80 {
			name = name[:80] + "…"
		}
		if code != tt.code || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "retry") {
			t.Errorf("%q: exit %d, stderr %.300q; want exit %d and %q", name, code, stderr, tt.code, tt.want)
		}
		if strings.Contains(stderr, "\x1b") { // the path it names is percent-escaped
			t.Errorf("%q: stderr drives the terminal: %.300q", name, stderr)
		}
	}
}
