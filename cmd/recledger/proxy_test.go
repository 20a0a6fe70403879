package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recledger/recledger/rc"
)

// The guide's proxy blocks name this host; the tests keep it, with a
// certificate of their own for it, and dial 127.0.0.1 whatever the name.
const proxyHost = "recledger.example.com"

// proxyClientAddr is the address the tests' client connects to the proxy
// from: not the proxy's own (127.0.0.1), so that the client a trusted
// proxy names can be told from the proxy.
const proxyClientAddr = "127.0.0.3"

// proxyCert writes a self-signed certificate for proxyHost, localhost and
// 127.0.0.1 into dir and returns its files and a pool that trusts it.
func proxyCert(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: proxyHost},
		DNSNames:     []string{proxyHost, "localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// freePort returns a port nothing listened on a moment ago; a proxy that
// needs a concrete port takes it, and the caller retries on a collision.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// substitute replaces each old with its new in block, requiring each old
// to be there exactly once: a change in the guide that leaves a test's
// substitution behind fails the test instead of testing something else.
func substitute(t *testing.T, block string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if n := strings.Count(block, pairs[i]); n != 1 {
			t.Fatalf("the guide's block holds %q %d times, want once:\n%s", pairs[i], n, block)
		}
		block = strings.Replace(block, pairs[i], pairs[i+1], 1)
	}
	return block
}

// proxyClient talks HTTPS to the proxy on port under proxyHost, trusting
// pool, from proxyClientAddr; it does not follow redirects.
func proxyClient(pool *x509.CertPool, port int, timeout time.Duration) *http.Client {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(proxyClientAddr)}, Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: proxyHost},
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, network, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			},
			ForceAttemptHTTP2: false,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// startNginx runs Debian's nginx in the foreground with the guide's server
