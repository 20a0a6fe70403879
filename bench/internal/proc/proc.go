// Package proc runs the processes the benchmark harnesses measure: it
// builds recledger, starts a server and finds the address it listens on,
// serves the bare baseline, and stops a harness on an error.
package proc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Build builds cmd/recledger into dir (run from the repository root) and
// returns the binary's path.
func Build(dir string) string {
	bin := filepath.Join(dir, "recledger")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/recledger").CombinedOutput(); err != nil {
		Fatal(fmt.Errorf("build recledger (run from the repository root): %v\n%s", err, out))
	}
	return bin
}

// Start runs a server process and returns the address it listens on and
// what stops it: recledger logs "listening" with its address (JSON logs),
// a bare server prints "listening ADDR". Its other lines go to stderr.
func Start(cmd *exec.Cmd) (string, func()) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		Fatal(err)
	}
	addr := make(chan string, 2)
	scan := func(r io.Reader) {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			line := sc.Text()
			var entry struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "listening" {
				addr <- entry.Addr
			} else if a, ok := strings.CutPrefix(line, "listening "); ok {
				addr <- a
			} else {
				fmt.Fprintln(os.Stderr, "server:", line)
			}
		}
	}
	go scan(stderr)
	go scan(stdout)
	select {
	case a := <-addr:
		return a, func() {
			cmd.Process.Signal(os.Interrupt)
			cmd.Wait()
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		Fatal(fmt.Errorf("%s did not start", cmd.Path))
	}
	return "", nil
}

// BareServer is the baseline the harnesses compare recledger with: it
// prints "listening ADDR", reads each request's body and answers 200, until
// SIGINT or SIGTERM.
func BareServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		Fatal(err)
	}
	fmt.Println("listening", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	})}
	go srv.Serve(ln)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	srv.Shutdown(context.Background())
}

// Fatal prints err and exits 1.
func Fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}
