package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// metricsAddrOf waits, bounded, for srv's "metrics listening" log line and
// returns its address.
func metricsAddrOf(t *testing.T, srv *server) string {
	t.Helper()
	for range 100 {
		for line := range strings.Lines(srv.logs.String()) {
			var e struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &e) == nil && e.Msg == "metrics listening" {
				return e.Addr
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no \"metrics listening\" log line:\n%s", srv.logs)
	return ""
}

func getStatus(t *testing.T, method, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(body)
}

// TestMetricsAddr runs the guide's --metrics-addr command (both addresses
// made 127.0.0.1:0, the token given): the second listener serves /metrics,
// /readyz and /healthz without the token and nothing else, while the main
// one keeps /metrics behind it; both stop together.
func TestMetricsAddr(t *testing.T) {
	words := shellWords(t, substitute(t, strings.TrimSpace(opsBlock(t, "metrics-addr")),
		`"$RECLEDGER_API_TOKEN"`, e2eToken,
		"--addr 127.0.0.1:8080", "--addr 127.0.0.1:0",
		"--metrics-addr 10.0.0.5:9090", "--metrics-addr 127.0.0.1:0"))
	if len(words) < 2 || words[0] != "recledger" || words[1] != "serve" {
		t.Fatalf("the guide's block is not a recledger serve command: %q", words)
	}
	srv := startServer(t, t.TempDir(), words[2:]...)
	internal := "http://" + metricsAddrOf(t, srv)
	main := "http://" + srv.addr

	if code, _ := getStatus(t, "GET", main+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("main /metrics without the token: %d, want 401", code)
	}
	if code, body := getStatus(t, "GET", main+"/metrics", e2eToken); code != 200 || !strings.Contains(body, "recledger_build_info") {
		t.Errorf("main /metrics with the token: %d", code)
	}
	if code, body := getStatus(t, "GET", internal+"/metrics", ""); code != 200 || !strings.Contains(body, "recledger_build_info") {
		t.Errorf("--metrics-addr /metrics without the token: %d\n%.300s", code, body)
	}
	if code, body := getStatus(t, "GET", internal+"/readyz", ""); code != 200 || !strings.Contains(body, "ready") {
		t.Errorf("--metrics-addr /readyz: %d %s", code, body)
	}
	if code, _ := getStatus(t, "GET", internal+"/healthz", ""); code != 200 {
		t.Errorf("--metrics-addr /healthz: %d", code)
	}
	for _, path := range []string{"/v1/recordings", "/v1/quarantine", "/v1/events", "/", "/login", "/v1/callbacks/recording"} {
		for _, token := range []string{"", e2eToken} {
			if code, _ := getStatus(t, "GET", internal+path, token); code != http.StatusNotFound {
				t.Errorf("--metrics-addr %s (token %v): %d, want 404", path, token != "", code)
			}
		}
	}
	if code, _ := getStatus(t, "POST", internal+"/v1/callbacks/recording", ""); code != http.StatusNotFound {
		t.Errorf("--metrics-addr POST callback: %d, want 404", code)
	}
	srv.stop(t)
	if c, err := net.DialTimeout("tcp", strings.TrimPrefix(internal, "http://"), time.Second); err == nil {
		c.Close()
		t.Errorf("the metrics listener still accepts after shutdown")
	}
}

// TestMetricsAddrRefusals: the main address again, or not an address, is
// refused at start with a message saying so.
func TestMetricsAddrRefusals(t *testing.T) {
	for _, tt := range []struct{ addr, metrics, want string }{
		{"127.0.0.1:18080", "127.0.0.1:18080", "main listen address"},
		{"0.0.0.0:18080", "127.0.0.1:18080", "main listen address"},
		{"127.0.0.1:18080", "not-an-address", "want HOST:PORT"},
		{"127.0.0.1:18080", "127.0.0.1:http", "want a port number"},
	} {
		_, stderr, code := runBinary(t, "", "serve", "--addr", tt.addr, "--metrics-addr", tt.metrics, "--db", "sqlite:"+t.TempDir()+"/x.db")
		if code == 0 || !strings.Contains(stderr, tt.want) {
			t.Errorf("--addr %s --metrics-addr %s: exit %d, stderr %q; want a refusal saying %q", tt.addr, tt.metrics, code, stderr, tt.want)
		}
	}
}

// TestConfigMetricsAddr: the setting's three names, and a change to it
// needs a restart (a SIGHUP says so).
func TestConfigMetricsAddr(t *testing.T) {
	file := writeFile(t, "metrics_addr = \"10.0.0.5:9090\"\n")
	c, err := loadConfig(parseFlags(t, "--config", file).Flags(), env(nil))
	if err != nil || c.MetricsAddr != "10.0.0.5:9090" {
		t.Fatalf("from the file: %q %v", c.MetricsAddr, err)
	}
	c, err = loadConfig(parseFlags(t).Flags(), env(map[string]string{"RECLEDGER_CONFIG": file, "RECLEDGER_METRICS_ADDR": "127.0.0.1:9100"}))
	if err != nil || c.MetricsAddr != "127.0.0.1:9100" {
		t.Fatalf("the environment over the file: %q %v", c.MetricsAddr, err)
	}
	b := defaultConfig()
	b.MetricsAddr = "127.0.0.1:9100"
	if got := restartOnly(defaultConfig(), b); len(got) != 1 || got[0] != "metrics-addr" {
		t.Errorf("restartOnly = %v, want [metrics-addr]", got)
	}
}