// block (conf, already substituted but for the listen port: "%d") inside a
// minimal main configuration of the test's own (pid, logs and temporary
// files in dir), and returns the port it listens on.
func startNginx(t *testing.T, dir, conf string) int {
	t.Helper()
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		nginx = "/usr/sbin/nginx"
		if _, err := os.Stat(nginx); err != nil {
			t.Skip("nginx is not installed (apt-get install nginx; .ci/run installs it)")
		}
	}
	for attempt := 0; ; attempt++ {
		port := freePort(t)
		site := filepath.Join(dir, "recledger.conf")
		if err := os.WriteFile(site, fmt.Appendf(nil, conf, port), 0o644); err != nil {
			t.Fatal(err)
		}
		// The main configuration Debian's /etc/nginx/nginx.conf would be,
		// cut to what a foreground run as any user needs; the guide's
		// block is included as sites-enabled would include it.
		main := fmt.Sprintf(`worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 64; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[2]s;
}
`, dir, site)
		mainFile := filepath.Join(dir, "nginx.conf")
		if err := os.WriteFile(mainFile, []byte(main), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(nginx, "-t", "-q", "-c", mainFile, "-p", dir, "-e", filepath.Join(dir, "error.log")).CombinedOutput(); err != nil {
			t.Fatalf("nginx -t refuses the guide's block: %v\n%s\n%s", err, out, conf)
		}
		cmd := exec.Command(nginx, "-c", mainFile, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off; user root;")
		if os.Geteuid() != 0 {
			cmd = exec.Command(nginx, "-c", mainFile, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		// Its own process group, killed whole: nginx's workers outlive a
		// master killed alone, and would go on listening after the test.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		kill := func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if waitListening(port, done) {
			t.Cleanup(func() {
				cmd.Process.Signal(os.Interrupt)
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					kill()
					<-done
				}
			})
			return port
		}
		kill()
		<-done
		errLog, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		if attempt < 4 && bytes.Contains(append(out.Bytes(), errLog...), []byte("in use")) {
			continue // another process took the port in between
		}
		t.Fatalf("nginx did not listen on %d:\n%s\n%s", port, out.Bytes(), errLog)
	}
}

// waitListening waits, bounded, until 127.0.0.1:port accepts, or the
// process behind done (buffered) ends; its result is put back for the
// caller.
func waitListening(port int, done chan error) bool {
	for range 100 {
		select {
		case err := <-done:
			done <- err
			return false
		default:
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
		if err == nil {
			c.Close()
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

// quarantineRemotes returns the remote of each quarantined request, newest
// first, read through base with token.
func quarantineRemotes(t *testing.T, client *http.Client, base, token string) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v1/quarantine", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list struct {
		Items []struct {
			Remote string `json:"remote"`
		} `json:"items"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /v1/quarantine: %d %v", resp.StatusCode, err)
	}
	var out []string
	for _, it := range list.Items {
		out = append(out, it.Remote)
	}
	return out
}

// signedCallback is a POST of a seed example to base's callback endpoint,
// signed for testApp (or with a wrong signature when bad).
func signedCallback(t *testing.T, base, seed string, bad bool) *http.Request {
	t.Helper()
	body, err := os.ReadFile(filepath.Join("..", "..", "rc", "testdata", "seed", seed))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", base+"/v1/callbacks/recording", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	s := rc.Signer{AppKey: testApp, Secret: testSecret}
	if bad {
		s.Secret = "not-the-secret"
	}
	s.Apply(req, s.Sign())
	return req
}

// logsHave reports whether one of srv's JSON log lines has msg and remote.
// The server's log reaches the test through a pipe that another goroutine
// reads, so a line written before an answer may arrive after it: logsHave
// waits for it, up to 10 s.
func logsHave(srv *server, msg, remote string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		for line := range strings.Lines(srv.logs.String()) {
			var e struct{ Msg, Remote string }
			if json.Unmarshal([]byte(line), &e) == nil && e.Msg == msg && e.Remote == remote {
				return true
			}
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNginxInFront runs Debian's nginx with the guide's block, TLS
// terminated with a certificate of the test's, in front of recledger with
// --trusted-proxies 127.0.0.1/32, and goes through it: the event stream
// gets a callback's event while it is open (nginx does not hold it back),
// signed callbacks are stored, a refused one is quarantined under the
// client's address (a forged X-Forwarded-For is not believed), and the
// dashboard's login works over https, its cross-origin check intact.
func TestNginxInFront(t *testing.T) {
	block := opsBlock(t, "nginx-recledger")
	dir := t.TempDir()
	srv := startServer(t, dir, "--app", testApp+"="+testSecret, "--api-token", e2eToken, "--trusted-proxies", "127.0.0.1/32")
	nginxDir := filepath.Join(dir, "nginx")
	if err := os.MkdirAll(nginxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, pool := proxyCert(t, nginxDir)
	// The only substitutions: where nginx listens (a free port on
	// loopback), where recledger listens, and the certificate's files.
	conf := substitute(t, strings.ReplaceAll(block, "%", "%%"),
		"listen 443 ssl;", "listen 127.0.0.1:%d ssl;",
		"server 127.0.0.1:8080;", "server "+srv.addr+";",
		"/etc/ssl/recledger/fullchain.pem", certFile,
		"/etc/ssl/recledger/privkey.pem", keyFile)
	port := startNginx(t, nginxDir, conf)
	base := "https://" + proxyHost + ":" + strconv.Itoa(port)
	client := proxyClient(pool, port, 15*time.Second)

	t.Run("event stream", func(t *testing.T) {
		streamSeesCallback(t, "nginx", base, proxyClient(pool, port, 0), client, srv)
	})

	t.Run("callbacks and the client's address", func(t *testing.T) {
		for _, seed := range []string{"type2-segment.json", "type3-end.json", "type4-upload.json"} {
			resp, err := client.Do(signedCallback(t, base, seed, false))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s through nginx: %d", seed, resp.StatusCode)
			}
		}
		// A refused callback, with an X-Forwarded-For the client forged:
		// nginx appends the client's address, and only that is believed.
		req := signedCallback(t, base, "type4-upload.json", true)
		req.Header.Set("X-Forwarded-For", "198.51.100.66")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("wrongly signed callback through nginx: %d", resp.StatusCode)
		}
		remotes := quarantineRemotes(t, client, base, e2eToken)
		if len(remotes) == 0 || remotes[0] != proxyClientAddr {
			t.Errorf("quarantine remotes %q, want the newest to be the client %s (not nginx's address, nor the forged one)", remotes, proxyClientAddr)
		}
		if !logsHave(srv, "callback refused", proxyClientAddr) {
			t.Errorf("no \"callback refused\" log line with remote=%s:\n%s", proxyClientAddr, srv.logs)
		}
	})

	t.Run("dashboard login", func(t *testing.T) {
		origin := base // what a browser on the dashboard sends
		form := url.Values{"token": {e2eToken}, "next": {"/"}}
		post := func(origin string, form url.Values) *http.Response {
			req, _ := http.NewRequest("POST", base+"/login", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", origin)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp
		}
		if resp := post("https://evil.example", form); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a cross-origin login post through nginx: %d, want 403", resp.StatusCode)
		}
		if resp := post(origin, url.Values{"token": {"wrong-token"}}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("a wrong token through nginx: %d, want 401", resp.StatusCode)
		}
		if !logsHave(srv, "dashboard login refused: wrong token", proxyClientAddr) {
			t.Errorf("the wrong login's log line does not name the client %s:\n%s", proxyClientAddr, srv.logs)
		}
		resp := post(origin, form)
		if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
			t.Fatalf("login through nginx: %d, cookies %v\n%s", resp.StatusCode, resp.Cookies(), srv.logs)
		}
		cookie := resp.Cookies()[0]
		if !cookie.Secure || !cookie.HttpOnly {
			t.Errorf("session cookie over https: %+v, want Secure and HttpOnly", cookie)
		}
		req, _ := http.NewRequest("GET", base+"/", nil)
		req.AddCookie(cookie)
		home, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(home.Body)
		home.Body.Close()
		if home.StatusCode != 200 || !bytes.Contains(page, []byte("<html")) {
			t.Errorf("dashboard with the session cookie through nginx: %d\n%.300s", home.StatusCode, page)
		}
	})
}

// TestCaddyInFront runs Debian's caddy with the guide's Caddyfile block
// (the name given a port and the test's certificate instead of ACME, in a
// global options block of the test's) and sends a signed callback, a
// refused one and an event stream through it.
func TestCaddyInFront(t *testing.T) {
	block := opsBlock(t, "caddy-recledger")
	for _, want := range []string{"reverse_proxy 127.0.0.1:8080", "flush_interval -1", proxyHost + " {"} {
		if !strings.Contains(block, want) {
			t.Fatalf("the guide's Caddyfile lacks %q:\n%s", want, block)
		}
	}
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("caddy is not installed (apt-get install caddy; .ci/run installs it)")
	}
	dir := t.TempDir()
	srv := startServer(t, dir, "--app", testApp+"="+testSecret, "--api-token", e2eToken, "--trusted-proxies", "127.0.0.1/32")
	certFile, keyFile, pool := proxyCert(t, dir)
	var port int
	var logs bytes.Buffer
	for attempt := 0; ; attempt++ {
		port = freePort(t)
		conf := substitute(t, block,
			proxyHost+" {", fmt.Sprintf("%s:%d {\n\ttls %s %s", proxyHost, port, certFile, keyFile),
			"reverse_proxy 127.0.0.1:8080", "reverse_proxy "+srv.addr)
		// Global options of the test's own: no admin endpoint, no port 80
		// redirect server, state in the temporary directory.
		conf = "{\n\tadmin off\n\tauto_https disable_redirects\n\tstorage file_system " + filepath.Join(dir, "caddy-data") + "\n}\n\n" + conf
		file := filepath.Join(dir, "Caddyfile")
		if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		env := append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "xdg-data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "xdg-config"))
		validate := exec.Command(caddy, "validate", "--config", file, "--adapter", "caddyfile")
		validate.Env = env
		if out, err := validate.CombinedOutput(); err != nil {
			t.Fatalf("caddy validate refuses the guide's block: %v\n%s\n%s", err, out, conf)
		}
		cmd := exec.Command(caddy, "run", "--config", file, "--adapter", "caddyfile")
		cmd.Env = env
		logs.Reset()
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if waitListening(port, done) {
			t.Cleanup(func() {
				// Killed: its graceful stop waits on the proxied event
				// stream's upstream for seconds, and it keeps no state.
				cmd.Process.Kill()
				<-done
			})
			break
		}
		cmd.Process.Kill()
		<-done
		if attempt < 4 && strings.Contains(logs.String(), "in use") {
			continue
		}
		t.Fatalf("caddy did not listen on %d:\n%s", port, logs.String())
	}
	base := "https://" + proxyHost + ":" + strconv.Itoa(port)
	client := proxyClient(pool, port, 15*time.Second)

	streamSeesCallback(t, "caddy", base, proxyClient(pool, port, 0), client, srv)
	bad := signedCallback(t, base, "type2-segment.json", true)
	bad.Header.Set("X-Forwarded-For", "198.51.100.66")
	resp, err := client.Do(bad)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("wrongly signed callback through caddy: %d", resp.StatusCode)
	}
	if remotes := quarantineRemotes(t, client, base, e2eToken); len(remotes) == 0 || remotes[0] != proxyClientAddr {
		t.Errorf("quarantine remotes %q, want the newest to be the client %s", remotes, proxyClientAddr)
	}
}

// TestTrustedProxiesNameTheClient: without --trusted-proxies a request's
// X-Forwarded-For changes nothing (the quarantine and the log keep the
// peer's address and port); with the peer listed, they name the client it
// forwarded for. An unreadable X-Forwarded-For (garbage, thousands of
// hops) is not believed and never ends the server.
func TestTrustedProxiesNameTheClient(t *testing.T) {
	refuse := func(t *testing.T, srv *server, xff string) {
		t.Helper()
		req := signedCallback(t, "http://"+srv.addr, "type1-start.json", true)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("wrongly signed callback: %d", resp.StatusCode)
		}
	}
	t.Run("without", func(t *testing.T) {
		srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret, "--api-token", e2eToken)
		refuse(t, srv, "198.51.100.7")
		remotes := quarantineRemotes(t, testClient, "http://"+srv.addr, e2eToken)
		if len(remotes) != 1 {
			t.Fatalf("quarantine remotes %q", remotes)
		}
		if ap, err := netip.ParseAddrPort(remotes[0]); err != nil || ap.Addr().String() != "127.0.0.1" {
			t.Errorf("quarantine remote %q, want the peer's 127.0.0.1:PORT as before", remotes[0])
		}
		if !logsHave(srv, "callback refused", remotes[0]) {
			t.Errorf("the refusal's log line does not name the peer %s:\n%s", remotes[0], srv.logs)
		}
	})
	t.Run("with", func(t *testing.T) {
		srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret, "--api-token", e2eToken, "--trusted-proxies", "127.0.0.1/32")
		refuse(t, srv, "203.0.113.9, 198.51.100.7")
		refuse(t, srv, "not-an-address")
		refuse(t, srv, "198.51.100.8"+strings.Repeat(", 127.0.0.1", 5000)) // past 32 trusted hops: not read on
		refuse(t, srv, "198.51.100.9\t")
		remotes := quarantineRemotes(t, testClient, "http://"+srv.addr, e2eToken)
		if len(remotes) != 4 {
			t.Fatalf("quarantine remotes %q", remotes)
		}
		if remotes[3] != "198.51.100.7" || remotes[0] != "198.51.100.9" {
			t.Errorf("quarantine remotes %q: want the rightmost hop (198.51.100.7, 198.51.100.9) where it is readable", remotes)
		}
		for _, r := range remotes[1:3] {
			if ap, err := netip.ParseAddrPort(r); err != nil || ap.Addr().String() != "127.0.0.1" {
				t.Errorf("quarantine remote %q for an unreadable X-Forwarded-For, want the peer's 127.0.0.1:PORT", r)
			}
		}
		if !logsHave(srv, "callback refused", "198.51.100.7") {
			t.Errorf("no refusal log line names the client 198.51.100.7:\n%s", srv.logs)
		}
		// A NUL byte in the header: net/http refuses the request (400)
		// before recledger reads it; the server carries on.
		c, err := net.DialTimeout("tcp", srv.addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "POST /v1/callbacks/recording HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\x00evil\r\nContent-Length: 0\r\n\r\n")
		status, _ := bufio.NewReader(c).ReadString('\n')
		if !strings.Contains(status, " 400 ") {
			t.Errorf("NUL in X-Forwarded-For: %q, want 400", status)
		}
		refuse(t, srv, "198.51.100.10")
		for line := range strings.Lines(srv.logs.String()) {
			if len(line) > 4096 {
				t.Errorf("a log line of %d bytes:\n%.300s", len(line), line)
			}
		}
	})
}

// streamSeesCallback opens the event stream through the proxy at base,
// posts a signed callback through it, and requires the callback's event
// while the stream stays open: a buffering proxy holds it until its buffer
// fills or the stream ends (a deadline bounds the wait). streams is a
// client without a timeout, for the stream; client posts.
func streamSeesCallback(t *testing.T, proxy, base string, streams, client *http.Client, srv *server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events/stream", nil)
	req.Header.Set("Authorization", "Bearer "+e2eToken)
	resp, err := streams.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream through %s: %d %s", proxy, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewReader(resp.Body)
	if opening, err := lines.ReadString('\n'); err != nil || !strings.HasPrefix(opening, ": recledger event stream") {
		t.Fatalf("stream's opening line through %s: %q %v", proxy, opening, err)
	}
	post, err := client.Do(signedCallback(t, base, "type1-start.json", false))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, post.Body)
	post.Body.Close()
	if post.StatusCode != 200 {
		t.Fatalf("signed callback through %s: %d\n%s", proxy, post.StatusCode, srv.logs)
	}
	for {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("through %s, the stream ended or timed out before the callback's event came: %v", proxy, err)
		}
		if strings.HasPrefix(line, "data:") && strings.Contains(line, "8329208b99410743dcfeb80548e2c0ec") {
			return
		}
	}
}
