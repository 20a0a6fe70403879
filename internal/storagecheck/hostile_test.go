package storagecheck

import (
	"bufio"
	"context"
	"net"
	"strings"
	"sync"
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
