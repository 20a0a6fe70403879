package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recledger/recledger/rc"
)

// postSignedWith sends body signed with secret and returns the status.
func postSignedWith(t *testing.T, addr, secret string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/callbacks/recording", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	s := rc.Signer{AppKey: testApp, Secret: secret}
	s.Apply(req, s.Sign())
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// getWithToken reads the recordings with token and returns the status.
func getWithToken(t *testing.T, addr, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/recordings", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// waitLog waits (bounded) for the n-th log line holding want.
func (s *server) waitLog(t *testing.T, want string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for strings.Count(s.logs.String(), want) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", want, s.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestServeReloadsOnSIGHUP: SIGHUP puts a changed app secret, API token
// and log level in force without a restart; an invalid file keeps the
// running configuration; SIGTERM still stops it gracefully.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "recledger.toml")
	const (
		oldSecret, newSecret = "old-secret", "new-secret"
		oldToken, newToken   = "old-token-0123456789abcdef", "new-token-0123456789abcdef"
	)
	write := func(text string) {
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(`apps = ["your_appkey=` + oldSecret + `"]
api_token = "` + oldToken + `"
log_level = "info"
`)
	srv := startServer(t, dir, "--config", file)
	body, err := os.ReadFile(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := postSignedWith(t, srv.addr, oldSecret, body); got != 200 {
		t.Fatalf("old secret before the reload: %d", got)
	}
	if strings.Contains(srv.logs.String(), "callback stored") {
		t.Fatalf("a debug line at level info:\n%s", srv.logs)
	}

	write(`apps = ["your_appkey=` + newSecret + `"]
api_token = "` + newToken + `"
log_level = "debug"
`)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog(t, "configuration reloaded", 1)
	for _, tt := range []struct {
		name      string
		got, want int
	}{
		{"new secret", postSignedWith(t, srv.addr, newSecret, body), 200},
		{"old secret", postSignedWith(t, srv.addr, oldSecret, body), 401},
		{"new token", getWithToken(t, srv.addr, newToken), 200},
		{"old token", getWithToken(t, srv.addr, oldToken), 401},
	} {
		if tt.got != tt.want {
			t.Errorf("after the reload, %s: %d, want %d", tt.name, tt.got, tt.want)
		}
	}
	if !strings.Contains(srv.logs.String(), "callback stored") {
		t.Errorf("no debug line after reloading log_level = debug:\n%s", srv.logs)
	}

	write(`apps = ["your_appkey=` + oldSecret + `"]
log_level = "loud"
`)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog(t, "configuration not reloaded", 1)
	if got := postSignedWith(t, srv.addr, newSecret, body); got != 200 {
		t.Errorf("after an invalid reload, the running secret: %d, want 200", got)
	}
	if got := getWithToken(t, srv.addr, newToken); got != 200 {
		t.Errorf("after an invalid reload, the running token: %d, want 200", got)
	}
	srv.stop(t)
	if logs := srv.logs.String(); !strings.Contains(logs, `"msg":"stopped"`) || strings.Contains(logs, newSecret) || strings.Contains(logs, newToken) {
		t.Errorf("no clean stop, or a secret in the log:\n%s", logs)
	}
}

func TestRestartOnlyNamesTheFlags(t *testing.T) {
	a := defaultConfig()
	b := defaultConfig()
	b.Apps = map[string][]string{"k": {"s"}}
	b.APIToken, b.LogLevel = "t", "debug"
	if got := restartOnly(a, b); len(got) != 0 {
		t.Errorf("reloadable changes reported as needing a restart: %v", got)
	}
	b.SignatureTolerance, b.DBWriteTimeout, b.SQLiteSynchronous, b.MaxBodyBytes = time.Minute, time.Second, "normal", 4096
	want := "db-write-timeout max-body-bytes signature-tolerance sqlite-synchronous"
	got := restartOnly(a, b)
	sort.Strings(got)
	if strings.Join(got, " ") != want {
		t.Errorf("restartOnly = %v, want %s", got, want)
	}
}
