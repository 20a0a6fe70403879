// Command delivery measures outbound delivery (BENCHMARKS.md, "Outbound
// delivery"): it runs recledger on SQLite with a webhook destination (a
// receiver in this process) and, with -nats, a JetStream destination, sends
// signed callbacks at -rate per second (0: as fast as -clients can), and
// reports, per destination, how many events arrived and the time from the
// callback's arrival at recledger (the event's time) to the receipt, and
// the dispatcher's own commit-to-acknowledgement histogram from /metrics.
//
//	go run ./bench/delivery -rate 1000 -duration 20s [-nats nats://127.0.0.1:4222]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
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

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/recledger/recledger/bench/internal/proc"
	"github.com/recledger/recledger/rc"
)

const (
	app        = "bench_app"
	secret     = "bench_secret"
	hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// sink records the lag of each event a destination received.
type sink struct {
	mu          sync.Mutex
	lags        []time.Duration
	events      int
	first, last time.Time
}

func (s *sink) add(body []byte) {
	var ev struct {
		Type string
		Time time.Time
	}
	json.Unmarshal(body, &ev)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events++
	if s.first.IsZero() {
		s.first = now
	}
	s.last = now
	if ev.Type != "recording.completed" { // completed waits for --settle on purpose
		s.lags = append(s.lags, now.Sub(ev.Time))
	}
}

func (s *sink) report(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slices.Sort(s.lags)
	pct := func(p float64) float64 {
		if len(s.lags) == 0 {
			return math.NaN()
		}
		return float64(s.lags[int(p*float64(len(s.lags)-1))].Microseconds()) / 1000
	}
	rate := float64(s.events) / s.last.Sub(s.first).Seconds()
	fmt.Printf("| %s | %d | %.0f/s | %.1f ms | %.1f ms | %.1f ms |\n", name, s.events, rate, pct(0.5), pct(0.99), pct(1))
}

func main() {
	rate := flag.Int("rate", 1000, "callbacks per second to send (0: as fast as -clients can)")
	clients := flag.Int("clients", 32, "concurrent senders")
	duration := flag.Duration("duration", 20*time.Second, "how long to send")
	natsURL := flag.String("nats", "", "also deliver to JetStream at this NATS URL")
	none := flag.Bool("no-destinations", false, "run without destinations: the baseline of the ingest figures")
	flag.Parse()

	tmp, err := os.MkdirTemp("", "recledger-bench-delivery")
	if err != nil {
		proc.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	bin := proc.Build(tmp)

	hook := &sink{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		proc.Fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		hook.add(body)
		w.WriteHeader(http.StatusNoContent)
	}))

	args := []string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(tmp, "recledger.db"),
		"--app", app + "=" + secret, "--log-format", "json", "--allow-private-destinations", "--settle", "1s"}
	if !*none {
		args = append(args, "--webhook", "http://"+ln.Addr().String()+"/hooks="+hookSecret)
	} else if *natsURL != "" {
		proc.Fatal(fmt.Errorf("-no-destinations and -nats: choose one"))
	}
	cmd := exec.Command(bin, args...)
	addr, stop := proc.Start(cmd)
	defer stop()
	base := "http://" + addr

	stream := fmt.Sprintf("BENCH_%d", time.Now().UnixNano())
	js := &sink{}
	if *natsURL != "" {
		body := fmt.Sprintf(`{"type":"nats","url":%q,"stream":%q,"prefix":"bench"}`, *natsURL, stream)
		resp, err := http.Post(base+"/v1/destinations", "application/json", strings.NewReader(body))
		if err != nil || resp.StatusCode != 201 {
			proc.Fatal(fmt.Errorf("add the nats destination: %v %v", err, resp))
		}
		resp.Body.Close()
		nc, err := nats.Connect(*natsURL)
		if err != nil {
			proc.Fatal(err)
		}
		defer nc.Close()
		jsc, _ := jetstream.New(nc)
		defer jsc.DeleteStream(context.Background(), stream)
		// The stream appears with the first publish: wait for it.
		go func() {
			for {
				cons, err := jsc.OrderedConsumer(context.Background(), stream, jetstream.OrderedConsumerConfig{})
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				cons.Consume(func(m jetstream.Msg) { js.add(m.Data()) })
				return
			}
		}()
	}
	time.Sleep(3 * time.Second) // the dispatcher reads the destinations every 2 s

	// Send.
	var (
		sent atomic.Int64
		wg   sync.WaitGroup
		next = make(chan int, 1024)
	)
	go func() {
		defer close(next)
		end := time.Now().Add(*duration)
		if *rate <= 0 {
			for i := 0; time.Now().Before(end); i++ {
				next <- i
			}
			return
		}
		tick := time.Second / time.Duration(*rate)
		t0 := time.Now()
		for i := 0; time.Now().Before(end); i++ {
			if d := time.Until(t0.Add(time.Duration(i) * tick)); d > 0 {
				time.Sleep(d)
			}
			next <- i
		}
	}()
	signer := rc.Signer{AppKey: app, Secret: secret}
	var (
		latMu     sync.Mutex
		latencies []time.Duration
	)
	cpuBefore := cpuTime(cmd.Process.Pid)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: *clients}, Timeout: 10 * time.Second}
	for range *clients {
		wg.Go(func() {
			for i := range next {
				req, _ := http.NewRequest(http.MethodPost, base+"/v1/callbacks/recording", bytes.NewReader(callback(i)))
				req.Header.Set("Content-Type", "application/json")
				signer.Apply(req, signer.Sign())
				t0 := time.Now()
				resp, err := client.Do(req)
				took := time.Since(t0)
				latMu.Lock()
				latencies = append(latencies, took)
				latMu.Unlock()
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						sent.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	// Wait for the receivers to go quiet.
	for quiet := 0; quiet < 3; {
		before := hook.count() + js.count()
		time.Sleep(time.Second)
		if hook.count()+js.count() == before {
			quiet++
		} else {
			quiet = 0
		}
	}
	cpu := cpuTime(cmd.Process.Pid) - cpuBefore
	slices.Sort(latencies)
	q := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	fmt.Printf("%d callbacks sent (%s at %d/s, %d clients): answered p50 %.2f ms, p99 %.2f ms; recledger's CPU %.0f µs per callback (delivery included)\n\n",
		sent.Load(), *duration, *rate, *clients, q(0.5), q(0.99), float64(cpu.Microseconds())/float64(sent.Load()))
	if *none {
		return
	}
	fmt.Println("| destination | events | received/s | arrival to receipt p50 | p99 | max |")
	fmt.Println("|---|---|---|---|---|---|")
	hook.report("webhook")
	if *natsURL != "" {
		js.report("JetStream")
	}
	fmt.Println()
	commitToAck(base)
	fmt.Printf("\n%d cores, %s, %s\n", runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format("2006-01-02"))
}

// cpuTime is a process's user and system CPU time so far (Linux).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events
}

// commitToAck prints the dispatcher's histogram of commit to
// acknowledgement per destination: the share within each bucket bound.
func commitToAck(base string) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		proc.Fatal(err)
	}
	defer resp.Body.Close()
	buckets := map[string][][2]float64{} // destination → (le, cumulative count)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, `recledger_delivery_lag_seconds_bucket{destination="`)
		if !ok {
			continue
		}
		dst, rest, _ := strings.Cut(rest, `"`)
		_, rest, _ = strings.Cut(rest, `le="`)
		le, rest, _ := strings.Cut(rest, `"`)
		n, _ := strconv.ParseFloat(strings.TrimSpace(rest[strings.LastIndexByte(rest, ' ')+1:]), 64)
		bound, _ := strconv.ParseFloat(le, 64)
		if le == "+Inf" {
			bound = math.Inf(1)
		}
		buckets[dst] = append(buckets[dst], [2]float64{bound, n})
	}
	fmt.Println("commit to acknowledgement (the dispatcher's histogram, share of deliveries within):")
	for dst, bs := range buckets {
		total := bs[len(bs)-1][1]
		var parts []string
		for _, b := range bs {
			if b[0] <= 1 {
				parts = append(parts, fmt.Sprintf("%g s %.1f %%", b[0], 100*b[1]/total))
			}
		}
		fmt.Printf("  %s (%.0f): %s\n", dst, total, strings.Join(parts, ", "))
	}
}

