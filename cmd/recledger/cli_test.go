package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// runBinaryEnv is runBinary with extra environment variables.
func runBinaryEnv(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCmd(t, "", env, args...)
}

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

// TestCLITimesShowTheirZone: the commands that print times print them in
// the local zone with its offset, or in UTC under --utc.
func TestCLITimesShowTheirZone(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
	srv.postSeeds(t, "type1-start.json", "type3-end.json")
	server := "http://" + srv.addr
	shanghai := []string{"TZ=Asia/Shanghai"}
	for _, args := range [][]string{
		{"recordings", "show", "8329208b99410743dcfeb80548e2c0ec"},
		{"recordings", "ls"},
		{"files", "show", "lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4"},
		{"events", "tail"},
	} {
		name := strings.Join(args, " ")
		args = append(args, "--server", server)
		out, stderr, code := runBinaryEnv(t, shanghai, args...)
		if code != 0 || !strings.Contains(out, " +08:00 (") || strings.Contains(out, "+00:00") {
			t.Errorf("%s in Asia/Shanghai (exit %d): want +08:00 times:\n%s%s", name, code, out, stderr)
		}
		out, stderr, code = runBinaryEnv(t, shanghai, append(args, "--utc")...)
		if code != 0 || !strings.Contains(out, " +00:00 (") || strings.Contains(out, "+08:00") {
			t.Errorf("%s --utc (exit %d): want +00:00 times:\n%s%s", name, code, out, stderr)
		}
	}
}
