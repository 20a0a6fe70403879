// Command query is the query benchmark: it fills a SQLite store with
// generated recordings (through the store's own path, as ingest would:
// each callback's signature remembered, then the callback appended), then
// serves it with recledger serve and measures the query API's
// latency over HTTP, the database size and the server's memory.
//
//	go run ./bench/query -recordings 1000000
//
// Each recording has a start, three segments and an end (four files); one
// in ten has its files uploaded, one in fifty failed. Rooms hold ten
// recordings, sessions five, users twenty. The store is kept in -dir for
// reruns (-reuse skips filling it).
package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/pgstore"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/rc"
)

func main() {
	n := flag.Int("recordings", 1_000_000, "recordings to generate")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "recledger-query-bench"), "where the store is kept")
	reuse := flag.Bool("reuse", false, "reuse the store in -dir instead of filling a new one")
	requests := flag.Int("requests", 2000, "requests per query kind")
	postgres := flag.String("postgres", "", "measure on this PostgreSQL instead (a postgres:// URL; its search_path schema is filled)")
	flag.Parse()
	path := filepath.Join(*dir, "recledger.db")
	db := "sqlite:" + path
	if *postgres != "" {
		db = *postgres
	}
	if !*reuse {
		os.RemoveAll(*dir)
		os.MkdirAll(*dir, 0o750)
		var s ledger.Store
		var err error
		if *postgres != "" {
			s, err = pgstore.Open(context.Background(), *postgres, pgstore.Options{})
		} else {
			s, err = sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
		}
		if err != nil {
			fatal(err)
		}
		fill(s, *n)
	}
	bin := filepath.Join(*dir, "recledger-bin")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/recledger").CombinedOutput(); err != nil {
		fatal(fmt.Errorf("build (run from the repository root): %v\n%s", err, out))
	}
	var size int64
	matches, _ := filepath.Glob(filepath.Join(*dir, "recledger*.db*"))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil {
			size += fi.Size()
		}
	}
	if *postgres != "" {
		size = postgresSize(*postgres)
	}
	addr, pid, stop := serve(bin, db)
	defer stop()
	measure(addr, pid, *n, *requests, size)
}

// fill appends n recordings' callbacks from 64 goroutines.
func fill(s ledger.Store, n int) {
	start := time.Now()
	var (
		next atomic.Int64
		done atomic.Int64
		wg   sync.WaitGroup
	)
	for range 64 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				for k, body := range recording(i) {
					cb, err := rc.Parse(body)
					if err != nil {
						fatal(err)
					}
					// Signed, as RC's callbacks are: the verifier remembers
					// each signature, and the store keeps it with its row.
					// A store fills over months, not in minutes, so the
					// signatures expire at once, as they would have long
					// before (PostgreSQL's replay table then holds only a
					// window's worth, and no server loads them all).
					sig := rc.ReplayKey{AppKey: cb.AppKey, Nonce: fmt.Sprintf("n%d-%d", i, k), Timestamp: strconv.FormatInt(cb.Timestamp, 10)}
					if _, err := s.Remember(context.Background(), sig, sha256.Sum256(body), time.Now().Add(time.Second)); err != nil {
						fatal(err)
					}
					if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: time.Now()}); err != nil {
						fatal(err)
					}
				}
				if d := done.Add(1); d%100_000 == 0 {
					fmt.Fprintf(os.Stderr, "filled %d recordings, %.0f callbacks/s\n", d, float64(d*6)/time.Since(start).Seconds())
				}
			}
		})
	}
	wg.Wait()
	if err := s.Close(); err != nil { // waits for the projections
		fatal(err)
	}
	fmt.Fprintf(os.Stderr, "filled %d recordings in %s\n", n, time.Since(start).Round(time.Second))
}

const base = int64(1_700_000_000_000)

// recording returns recording i's callbacks.
func recording(i int) [][]byte {
	id := fmt.Sprintf("rec%07d", i)
	room, session, user := fmt.Sprintf("room%06d", i/10), fmt.Sprintf("sess%06d", i/5), fmt.Sprintf("user%05d", i%50_000)
	t0 := base + int64(i)*1000
	code := 200
	if i%50 == 7 {
		code = 500
	}
	common := func(typ int, ts int64, c int, output string) []byte {
		return fmt.Appendf(nil, `{"timestamp":%d,"type":%d,"appKey":"bench","recordId":%q,"roomId":%q,"sessionId":%q,"userId":%q,"mode":0,"extra":"","code":%d,"errorMessage":"Success","output":{%s}}`,
			ts, typ, id, room, session, user, c, output)
	}
	out := [][]byte{common(1, t0, code, `"fileName":"tmp.mp4","audioSample":48000,"videoResoulation":"640x480"`)}
	for k := 1; k <= 4; k++ {
		typ := 2
		if k == 4 {
			typ = 3
		}
		name := fileName(i, k)
		out = append(out, common(typ, t0+int64(k)*1800_000, 200, fmt.Sprintf(`"fileName":%q,"fileSize":%d`, name, 50<<20+k)))
		if i%10 == 0 {
			out = append(out, common(4, t0+int64(k)*1800_000+5000, 200, fmt.Sprintf(`"fileName":%q,"fileUrl":"https://oss.example/%s"`, name, name)))
		}
	}
	return out
}

