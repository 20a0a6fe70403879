// Command ingest is the ingest benchmark harness. In one run it measures,
// at each client count, (a) a bare net/http handler that reads the body and
// answers 200, the physical limit of this machine's HTTP stack, and (b)
// recledger serve with its durable ingest (SQLite, synchronous=FULL by
// default), each server in its own process and the load from this one.
//
//	go run ./bench/ingest -clients 16,64 -duration 10s
//
// -destinations and -verify-storage add configurations with webhooks and
// with storage verification on.
//
// It prints a Markdown table for BENCHMARKS.md (and JSON with -json).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recledger/recledger/bench/internal/proc"
	"github.com/recledger/recledger/rc"
)

const (
	app    = "bench_app"
	secret = "bench-secret-0123456789"
)

type result struct {
	Server    string  `json:"server"`
	Clients   int     `json:"clients"`
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"` // non-200 answers and transport errors
	PerSecond float64 `json:"perSecond"`
	P50ms     float64 `json:"p50ms"`
	P99ms     float64 `json:"p99ms"`
	MaxMs     float64 `json:"maxMs"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "bare-server" {
		proc.BareServer()
		return
	}
	clientsFlag := flag.String("clients", "16,64", "client counts to measure, comma-separated")
	duration := flag.Duration("duration", 10*time.Second, "measured time per configuration")
	warmup := flag.Duration("warmup", 2*time.Second, "unmeasured time before each measurement")
	sync := flag.String("sync", "full", "recledger --sqlite-synchronous")
	asJSON := flag.Bool("json", false, "print JSON instead of Markdown")
	target := flag.String("target", "", "load already running recledger instances at these host:port, comma-separated, instead (app "+app+"="+secret+")")
	postgres := flag.String("postgres", "", "also measure recledger on this PostgreSQL (one and two instances), e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable")
	skipSQLite := flag.Bool("skip-sqlite", false, "do not measure the SQLite configuration")
	destinations := flag.Bool("destinations", false, "also measure SQLite with two webhook destinations (receivers in this process) taking every event")
	verify := flag.Bool("verify-storage", false, "also measure SQLite with --verify-storage, the uploads' URLs on a storage in this process (HEAD answered at once)")
	flag.Parse()

	var clients []int
	for _, s := range strings.Split(*clientsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			proc.Fatal(fmt.Errorf("-clients %q: want positive numbers", *clientsFlag))
		}
		clients = append(clients, n)
	}
	if *target != "" {
		for _, c := range clients {
			r := load(strings.Split(*target, ","), c, *warmup, *duration)
			fmt.Printf("%s %3d clients: %8.0f/s p50 %.2f ms p99 %.2f ms (%d errors)\n", *target, c, r.PerSecond, r.P50ms, r.P99ms, r.Errors)
		}
		return
	}
	tmp, err := os.MkdirTemp("", "recledger-bench")
	if err != nil {
		proc.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	bin := proc.Build(tmp)
	self, err := os.Executable()
	if err != nil {
		proc.Fatal(err)
	}

	type config struct {
		name  string
		start func() ([]string, func())
	}
	serveOn := func(db string, extra ...string) (string, func()) {
		args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--app", app + "=" + secret, "--log-format", "json"}, extra...)
		return proc.Start(exec.Command(bin, args...))
	}
	configs := []config{{"bare net/http handler", func() ([]string, func()) {
		addr, stop := proc.Start(exec.Command(self, "bare-server"))
		return []string{addr}, stop
	}}}
	if !*skipSQLite {
		configs = append(configs, config{"recledger (sqlite " + *sync + ")", func() ([]string, func()) {
			dir, err := os.MkdirTemp(tmp, "db")
			if err != nil {
				proc.Fatal(err)
			}
			addr, stop := serveOn("sqlite:"+filepath.Join(dir, "recledger.db"), "--sqlite-synchronous", *sync)
			return []string{addr}, stop
		}})
	}
	if *destinations {
		var hooks []string
		for range 2 {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				proc.Fatal(err)
			}
			go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
			}))
			hooks = append(hooks, "--webhook", "http://"+ln.Addr().String()+"/hooks=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
		}
		configs = append(configs, config{"recledger (sqlite " + *sync + ", 2 webhooks)", func() ([]string, func()) {
			dir, err := os.MkdirTemp(tmp, "db")
			if err != nil {
				proc.Fatal(err)
			}
			addr, stop := serveOn("sqlite:"+filepath.Join(dir, "recledger.db"),
				append([]string{"--sqlite-synchronous", *sync, "--allow-private-destinations"}, hooks...)...)
			return []string{addr}, stop
		}})
	}
	if *verify {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			proc.Fatal(err)
		}
		var checks atomic.Int64
		go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			checks.Add(1)
			w.Header().Set("Content-Length", "1048576")
			w.WriteHeader(http.StatusOK)
		}))
		storageBase = "http://" + ln.Addr().String()
		configs = append(configs, config{"recledger (sqlite " + *sync + ", --verify-storage)", func() ([]string, func()) {
			dir, err := os.MkdirTemp(tmp, "db")
			if err != nil {
				proc.Fatal(err)
			}
			before := checks.Load()
			addr, stop := serveOn("sqlite:"+filepath.Join(dir, "recledger.db"),
				"--sqlite-synchronous", *sync, "--verify-storage", "--storage-hosts", ln.Addr().String())
			return []string{addr}, func() {
				stop()
				fmt.Fprintf(os.Stderr, "storage checks answered during the run: %d\n", checks.Load()-before)
			}
		}})
	}
	if *postgres != "" {
		for _, n := range []int{1, 2} {
			configs = append(configs, config{fmt.Sprintf("recledger (postgres, %d instance%s)", n, map[bool]string{true: "s"}[n > 1]), func() ([]string, func()) {
				sep := "?"
				if strings.Contains(*postgres, "?") {
					sep = "&"
				}
				db := *postgres + sep + "search_path=bench_" + strconv.FormatInt(time.Now().UnixNano(), 36)
				var addrs []string
				var stops []func()
				for range n {
					addr, stop := serveOn(db)
					addrs, stops = append(addrs, addr), append(stops, stop)
				}
				return addrs, func() {
					for _, s := range stops {
						s()
					}
				}
			}})
		}
	}

	var results []result
	for _, c := range clients {
		for _, cfg := range configs {
			addrs, stop := cfg.start()
			r := load(addrs, c, *warmup, *duration)
			stop()
			r.Server = cfg.name
			results = append(results, r)
			fmt.Fprintf(os.Stderr, "%-34s %3d clients: %8.0f/s p50 %.2f ms p99 %.2f ms (%d errors)\n",
				cfg.name, c, r.PerSecond, r.P50ms, r.P99ms, r.Errors)
		}
	}
	if *asJSON {
		json.NewEncoder(os.Stdout).Encode(results)
		return
	}
	fmt.Printf("| server | clients | callbacks/s | p50 | p99 | max | errors | share of bare |\n|---|---|---|---|---|---|---|---|\n")
	bare := map[int]float64{}
	for _, r := range results {
		if strings.HasPrefix(r.Server, "bare") {
			bare[r.Clients] = r.PerSecond
		}
		fmt.Printf("| %s | %d | %.0f | %.2f ms | %.2f ms | %.1f ms | %d | %.0f %% |\n", r.Server, r.Clients, r.PerSecond,
			r.P50ms, r.P99ms, r.MaxMs, r.Errors, 100*r.PerSecond/bare[r.Clients])
	}
	fmt.Printf("\n%d cores, %s, %s, %s per configuration after %s warm-up\n", runtime.NumCPU(), runtime.Version(),
		time.Now().UTC().Format("2006-01-02"), *duration, *warmup)
}

// load runs clients workers, each posting a recording's callbacks in a loop
// (start, two segments, end, two uploads), every one distinct and signed.
// load spreads the clients' requests over addrs round robin, as a load
// balancer in front of several instances would.
func load(addrs []string, clients int, warmup, duration time.Duration) result {
	transport := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	defer transport.CloseIdleConnections()
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		wg        sync.WaitGroup
		mu        sync.Mutex
		latencies []time.Duration
		errors    int
	)
	signer := rc.Signer{AppKey: app, Secret: secret}
	for w := range clients {
		wg.Go(func() {
			var lat []time.Duration
			errs := 0
			for i := 0; !stop.Load(); i++ {
				body := callback(w, i)
				url := "http://" + addrs[(w+i)%len(addrs)] + "/v1/callbacks/recording"
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				signer.Apply(req, signer.Sign())
				t0 := time.Now()
				resp, err := client.Do(req)
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if measuring.Load() {
					lat = append(lat, time.Since(t0))
					if !ok {
						errs++
					}
				}
			}
			mu.Lock()
			latencies = append(latencies, lat...)
			errors += errs
			mu.Unlock()
		})
	}
	time.Sleep(warmup)
	measuring.Store(true)
	began := time.Now()
	time.Sleep(duration)
	measuring.Store(false)
	elapsed := time.Since(began)
	stop.Store(true)
	wg.Wait()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	return result{Clients: clients, Requests: len(latencies), Errors: errors,
		PerSecond: float64(len(latencies)-errors) / elapsed.Seconds(), P50ms: pct(0.50), P99ms: pct(0.99), MaxMs: pct(1)}
}

var types = []int{1, 2, 2, 3, 4, 4}

// storageBase is where the uploads' URLs point: a storage in this process
// with -verify-storage, else a host no one checks.
var storageBase = "http://oss"

// callback is worker w's i-th callback: recording i/6 of the worker, step i%6.
func callback(w, i int) []byte {
	rec, step := i/len(types), i%len(types)
	typ := types[step]
	ts := int64(1_700_000_000_000) + int64(i)*1000
	file := fmt.Sprintf("sess%d_room%d_user%d_%d.mp4", w, rec, w, ts-int64(step)*1000+int64(min(step, 3))*1000)
	out := ""
	switch typ {
	case 1:
		out = `,"config":{"trigger":1,"mixLayout":2,"slicesMin":30,"audioFormat":"aac","videoFormat":"mp4"},"output":{"fileName":"tmp.mp4","audioSample":48000,"videoResoulation":"640x480"}`
	case 2, 3:
		out = fmt.Sprintf(`,"output":{"fileName":%q,"fileSize":%d}`, file, 1<<20+i)
	case 4:
		out = fmt.Sprintf(`,"output":{"fileName":%q,"fileUrl":"%s/record/%s"}`, file, storageBase, file)
	}
	return fmt.Appendf(nil, `{"timestamp":%d,"type":%d,"appKey":%q,"recordId":"bench-%d-%d","roomId":"room%d","sessionId":"sess%d","userId":"user%d","mode":0,"extra":"","code":200,"errorMessage":"Success"%s}`,
		ts, typ, app, w, rec, rec, w, w, out)
}
