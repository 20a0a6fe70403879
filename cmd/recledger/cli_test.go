package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestJSONEmptyListsAreArrays: every --json list a script reads answers []
// when nothing matches, as the API does, so `jq '.items[]'` works on an
// empty answer as on a full one.
func TestJSONEmptyListsAreArrays(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
	server := "http://" + srv.addr
	for _, args := range [][]string{
		{"recordings", "ls", "--json"},
		{"recordings", "ls", "--json", "--all"},
		{"recordings", "ls", "--json", "--room", "nowhere"},
		{"quarantine", "ls", "--json"},
		{"destinations", "ls", "--json"},
	} {
		out, stderr, code := runBinary(t, "", append(args, "--server", server)...)
		var got map[string]json.RawMessage
		if code != 0 || json.Unmarshal([]byte(out), &got) != nil {
			t.Errorf("%s: exit %d, %s%s", strings.Join(args, " "), code, out, stderr)
			continue
		}
		if items := string(got["items"]); items != "[]" {
			t.Errorf("%s: items = %s, want []", strings.Join(args, " "), items)
		}
	}
}
