package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// blackholeProxy forwards TCP connections to target until it is
// blackholed: then it forwards nothing in either direction and keeps every
// socket open, as a network that drops packets silently; a connection
// accepted meanwhile is held open and never forwarded. The connections
// that lived through a blackhole stay dead after it ends (as behind a NAT
// that lost its state), so a client that reuses one waits in vain; new
// connections are forwarded again.
type blackholeProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	holed  bool
	epoch  int // blackholes started so far
	conns  []net.Conn
	closed bool
}

func newBlackholeProxy(t *testing.T, target string) *blackholeProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackholeProxy{ln: ln, target: target}
	t.Cleanup(p.close)
	go p.accept()
	return p
}

func (p *blackholeProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns = append(p.conns, c)
		epoch, holed := p.epoch, p.holed
		p.mu.Unlock()
		if holed {
			go io.Copy(io.Discard, c) // accepted, never answered
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.mu.Unlock()
		go p.pump(up, c, epoch)
		go p.pump(c, up, epoch)
	}
}

// pump copies src to dst while the connection is alive: no blackhole since
// it was made (epoch). Past that it reads and drops, so the sender's
// writes succeed and its reads wait, as over a silent network.
func (p *blackholeProxy) pump(dst, src net.Conn, epoch int) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			alive := !p.holed && p.epoch == epoch
			p.mu.Unlock()
			if alive {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			p.mu.Lock()
			alive := !p.holed && p.epoch == epoch
			p.mu.Unlock()
			if alive {
				dst.Close()
			}
			return
		}
	}
}

func (p *blackholeProxy) setBlackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on && !p.holed {
		p.epoch++
	}
	p.holed = on
}

func (p *blackholeProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
}

// TestPostgresBlackholeAnswers503InTime puts PostgreSQL behind a proxy that
// starts dropping everything, as an unreachable database that does not
// refuse: every callback must still be answered, 503, within
// --db-write-timeout (plus slack for a loaded machine), and /readyz fail;
// once the network is back, callbacks are answered 200 again and /readyz
// recovers, with no connection that died in the blackhole reused for good.
func TestPostgresBlackholeAnswers503InTime(t *testing.T) {
	db := postgresURL(t)
	u, err := url.Parse(db)
	if err != nil {
		t.Fatal(err)
	}
	proxy := newBlackholeProxy(t, u.Host)
	viaProxy := strings.Replace(db, u.Host, proxy.ln.Addr().String(), 1)
	const writeTimeout = 2 * time.Second
	// A correctness bound, not a speed claim: without a deadline a callback
	// waited 90 s. The slack covers a loaded 2-core machine.
	const bound = writeTimeout + 3*time.Second
	// Unsigned callbacks (accepted with --insecure-skip-signature) skip the
	// replay memory and go straight to the group commit: they test its
	// deadline, signed ones the replay memory's.
	srv := startServer(t, t.TempDir(), "--db", viaProxy, "--app", testApp+"="+testSecret, "--db-write-timeout", writeTimeout.String(),
		"--insecure-skip-signature")

	var (
		mu    sync.Mutex
		acked []string
	)
	post := func(id string) (int, time.Duration) {
		body := fmt.Appendf(nil, `{"timestamp":%d,"type":1,"appKey":%q,"recordId":%q,"roomId":"r","sessionId":"s","userId":"u","mode":0,"code":200}`,
			time.Now().UnixMilli(), testApp, id)
		start := time.Now()
		var (
			status int
			err    error
		)
		if strings.HasSuffix(id, "-unsigned") {
			var resp *http.Response
			if resp, err = testClient.Post("http://"+srv.addr+"/v1/callbacks/recording", "application/json", bytes.NewReader(body)); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status = resp.StatusCode
			}
		} else {
			status, err = postSigned(srv.addr, body)
		}
		took := time.Since(start)
		if err != nil {
			return 0, took // the client gave up (10 s): no answer
		}
		if status == 200 {
			mu.Lock()
			acked = append(acked, id)
			mu.Unlock()
		}
		return status, took
	}
	kinds := []string{"signed", "unsigned"}
	// Concurrent callbacks and queries first: both pools hold several
	// connections, idle when the blackhole starts and dead after it.
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			if status, _ := post(fmt.Sprintf("before-%d-%s", i, kinds[i%2])); status != 200 {
				t.Errorf("callback before the blackhole: %d", status)
			}
			if resp, err := testClient.Get("http://" + srv.addr + "/v1/recordings"); err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.Fatal(srv.logs)
	}

	proxy.setBlackhole(true)
	// Two rounds of concurrent callbacks: the first finds the pools'
	// connections dead, the second finds them gone or dialing.
	for round := range 2 {
		for i := range 6 {
			wg.Go(func() {
				status, took := post(fmt.Sprintf("during-%d-%d-%s", round, i, kinds[i%2]))
				if status != 503 || took > bound {
					t.Errorf("%s callback during the blackhole answered %d after %s; want 503 within %s", kinds[i%2], status, took.Round(time.Millisecond), bound)
				}
			})
		}
		wg.Wait()
	}
	start := time.Now()
	code, cause := readyz(t, srv.addr)
	if took := time.Since(start); code != 503 || took > bound {
		t.Errorf("/readyz during the blackhole: %d %q after %s; want 503 within %s", code, cause, took.Round(time.Millisecond), bound)
	}
	t.Logf("/readyz during the blackhole: %d %s", code, cause)

	proxy.setBlackhole(false)
	// Dials that started in the blackhole give up after twice the timeout
	// (holding pool slots until then); after that no connection that died
	// in it may be used: every callback is answered 200.
	time.Sleep(2*writeTimeout + time.Second)
	for i := range 10 {
		if status, took := post(fmt.Sprintf("after-%d-%s", i, kinds[i%2])); status != 200 {
			t.Fatalf("%s callback %d after the network came back answered %d after %s\n%s", kinds[i%2], i, status, took, srv.logs)
		}
	}
	if code, cause := readyz(t, srv.addr); code != 200 {
		t.Errorf("/readyz after recovery: %d %q", code, cause)
	}
	for _, id := range acked {
		resp, err := testClient.Get("http://" + srv.addr + "/v1/recordings/" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("recording %s was answered 200 but GET answers %d", id, resp.StatusCode)
		}
	}
	srv.stop(t)
}
