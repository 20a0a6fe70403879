package storagecheck

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// rawStorage answers every request on loopback with answer, byte for byte
// (what httptest's server would refuse to write: malformed headers).
func rawStorage(t *testing.T, answer string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					l, err := br.ReadString('\n')
					if err != nil || l == "\r\n" {
						break
					}
				}
				_, _ = c.Write([]byte(answer))
			}()
		}
	}()
	return ln.Addr().String()
}

// TestCheckHostileAnswers: a storage answering garbage is unreachable
// (transient), and what Go's transport quotes of it (a Location that does
// not parse carries the presigned query on, a malformed header line) is
// never in the error; headers are read up to a bound, not 10 MB.
func TestCheckHostileAnswers(t *testing.T) {
	for _, tc := range []struct{ name, answer string }{
		{"unparsable Location", "HTTP/1.1 302 Found\r\nLocation: http://[bad/x?" + secret + "\r\nContent-Length: 0\r\n\r\n"},
		{"malformed header line", "HTTP/1.1 302 Found\r\nLocation: /x?" + secret + "\x01\r\nContent-Length: 0\r\n\r\n"},
		{"NUL in a header", "HTTP/1.1 200 OK\r\nETag: a\x00" + secret + "\r\nContent-Length: 10\r\n\r\n"},
		{"megabytes of ETag", "HTTP/1.1 200 OK\r\nETag: \"" + strings.Repeat("e", 5<<20) + "\"\r\nContent-Length: 10\r\n\r\n"},
		{"huge Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\n"},
		{"two Content-Lengths", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: 11\r\n\r\n"},
		{"not HTTP", "SSH-2.0-" + secret + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := rawStorage(t, tc.answer)
			c, _ := newChecker(t, addr, nil)
			r := c.Check(context.Background(), "http://"+addr+"/f?"+secret, size(10))
			if r.State != Unreachable || !r.Transient {
				t.Errorf("got %s transient=%v %v", r.State, r.Transient, r.Err)
			}
			assertNoSecret(t, r)
		})
	}
}

// TestCheckPartialReadsOneByte: a storage that answers the ranged GET
// with 206 and then streams the whole object has one byte of it read.
func TestCheckPartialReadsOneByte(t *testing.T) {
	const total = 64 << 20
	srv, written, done := streamingServer(total, func(w http.ResponseWriter) {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-0/%d", total))
		w.WriteHeader(http.StatusPartialContent)
	})
	defer srv.Close()
	c, _ := newChecker(t, srv.Listener.Addr().String(), nil)
	r := c.Check(context.Background(), srv.URL+"/big.mp4?"+secret, size(total))
	if r.State != Verified || r.HTTPStatus != http.StatusPartialContent || r.Size == nil || *r.Size != total {
		t.Fatalf("got %s %d %v %v", r.State, r.HTTPStatus, r.Size, r.Err)
	}
	<-done
	if n := written.Load(); n >= total/2 { // socket buffers take some
		t.Errorf("the server sent %d of %d bytes", n, total)
	}
}

// TestCheckRedirectToAnotherListedHost: a redirect to another host name
// is refused even when that host is on the list too (no redirects to
// other hosts), and that host is asked nothing.
func TestCheckRedirectToAnotherListedHost(t *testing.T) {
	var other atomic.Int32
	otherSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		other.Add(1)
		w.Header().Set("Content-Length", "10")
	}))
	defer otherSrv.Close()
	_, otherPort, _ := net.SplitHostPort(otherSrv.Listener.Addr().String())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://localhost:"+otherPort+"/file?"+secret, http.StatusFound)
	}))
	defer srv.Close()
	c, _ := newChecker(t, srv.Listener.Addr().String()+",localhost:"+otherPort, func(o *Options) { o.AllowPrivate = true })
	if r := c.Check(context.Background(), "http://localhost:"+otherPort+"/file", size(10)); r.State != Verified {
		t.Fatalf("the other host, asked directly: %s %v", r.State, r.Err)
	}
	other.Store(0)
	r := c.Check(context.Background(), srv.URL+"/moved?"+secret, size(10))
	if r.State != Unreachable || r.Transient || !errors.Is(r.Err, ErrRedirect) {
		t.Errorf("got %s transient=%v %v", r.State, r.Transient, r.Err)
	}
	assertNoSecret(t, r)
	if other.Load() != 0 {
		t.Errorf("the other host got %d requests", other.Load())
	}
}
