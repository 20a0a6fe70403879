package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeCapsStreams: --max-streams reaches the API, and the open
// streams show in /metrics.
func TestServeCapsStreams(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--max-streams", "1")
	defer srv.stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	open := func() *http.Response {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.addr+"/v1/events/stream", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	first := open()
	if first.StatusCode != 200 {
		t.Fatalf("first stream: %d", first.StatusCode)
	}
	if _, err := bufio.NewReader(first.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if second := open(); second.StatusCode != 503 || second.Header.Get("Retry-After") == "" {
		t.Errorf("a second stream with --max-streams 1: %d, Retry-After %q", second.StatusCode, second.Header.Get("Retry-After"))
	}
	resp, err := testClient.Get("http://" + srv.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"recledger_event_streams 1\n", "recledger_event_streams_refused_total 1\n", "recledger_event_streams_dropped_total 0\n"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
