// Command streams measures what event streams (GET /v1/events/stream) cost
// the rest of recledger. In one run it fills a fresh SQLite log with -events
// callbacks, measures a bare net/http handler, and then, for each build
// given (by default ./cmd/recledger built from here), starts `recledger
// serve` on that log in its own process and measures:
//
//   - memory: the server's RSS (from /proc/PID/status), its Go heap (from
//     its /metrics) and the kernel's TCP buffers (/proc/net/sockstat, both
//     ends of every socket on the machine) before, while and after
//     -streams raw TCP connections ask for the stream from seq 0 and never
//     read a byte;
//
//   - callbacks: throughput and latency of signed callbacks from -clients
//     workers with no stream open, then while -streams clients replay the
//     log from seq 0 (reading as fast as they can); as shares of the bare
//     handler and of the same build without streams.
//
// Run it from the repository root:
//
//	go run ./bench/streams -events 100000 -streams 500
//	go run ./bench/streams -bins 'before=/tmp/old:,after=/tmp/new:--max-streams 1000'
//
// It prints Markdown for BENCHMARKS.md. Linux only (it reads /proc).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recledger/recledger/bench/internal/proc"
)

const (
	app    = "bench_app"
	secret = "bench-secret-0123456789"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bare-server" {
		proc.BareServer()
		return
	}
	events := flag.Int("events", 100_000, "callbacks in the log before the streams open")
	streams := flag.Int("streams", 500, "streams to open")
	clients := flag.Int("clients", 64, "callback senders during the load measurement")
	duration := flag.Duration("duration", 10*time.Second, "measured time per configuration")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured time before each measurement")
	settle := flag.Duration("settle", 20*time.Second, "how long the non-reading streams stay open")
	serveArgs := flag.String("serve-args", "", "extra arguments for recledger serve, space-separated")
	bins := flag.String("bins", "", "compare builds on the same log: NAME=BINARY[:ARGS],... (default: build ./cmd/recledger, with -serve-args)")
	skipRSS := flag.Bool("skip-rss", false, "skip the memory measurement")
	skipLoad := flag.Bool("skip-load", false, "skip the callback measurement")
	flag.Parse()

	tmp, err := os.MkdirTemp("", "recledger-bench-streams")
	if err != nil {
		proc.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	type build struct{ name, bin, args string }
	var builds []build
	if *bins == "" {
		builds = append(builds, build{"recledger", proc.Build(tmp), *serveArgs})
	} else {
		for b := range strings.SplitSeq(*bins, ",") {
			name, rest, ok := strings.Cut(b, "=")
			if !ok {
				proc.Fatal(fmt.Errorf("-bins %q: want NAME=BINARY[:ARGS]", b))
			}
			bin, args, _ := strings.Cut(rest, ":")
			builds = append(builds, build{name, bin, args})
		}
	}
	self, err := os.Executable()
	if err != nil {
		proc.Fatal(err)
	}
	db := "sqlite:" + filepath.Join(tmp, "recledger.db")
	serve := func(b build) server {
		args := []string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--app", app + "=" + secret, "--log-format", "json"}
		return start(exec.Command(b.bin, append(args, strings.Fields(b.args)...)...))
	}

	srv := serve(builds[0])
	t0 := time.Now()
	r := load(srv.addr, 64, 0, 0, *events)
	srv.stop()
	fmt.Fprintf(os.Stderr, "filled the log with %d callbacks in %s (%d errors)\n", r.Requests, time.Since(t0).Round(time.Second), r.Errors)

	var rb result
	if !*skipLoad {
		bare := start(exec.Command(self, "bare-server"))
		rb = load(bare.addr, *clients, *warmup, *duration, 0)
		bare.stop()
	}
	var rows []string
	for _, b := range builds {
		srv := serve(b)
		if !*skipRSS {
			fmt.Printf("### %s\n\n", b.name)
			measureRSS(srv, *streams, *settle)
		}
		if !*skipLoad {
			r0 := load(srv.addr, *clients, *warmup, *duration, 0)
			ctx, cancel := context.WithCancel(context.Background())
			st := openStreams(ctx, srv.addr, *streams)
			time.Sleep(time.Second) // let them start replaying
			before := st.bytes.Load()
			rs := load(srv.addr, *clients, *warmup, *duration, 0)
			sent := st.bytes.Load() - before
			rssLoad := rss(srv.pid)
			cancel()
			st.wg.Wait()
			row := func(n int, r result, note string) {
				rows = append(rows, fmt.Sprintf("| %s | %d | %.0f | %.2f ms | %.2f ms | %.1f ms | %d | %.0f %% | %.0f %% | %s |", b.name, n, r.PerSecond,
					r.P50ms, r.P99ms, r.MaxMs, r.Errors, 100*r.PerSecond/rb.PerSecond, 100*r.PerSecond/r0.PerSecond, note))
			}
			row(0, r0, "")
			row(*streams, rs, fmt.Sprintf("%d streamed, %d refused; %.1f MB/s to the streams; RSS %d MB",
				st.ok.Load(), st.busy.Load(), float64(sent)/1e6/(*duration+*warmup).Seconds(), rssLoad>>20))
			fmt.Fprintln(os.Stderr, rows[len(rows)-2]+"\n"+rows[len(rows)-1])
		}
		srv.stop()
	}
	if !*skipLoad {
		fmt.Printf("| server | streams | callbacks/s | p50 | p99 | max | errors | share of bare | share of no streams | streams |\n|---|---|---|---|---|---|---|---|---|---|\n")
		fmt.Printf("| bare net/http handler | 0 | %.0f | %.2f ms | %.2f ms | %.1f ms | %d | 100 %% | | |\n", rb.PerSecond, rb.P50ms, rb.P99ms, rb.MaxMs, rb.Errors)
		fmt.Println(strings.Join(rows, "\n"))
	}
	fmt.Printf("\n%d clients, %d events in the log, %d cores, %s, %s, %s per configuration after %s warm-up\n",
		*clients, *events, runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format("2006-01-02"), *duration, *warmup)
}

