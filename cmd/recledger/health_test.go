package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

// TestHealthCommand: recledger health, the image's HEALTHCHECK, exits 0
// only when GET /healthz answers 200: it reads serve's address from
// RECLEDGER_ADDR (the image sets 0.0.0.0:8080) and asks a wildcard one on
// loopback; a server that answers otherwise, or none, is exit 1.
func TestHealthCommand(t *testing.T) {
	srv := startServer(t, t.TempDir())
	_, port, _ := net.SplitHostPort(srv.addr)
	for _, env := range [][]string{{"RECLEDGER_ADDR=" + srv.addr}, {"RECLEDGER_ADDR=0.0.0.0:" + port}, {"RECLEDGER_ADDR=:" + port}} {
		out, stderr, code := runBinaryEnv(t, env, "health")
		// Asked on loopback whatever the listen address: what the access
		// rule answers without a token, under a host name it accepts.
		if code != 0 || !strings.Contains(out, "GET http://127.0.0.1:"+port+"/healthz answered 200 OK") {
			t.Errorf("%s recledger health: exit %d, %q %q; want 0", env, code, out, stderr)
		}
	}
	// --addr wins over the environment, as serve's does.
	if _, stderr, code := runBinaryEnv(t, []string{"RECLEDGER_ADDR=127.0.0.1:1"}, "health", "--addr", srv.addr); code != 0 {
		t.Errorf("health --addr %s under a wrong RECLEDGER_ADDR: exit %d, %s", srv.addr, code, stderr)
	}

	sick := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer sick.Close()
	for _, args := range [][]string{
		{"health", "--addr", strings.TrimPrefix(sick.URL, "http://")},
		{"health", "--addr", freeAddr(t)},
		{"health", "--addr", "no-port"},
		{"health", "--addr", srv.addr, "--timeout", "0s"},
	} {
		if _, stderr, code := runBinaryEnv(t, []string{"RECLEDGER_ADDR="}, args...); code != 1 || !strings.Contains(stderr, "recledger:") {
			t.Errorf("recledger %s: exit %d, %q; want 1 with the reason", strings.Join(args, " "), code, stderr)
		}
	}
}

// freeAddr is an address on 127.0.0.1 nothing listens on right now.
func freeAddr(t *testing.T) string {
	return "127.0.0.1:" + strconv.Itoa(freePort(t))
}