var types = []int{1, 2, 2, 3, 4, 4, 4}

// callback i: recording i/7, step i%7 (start, two segments, end, three
// uploads): every one distinct.
func callback(i int) []byte {
	rec, step := i/len(types), i%len(types)
	typ := types[step]
	ts := time.Now().UnixMilli()
	file := fmt.Sprintf("sess_room%d_user_%d.mp4", rec, min(step, 3))
	if typ == 4 {
		file = fmt.Sprintf("sess_room%d_user_%d.mp4", rec, step-3)
	}
	out := ""
	switch typ {
	case 1:
		out = `,"config":{"trigger":1,"mixLayout":2,"slicesMin":30,"audioFormat":"aac","videoFormat":"mp4"},"output":{"fileName":"tmp.mp4"}`
	case 2, 3:
		out = fmt.Sprintf(`,"output":{"fileName":%q,"fileSize":%d}`, file, 1<<20+i)
	case 4:
		out = fmt.Sprintf(`,"output":{"fileName":%q,"fileUrl":"http://oss/record/%s"}`, file, file)
	}
	return fmt.Appendf(nil, `{"timestamp":%d,"type":%d,"appKey":%q,"recordId":"bench-%d","roomId":"room%d","sessionId":"sess","userId":"user","mode":0,"extra":"","code":200,"errorMessage":"Success"%s}`,
		ts, typ, app, rec, rec, out)
}