// measureRSS opens n streams from seq 0 that never read, and reports the
// server's resident memory before, at its peak while they are open, and
// after they are closed.
func measureRSS(srv server, n int, settle time.Duration) {
	base, baseTCP, baseHeap := rss(srv.pid), tcpMem(), scrape(srv.addr, "go_memstats_heap_inuse_bytes")
	conns := make([]net.Conn, 0, n)
	for range n {
		c, err := net.Dial("tcp", srv.addr)
		if err != nil {
			proc.Fatal(err)
		}
		fmt.Fprintf(c, "GET /v1/events/stream?from=0 HTTP/1.1\r\nHost: %s\r\n\r\n", srv.addr)
		conns = append(conns, c)
	}
	peak, peakTCP, peakServerTCP := base, baseTCP, int64(0)
	end := time.Now().Add(settle)
	for time.Now().Before(end) {
		time.Sleep(500 * time.Millisecond)
		peak, peakTCP, peakServerTCP = max(peak, rss(srv.pid)), max(peakTCP, tcpMem()), max(peakServerTCP, serverTCP(srv.addr))
	}
	held, heldTCP, heldHeap := rss(srv.pid), tcpMem(), scrape(srv.addr, "go_memstats_heap_inuse_bytes")
	goroutines := scrape(srv.addr, "go_goroutines")
	open, dropped := scrape(srv.addr, "recledger_event_streams"), scrape(srv.addr, "recledger_event_streams_dropped_total")
	for _, c := range conns {
		c.Close()
	}
	time.Sleep(2 * time.Second)
	after, afterTCP := rss(srv.pid), tcpMem()
	fmt.Printf("| %d streams that never read | server RSS | Go heap in use | kernel TCP buffers (all sockets) |\n|---|---|---|---|\n", n)
	fmt.Printf("| before | %d MB | %s MB | %d MB |\n", base>>20, mb(baseHeap), baseTCP>>20)
	fmt.Printf("| peak while open (%s) | %d MB | | %d MB |\n", settle, peak>>20, peakTCP>>20)
	fmt.Printf("| at the end (%s goroutines) | %d MB | %s MB | %d MB |\n", goroutines, held>>20, mb(heldHeap), heldTCP>>20)
	fmt.Printf("| 2 s after closing | %d MB | | %d MB |\n\n", after>>20, afterTCP>>20)
	fmt.Printf("At the end %s streams were open and %s had been dropped as too slow; at the peak the server's side of its connections held %d MB in the kernel (send and receive queues).\n\n",
		open, dropped, peakServerTCP>>20)
}

// streamSet is n streams that read and discard.
type streamSet struct {
	wg               sync.WaitGroup
	ok, busy, failed atomic.Int64
	bytes            atomic.Int64
}

func openStreams(ctx context.Context, addr string, n int) *streamSet {
	s := &streamSet{}
	transport := &http.Transport{MaxConnsPerHost: n + 1, MaxIdleConnsPerHost: n + 1}
	client := &http.Client{Transport: transport}
	for range n {
		s.wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/events/stream?after=0", nil)
			resp, err := client.Do(req)
			if err != nil {
				s.failed.Add(1)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				s.busy.Add(1)
				return
			}
			s.ok.Add(1)
			buf := make([]byte, 32<<10)
			for {
				k, err := resp.Body.Read(buf)
				s.bytes.Add(int64(k))
				if err != nil {
					return
				}
			}
		})
	}
	return s
}

// rss is a process's resident memory in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		proc.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// tcpMem is the memory the kernel holds in TCP buffers, all sockets of
// the machine (the "mem" pages of /proc/net/sockstat), in bytes.
func tcpMem() int64 {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "TCP: "); ok {
			f := strings.Fields(rest)
			for i := 0; i+1 < len(f); i += 2 {
				if f[i] == "mem" {
					pages, _ := strconv.ParseInt(f[i+1], 10, 64)
					return pages * int64(os.Getpagesize())
				}
			}
		}
	}
	return 0
}

// serverTCP sums, over the established sockets whose local port is the
// server's, the kernel memory queued to send (skmem's w) and received but
// not yet read (r): what the server's side of the streams holds in the
// kernel, without the clients' receive buffers. -1 when ss is missing.
func serverTCP(addr string) int64 {
	_, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("ss", "-tmnH", "state", "established", "sport", "=", ":"+port).Output()
	if err != nil {
		return -1
	}
	var total int64
	for _, field := range strings.FieldsFunc(string(out), func(r rune) bool { return r == '(' || r == ')' || r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		for _, k := range []string{"w", "r"} {
			if v, ok := strings.CutPrefix(field, k); ok {
				if n, err := strconv.ParseInt(v, 10, 64); err == nil {
					total += n
				}
			}
		}
	}
	return total
}

// mb turns a scraped byte count into megabytes.
func mb(v string) string {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return "?"
	}
	return strconv.FormatFloat(f/(1<<20), 'f', 0, 64)
}

// scrape reads one unlabelled series from the server's /metrics.
func scrape(addr, name string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return "?"
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	return "?"
}

type server struct {
	addr string
	pid  int
	stop func()
}

// start runs a server process (proc.Start) and keeps its pid, for RSS.
func start(cmd *exec.Cmd) server {
	addr, stop := proc.Start(cmd)
	return server{addr: addr, pid: cmd.Process.Pid, stop: stop}
}
