package api_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/api"
)

// TestStreamBoundsSocketBuffer: a stream's connection gets the configured
// send buffer instead of the kernel's, which grows to megabytes for a
// reader that does not read.
func TestStreamBoundsSocketBuffer(t *testing.T) {
	var (
		mu   sync.Mutex
		conn *net.TCPConn
	)
	mux := http.NewServeMux()
	api.New(fill(t), api.Options{StreamSocketBuffer: 32 << 10}).Register(mux)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		mu.Lock()
		conn = c.(*net.TCPConn)
		mu.Unlock()
		return api.ConnContext(ctx, c)
	}
	srv.Start()
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp := openStream(t, ctx, srv.URL+"/v1/events/stream")
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	raw, err := conn.SyscallConn()
	mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	var size int
	var serr error
	raw.Control(func(fd uintptr) { size, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) })
	if serr != nil {
		t.Fatal(serr)
	}
	if size != 2*32<<10 { // Linux doubles what it is asked for
		t.Errorf("SO_SNDBUF = %d, want %d", size, 2*32<<10)
	}
}