func fileName(i, k int) string {
	return fmt.Sprintf("sess%06d_room%06d_user%05d_%d.mp4", i/5, i/10, i%50_000, base+int64(i)*1000+int64(k))
}

// serve starts recledger serve on the store and returns its address and pid.
func serve(bin, db string) (string, int, func()) {
	// The fill put millions of signatures in minutes; a server started
	// inside their window would load them all into its replay memory
	// (about 60 bytes each, rate x twice the tolerance in steady state),
	// which is not what this benchmark measures: a short tolerance keeps
	// the fill's out.
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--db", db, "--log-format", "json", "--signature-tolerance", "1s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		fatal(err)
	}
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	dec := json.NewDecoder(stderr)
	for {
		var entry struct{ Msg, Addr string }
		if err := dec.Decode(&entry); err != nil {
			fatal(fmt.Errorf("server: %w", err))
		}
		if entry.Msg == "listening" {
			go io.Copy(io.Discard, stderr)
			return entry.Addr, cmd.Process.Pid, func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }
		}
	}
}

func measure(addr string, pid, n, requests int, size int64) {
	client := &http.Client{Timeout: 10 * time.Second}
	r := rand.New(rand.NewPCG(1, 2))
	kinds := []struct {
		name string
		path func() string
		n    int // requests of this kind when not the flag's (whole-ledger counts are slow)
	}{
		{"GET /v1/recordings/{id}", func() string { return "/v1/recordings/" + fmt.Sprintf("rec%07d", r.IntN(n)) }, 0},
		{"GET /v1/files/{name}", func() string { return "/v1/files/" + fileName(r.IntN(n), 1+r.IntN(4)) }, 0},
		{"page of 50 by roomId", func() string { return "/v1/recordings?limit=50&roomId=" + fmt.Sprintf("room%06d", r.IntN(n/10)) }, 0},
		{"page of 50 by sessionId", func() string {
			return "/v1/recordings?limit=50&sessionId=" + fmt.Sprintf("sess%06d", r.IntN(n/5))
		}, 0},
		{"page of 50 by userId", func() string { return "/v1/recordings?limit=50&userId=" + fmt.Sprintf("user%05d", r.IntN(50_000)) }, 0},
		{"page of 50 by status", func() string {
			return "/v1/recordings?limit=50&status=" + []string{"ended", "complete", "failed"}[r.IntN(3)]
		}, 0},
		{"page of 50 by uploadState", func() string {
			return "/v1/recordings?limit=50&uploadState=" + []string{"pending", "complete", "overdue"}[r.IntN(3)]
		}, 0},
		{"dashboard: recording page", func() string { return "/recordings/" + fmt.Sprintf("rec%07d", r.IntN(n)) }, 0},
		{"dashboard: recordings, first page", func() string { return "/recordings" }, 0},
		{"dashboard: recordings by room", func() string { return "/recordings?roomId=" + fmt.Sprintf("room%06d", r.IntN(n/10)) }, 0},
		{"dashboard: overview", func() string { return "/" }, 50},
	}
	fmt.Printf("| query | p50 | p99 | max |\n|---|---|---|---|\n")
	var rss int64
	for _, k := range kinds {
		requests := requests
		if k.n > 0 {
			requests = min(requests, k.n)
		}
		lat := make([]time.Duration, 0, requests)
		for i := range requests + requests/10 { // the first tenth warms up, unmeasured
			measured := i >= requests/10
			t0 := time.Now()
			resp, err := client.Get("http://" + addr + k.path())
			if err != nil {
				fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				fatal(fmt.Errorf("%s: %d", k.name, resp.StatusCode))
			}
			if measured {
				lat = append(lat, time.Since(t0))
			}
		}
		rss = max(rss, vmRSS(pid))
		slices.Sort(lat)
		fmt.Printf("| %s (%d) | %.2f ms | %.2f ms | %.2f ms |\n", k.name, requests, ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1]))
	}
	fmt.Printf("\n%d recordings, %d files; store on disk %.0f MB (%.0f MB per million recordings); server RSS %d MB while serving\n",
		n, 4*n, float64(size)/1e6, float64(size)/1e6/(float64(n)/1e6), rss>>20)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// vmRSS reads a process's resident set size from /proc.
func vmRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	os.Exit(1)
}

// postgresSize is the size of the schema's tables and indexes.
func postgresSize(url string) int64 {
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		return 0
	}
	defer conn.Close(context.Background())
	var size int64
	conn.QueryRow(context.Background(), `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'`).Scan(&size)
	return size
}
