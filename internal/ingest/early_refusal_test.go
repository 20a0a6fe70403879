package ingest_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
)

// rawRequest writes head (request line and headers, without the blank line
// that ends them) and then body to a new connection to the server at url,
// and reads one answer within a deadline: a server that waits for a body
// the client never sends gets no answer in time and the read fails.
func rawRequest(t *testing.T, url, head, body string) (*http.Response, error) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head+"\r\n\r\n"+body); err != nil {
		t.Fatal(err)
	}
	// A correctness bound, not a speed claim: the answer must come without
	// the body, which never comes; 10 s covers a loaded machine.
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp, nil
}

// TestIngestRefusesOnHeadersWithoutReadingTheBody sends only the headers of
// requests whose Content-Length is over the limit or whose Content-Type is
// not JSON: the answer must come at once, without the body, and the request
// must still be quarantined, bodiless, with the size it declared.
func TestIngestRefusesOnHeadersWithoutReadingTheBody(t *testing.T) {
	runOnStores(t, func(t *testing.T, store ledger.Store) {
		url := newServer(t, store, store, false) // MaxBodyBytes 4096
		const req = "POST /v1/callbacks/recording HTTP/1.1\r\nHost: 127.0.0.1\r\n"
		tests := []struct {
			name   string
			head   string
			status int
			code   string
			size   int64
		}{
			{"declared too large", req + "Content-Type: application/json\r\nContent-Length: 100000000", 413, "body_too_large", 100000000},
			{"declared too large, expect 100-continue", req + "Content-Type: application/json\r\nContent-Length: 100000000\r\nExpect: 100-continue", 413, "body_too_large", 100000000},
			{"not JSON", req + "Content-Type: text/plain\r\nContent-Length: 500", 415, "unsupported_media_type", 500},
			{"not JSON, expect 100-continue", req + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 500\r\nExpect: 100-continue", 415, "unsupported_media_type", 500},
			{"not JSON, chunked", req + "Content-Type: text/plain\r\nTransfer-Encoding: chunked", 415, "unsupported_media_type", 0},
			{"not JSON, huge content type", req + "Content-Type: text/plain; x=" + strings.Repeat("\xff\t\"", 20000) + "\r\nContent-Length: 9", 415, "unsupported_media_type", 9},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, err := rawRequest(t, url, tt.head, "")
				if err != nil {
					t.Fatalf("no answer without the body: %v", err)
				}
				if resp.StatusCode != tt.status {
					t.Fatalf("got %d, want %d", resp.StatusCode, tt.status)
				}
				if !resp.Close {
					t.Error("the connection stays open with an unread body on it")
				}
				q, err := store.QuarantineList(context.Background(), 0, 1)
				if err != nil || len(q) != 1 {
					t.Fatalf("quarantine: %v, %v", q, err)
				}
				if r := q[0]; r.Status != tt.status || r.Reason != tt.code || len(r.Body) != 0 || r.BodySize != tt.size {
					t.Errorf("quarantined status %d reason %s body %q size %d; want %d %s, no body, size %d",
						r.Status, r.Reason, r.Body, r.BodySize, tt.status, tt.code, tt.size)
				}
			})
		}
	})
}

// TestIngestRefusesChunkedBodyOverTheLimit: a body without a declared length
// is read up to the limit, then refused with 413; the quarantine keeps what
// was read.
func TestIngestRefusesChunkedBodyOverTheLimit(t *testing.T) {
	runOnStores(t, func(t *testing.T, store ledger.Store) {
		url := newServer(t, store, store, false) // MaxBodyBytes 4096
		chunk := strings.Repeat("x", 3000)
		// Two chunks, 6000 bytes, and no end: the server must stop at 4097.
		body := fmt.Sprintf("%x\r\n%s\r\n%x\r\n%s\r\n", len(chunk), chunk, len(chunk), chunk)
		resp, err := rawRequest(t, url, "POST /v1/callbacks/recording HTTP/1.1\r\nHost: 127.0.0.1\r\n"+
			"Content-Type: application/json\r\nTransfer-Encoding: chunked", body)
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		if resp.StatusCode != 413 {
			t.Fatalf("got %d, want 413", resp.StatusCode)
		}
		q, err := store.QuarantineList(context.Background(), 0, 1)
		if err != nil || len(q) != 1 {
			t.Fatalf("quarantine: %v, %v", q, err)
		}
		if r := q[0]; r.Status != 413 || r.BodySize != 4097 || len(r.Body) == 0 || strings.Trim(string(r.Body), "x") != "" {
			t.Errorf("quarantined status %d, %d bytes of body, size %d; want 413 and the 4097 bytes read", r.Status, len(r.Body), r.BodySize)
		}
	})
}
