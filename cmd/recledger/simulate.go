package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/recledger/recledger/internal/simulator"
	"github.com/recledger/recledger/rc"
)

type simulateOptions struct {
	to, app, modes, style, print string
	faults, server, token        string
	verify                       bool
	rate                         float64
	duration                     time.Duration
	recordings, concurrency      int
	seed                         uint64
	seeded                       bool // --seed was given
	speed                        float64
	uploadFailures, never        float64
	failed                       float64
	asJSON                       bool
	storageAddr                  string
	maxOpen, verifyWait          time.Duration
}

func newSimulateCmd() *cobra.Command {
	var o simulateOptions
	cmd := &cobra.Command{
		Use:   "simulate --to URL --app KEY=SECRET",
		Short: "Play RC's side: generate recordings and send their signed callbacks",
		Long: `simulate generates recordings in RC's modes (file names, segments, sizes and
uploads by RC's rules), and delivers their callbacks to a receiver the way RC
does: signed afresh for every attempt, a 5 s timeout, two retries, and only a
200 counts. Simulated time is compressed by --speed (3600 plays an hour in a
second, starting now; 0 sends as fast as possible, and the scenario then ends
now: no callback's timestamp lies in the future) while the callbacks'
timestamps follow simulated time.

Every run makes new recordings (fresh recordIds), so runs against one server
never mix. --seed N repeats a run exactly instead: the same recordIds, file
names and timestamps (simulated time then ends at ` + seededEndText + `), so
sending it again is a redelivery the receiver must recognise.

With --print it writes the signed requests (curl commands or JSON lines)
instead of sending them, to test another receiver by hand.

With --storage-addr it also plays the customer's storage: a plain-HTTP
server on that address answers HEAD and ranged GET for every object the
recordings uploaded (sizes, content types and ETags; half the objects
refuse HEAD, as presigned GET URLs do), and the uploads' fileUrls point at
it with presigned-looking query strings. Run recledger with
--verify-storage --storage-hosts set to that address. The storage serves
until the run and its --verify are done.

The faults absent, wrong-size (both with --storage-addr), no-end and
missing-segment change the scenario itself; they take a rate or a count
(no-end=0.1 or no-end=2). --verify then also checks that every uploaded
file shows the storage verification its object implies, once none is
pending, and that every recording shows exactly the findings RC's
callbacks imply (not_ended and stalled by --max-recording-length and the
server's clock; segment_gap and missing_files by the files' timestamps).`,
		Example: `  recledger simulate --to http://127.0.0.1:8080/v1/callbacks/recording --app your_appkey=SECRET --recordings 20
  recledger simulate --to http://127.0.0.1:8080/v1/callbacks/recording --app your_appkey=SECRET --modes 0,3,6 --upload-failures 0.2 --seed 7
  recledger simulate --app your_appkey=SECRET --recordings 1 --print curl
  recledger simulate --to http://127.0.0.1:8080/v1/callbacks/recording --app your_appkey=SECRET --rate 5000 --duration 10s --json
  recledger simulate --to http://127.0.0.1:8080/v1/callbacks/recording --app your_appkey=SECRET --storage-addr 127.0.0.1:9300 \
    --faults absent=2,wrong-size=2,no-end=2,missing-segment=2 --max-recording-length 1m --verify`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSimulate(cmd, o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "the receiver's callback URL")
	f.StringVar(&o.app, "app", "", "the RC app KEY=SECRET to sign with")
	f.IntVar(&o.recordings, "recordings", 10, "how many recordings")
	f.StringVar(&o.modes, "modes", "", "recording modes to draw from, comma-separated (default all, 0-6)")
	f.Uint64Var(&o.seed, "seed", 0, "repeat a scenario exactly: the same seed gives the same recordings and timestamps (default: new recordings every run)")
	f.Float64Var(&o.speed, "speed", 0, "simulated seconds per real second (0: no waiting)")
	f.IntVar(&o.concurrency, "concurrency", 64, "recordings played at once")
	f.StringVar(&o.style, "signature-style", string(rc.StyleHeaders), "where the signature goes: "+styleNames())
	f.Float64Var(&o.uploadFailures, "upload-failures", 0, "share of uploads whose first attempt fails (RC retries every 10 s)")
	f.Float64Var(&o.never, "never-uploaded", 0, "share of uploads that never succeed")
	f.Float64Var(&o.failed, "failed-recordings", 0, "share of recordings whose start or end reports a failure")
	f.StringVar(&o.faults, "faults", "", "misbehave at these rates: dup, reorder, delay, drop, badsig, replay, malformed, unknown (e.g. dup=0.1,reorder=0.3; all=0.05); "+
		"and in the scenario, at a rate or a count: absent, wrong-size (both with --storage-addr), no-end, missing-segment (e.g. no-end=2)")
	f.StringVar(&o.storageAddr, "storage-addr", "", "serve a test storage on HOST:PORT for the uploaded files, and point their fileUrls at it (give recledger the same address in --storage-hosts)")
	f.DurationVar(&o.maxOpen, "max-recording-length", simulator.DefaultMaxOpen, "the server's --max-recording-length, which --verify's not_ended findings depend on")
	f.DurationVar(&o.verifyWait, "verify-wait", 30*time.Second, "with --verify and --storage-addr: how long to wait for storage checks while none finishes")
	f.StringVar(&o.print, "print", "", "write the signed requests instead of sending: curl or jsonl")
	f.BoolVar(&o.asJSON, "json", false, "print the summary as JSON")
	f.Float64Var(&o.rate, "rate", 0, "load mode: offer this many callbacks per second for --duration (one attempt each) and report throughput and latency")
	f.DurationVar(&o.duration, "duration", 0, "load mode: how long to offer load (with --rate; alone, as fast as --concurrency allows)")
	f.BoolVar(&o.verify, "verify", false, "afterwards, compare every recording recledger's query API shows with what was acknowledged (mismatches count after 5 s: another instance on the same PostgreSQL follows within a second)")
	f.StringVar(&o.server, "server", "", "recledger's URL for --verify (env RECLEDGER_SERVER; default: --to's host)")
	f.StringVar(&o.token, "api-token", "", "its API token for --verify (env RECLEDGER_API_TOKEN)")
	cobra.CheckErr(cmd.MarkFlagRequired("app"))
	return cmd
}

func runSimulate(cmd *cobra.Command, o simulateOptions) error {
	key, secret, ok := strings.Cut(o.app, "=")
	if !ok || key == "" || secret == "" {
		return errors.New("--app: want KEY=SECRET")
	}
	style, err := rc.ParseStyle(o.style)
	if err != nil {
		return err
	}
	var modes []rc.Mode
	if o.modes != "" {
		for _, m := range strings.Split(o.modes, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(m))
			if err != nil || !rc.Mode(n).Known() {
				return fmt.Errorf("--modes %q: want numbers from 0 to 6", o.modes)
			}
			modes = append(modes, rc.Mode(n))
		}
	}
	for name, v := range map[string]float64{"upload-failures": o.uploadFailures, "never-uploaded": o.never, "failed-recordings": o.failed} {
		if v < 0 || v > 1 {
			return fmt.Errorf("--%s %v: want a share from 0 to 1", name, v)
		}
	}
	faults, err := simulator.ParseFaults(o.faults)
	if err != nil {
		return fmt.Errorf("--faults: %w", err)
	}
	if o.recordings < 0 {
		return errors.New("--recordings: want 0 or more")
	}
	if o.storageAddr != "" && (o.print != "" || o.rate > 0 || o.duration > 0) {
		return errors.New("--storage-addr: the test storage serves a run's uploads; it has no use with --print or the load mode")
	}
	if o.maxOpen <= 0 || o.verifyWait <= 0 {
		return errors.New("--max-recording-length and --verify-wait: want a positive duration")
	}
	var storageURL string
	var ln net.Listener
	if o.storageAddr != "" {
		if ln, err = net.Listen("tcp", o.storageAddr); err != nil {
			return fmt.Errorf("--storage-addr: %w", err)
		}
		defer ln.Close()
		storageURL = "http://" + ln.Addr().String()
	}
	o.seed, o.seeded = scenarioSeed(cmd, o.seed)
	recs := simulator.Generate(placed(simulator.Options{AppKey: key, Recordings: o.recordings, Modes: modes, Seed: o.seed,
		UploadFailures: o.uploadFailures, NeverUploaded: o.never, FailedRecordings: o.failed, Faults: faults, Storage: storageURL}, o))
	signer := rc.Signer{AppKey: key, Secret: secret, Style: style}
	if o.print != "" {
		return printRequests(cmd.OutOrStdout(), o, key, signer, recs)
	}
	var storage *simulator.Storage
	if ln != nil {
		storage = simulator.NewStorage(recs)
		srv := &http.Server{Handler: storage, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln) // returns when srv closes, below
		defer srv.Close()
	}
	u, err := url.Parse(o.to)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--to %q: want the receiver's http or https callback URL", o.to)
	}
	d := &simulator.Deliverer{URL: o.to, Signer: signer}
	if o.rate > 0 || o.duration > 0 {
		return runLoad(cmd, o, d, key)
	}
	progress := progressBar(cmd)
	out := simulator.Run(cmd.Context(), d, key, recs, simulator.RunOptions{Speed: o.speed, Concurrency: o.concurrency,
		Faults: faults, Seed: o.seed, Progress: progress})
	if progress != nil {
		fmt.Fprintln(cmd.ErrOrStderr())
	}
	sum := out.Summary
	if o.asJSON {
		if err := printJSON(cmd.OutOrStdout(), sum); err != nil {
			return err
		}
	} else {
		printSummary(cmd.OutOrStdout(), sum)
	}
	if sum.Failed > 0 {
		return fmt.Errorf("%d of %d callbacks were never answered 200", sum.Failed, sum.Callbacks)
	}
	if len(sum.Unexpected) > 0 {
		return fmt.Errorf("%d injected faults were not answered as they should be, first: %s", len(sum.Unexpected), sum.Unexpected[0])
	}
	if !o.verify {
		return nil
	}
	server := o.server
	if server == "" {
		server = environ("RECLEDGER_SERVER")
	}
	if server == "" {
		server = u.Scheme + "://" + u.Host
	}
	token := o.token
	if token == "" {
		token = environ("RECLEDGER_API_TOKEN")
	}
	res, err := verifyRun(cmd, o, simulator.VerifyOptions{Server: server, Token: token, Storage: storage, MaxOpen: o.maxOpen}, recs, out.Acked)
	if err != nil {
		return err
	}
	mismatches := res.Mismatches
	if len(mismatches) > 0 {
		affected := printMismatches(cmd.OutOrStdout(), mismatches, mismatchLines)
		if storage != nil && len(res.Verifications) == 0 {
			fmt.Fprintf(cmd.OutOrStdout(), "no uploaded file shows a storage verification: is recledger running with --verify-storage --storage-hosts %s?\n",
				strings.TrimPrefix(storageURL, "http://"))
		}
		return fmt.Errorf("verify: %d mismatches in %d of %d recordings", len(mismatches), affected, len(recs))
	}
	if !o.asJSON {
		fmt.Fprintf(cmd.OutOrStdout(), "verify: %d recordings match what was acknowledged\n", len(recs))
		printChecked(cmd.OutOrStdout(), res, storage)
	}
	return nil
}

// verifyRun runs the oracle until its answer is final. Storage checks
// take their time (the server paces them per host), so while files are
// pending it polls, as long as their number keeps falling within
// --verify-wait. Then, since the instance that acknowledged a callback
// shows it at once but another instance on the same PostgreSQL follows
// within a second (docs/architecture.md), mismatches, and clock findings
// on the edge of their limit, are looked at again for a few seconds
// before they count: a wrong ledger stays wrong.
func verifyRun(cmd *cobra.Command, o simulateOptions, opts simulator.VerifyOptions, recs []simulator.Recording, acked map[string][]simulator.Callback) (simulator.VerifyResult, error) {
	var (
		settle     time.Time
		progressAt = time.Now()
		pending    = -1
	)
	for {
		res, err := simulator.VerifyWith(cmd.Context(), opts, recs, acked)
		if err != nil {
			return res, err
		}
		now, again, pause := time.Now(), false, 200*time.Millisecond
		if res.Pending > 0 {
			if pending < 0 || res.Pending < pending {
				progressAt = now
			}
			pending, pause = res.Pending, time.Second
			again = now.Sub(progressAt) < o.verifyWait
		} else {
			if settle.IsZero() {
				settle = now.Add(verifySettle)
			}
			again = (len(res.Mismatches) > 0 || res.Undecided > 0) && now.Before(settle)
		}
		if !again {
			return res, nil
		}
		select {
		case <-time.After(pause):
		case <-cmd.Context().Done():
			return res, cmd.Context().Err()
		}
	}
}

// printChecked says what --verify checked beyond the recordings' fields.
func printChecked(w io.Writer, res simulator.VerifyResult, storage *simulator.Storage) {
	if !res.FindingsChecked {
		fmt.Fprintln(w, "verify: findings not checked (the server does not report them)")
	} else if len(res.Findings) == 0 {
		fmt.Fprintln(w, "verify: no findings, and none expected")
	} else {
		fmt.Fprintf(w, "verify: findings as expected: %s\n", counts(res.Findings))
	}
	if storage != nil {
		r := storage.Requests()
		fmt.Fprintf(w, "verify: storage verification as expected: %s (the storage answered %d HEAD, %d ranged GET, %d whole GET, %d refused)\n",
			counts(res.Verifications), r.Head, r.Ranged, r.Whole, r.Refused)
	}
}

// counts renders a count by name as "a ×2, b ×1", by name.
func counts(m map[string]int) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s ×%d", k, m[k])
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// scenarioSeed returns the --seed when given, and reports so; otherwise a
// fresh seed, so that this run's recordIds are its own: a second run
// against the same server must not add files to the first run's
// recordings (its file names carry the new run's times).
func scenarioSeed(cmd *cobra.Command, seed uint64) (uint64, bool) {
	if cmd.Flags().Changed("seed") {
		return seed, true
	}
	return rand.Uint64(), false
}

// seededEnd is where a seeded scenario's simulated time ends (or, with
// --speed, starts): fixed, so the same seed gives byte-identical
// callbacks on any day, and in the past, so none lies in the future.
var seededEnd = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

const seededEndText = "2025-01-01 00:00:00 UTC"

// placed sets the scenario's place in time. Unseeded, it ends now when the
// run does not wait for simulated time (everything it reports has then
// happened), and starts now when --speed plays it out.
func placed(opts simulator.Options, o simulateOptions) simulator.Options {
	switch {
	case o.seeded:
		opts.End = seededEnd
	case o.speed > 0 && o.rate <= 0 && o.duration <= 0:
		opts.Start = time.Now().Truncate(time.Millisecond)
	default:
		opts.End = time.Now()
	}
	return opts
}

// mismatchLines is how many mismatches --verify prints one by one; the
// rest are counted by kind. A ledger wrong in one way is wrong in the same
// way for every recording, and thousands of lines hide that.
const mismatchLines = 20

// printMismatches writes the first limit mismatches, then a count of the
// rest and of every mismatch by kind, and returns how many recordings are
// affected.
func printMismatches(w io.Writer, ms []simulator.Mismatch, limit int) int {
	recs := map[string]bool{}
	kinds := map[string]int{}
	for i, m := range ms {
		if i < limit {
			fmt.Fprintln(w, "MISMATCH", m)
		}
		recs[m.RecordID] = true
		kinds[m.Kind]++
	}
	names := make([]string, 0, len(kinds))
	for k := range kinds {
		names = append(names, k)
	}
	// Most frequent first; ties by name, so the line reads the same each time.
	sort.Slice(names, func(i, j int) bool {
		if kinds[names[i]] != kinds[names[j]] {
			return kinds[names[i]] > kinds[names[j]]
		}
		return names[i] < names[j]
	})
	byKind := make([]string, len(names))
	for i, k := range names {
		byKind[i] = fmt.Sprintf("%s ×%d", k, kinds[k])
	}
	more := ""
	if len(ms) > limit {
		more = fmt.Sprintf("... and %d more; ", len(ms)-limit)
	}
	fmt.Fprintf(w, "%s%d mismatches in %d recordings by kind: %s\n", more, len(ms), len(recs), strings.Join(byKind, ", "))
	return len(recs)
}

// verifySettle is how long --verify lets the server's projections settle
// before a mismatch counts.
const verifySettle = 5 * time.Second

// runLoad offers callbacks at --rate for --duration and reports what the
// receiver sustained: the ingest benchmark, from outside.
func runLoad(cmd *cobra.Command, o simulateOptions, d *simulator.Deliverer, key string) error {
	if o.duration <= 0 {
		return errors.New("load mode: --duration is required with --rate")
	}
	// Enough recordings for the offered rate (about six callbacks each), or
	// for 100,000 callbacks a second when the rate is open.
	rate := o.rate
	if rate <= 0 {
		rate = 100_000
	}
	n := int(rate*o.duration.Seconds()/5) + 100
	recs := simulator.Generate(placed(simulator.Options{AppKey: key, Recordings: n, Seed: o.seed}, o))
	res := simulator.Load(cmd.Context(), d, key, recs, simulator.LoadOptions{Rate: o.rate, Duration: o.duration, Concurrency: o.concurrency})
	if o.asJSON {
		return printJSON(cmd.OutOrStdout(), res)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "offered %.0f/s for %s with %d workers: sent %d, delivered %d (%.0f/s)\n",
		res.Offered, o.duration, o.concurrency, res.Sent, res.Delivered, res.PerSecond)
	fmt.Fprintf(cmd.OutOrStdout(), "latency p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; answers %v\n",
		res.P50ms, res.P90ms, res.P99ms, res.MaxMs, res.Statuses)
	return nil
}

// progressBar returns a progress callback drawing on stderr when it is a
// terminal, at most ten times a second; nil otherwise.
func progressBar(cmd *cobra.Command) func(done, total int) {
	f, ok := cmd.ErrOrStderr().(*os.File)
	if !ok {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	var last time.Time
	return func(done, total int) {
		if done != total && time.Since(last) < 100*time.Millisecond {
			return
		}
		last = time.Now()
		const width = 30
		filled := width * done / max(total, 1)
		fmt.Fprintf(f, "\r[%s%s] %d/%d callbacks", strings.Repeat("#", filled), strings.Repeat(" ", width-filled), done, total)
	}
}

func printSummary(w io.Writer, s simulator.Summary) {
	statuses := make([]string, 0, len(s.Statuses))
	for k := range s.Statuses {
		statuses = append(statuses, k)
	}
	sort.Strings(statuses)
	var answers []string
	for _, k := range statuses {
		label := k
		if k == "0" {
			label = "no answer"
		}
		answers = append(answers, fmt.Sprintf("%s×%d", label, s.Statuses[k]))
	}
	fmt.Fprintf(w, "recordings %d, callbacks %d: delivered %d, failed %d, dropped (fault) %d\n", s.Recordings, s.Callbacks, s.Delivered, s.Failed, s.Dropped)
	if len(s.Injected) > 0 {
		names := make([]string, 0, len(s.Injected))
		for k := range s.Injected {
			names = append(names, k)
		}
		sort.Strings(names)
		var parts []string
		for _, k := range names {
			parts = append(parts, fmt.Sprintf("%s %d", k, s.Injected[k]))
		}
		fmt.Fprintf(w, "faults injected: %s; answered unexpectedly: %d\n", strings.Join(parts, ", "), len(s.Unexpected))
	}
	fmt.Fprintf(w, "requests %d (retries %d), answers %s\n", s.Requests, s.Retries, strings.Join(answers, " "))
	fmt.Fprintf(w, "latency of delivered callbacks p50 %.2f ms, p99 %.2f ms; took %s\n", s.P50ms, s.P99ms, s.Elapsed.Round(time.Millisecond))
}

// printRequests writes every callback as a signed request, in time order
// per recording, without sending it.
func printRequests(w io.Writer, o simulateOptions, key string, signer rc.Signer, recs []simulator.Recording) error {
	target := o.to
	if target == "" {
		target = defaultCallbackURL
	}
	for _, rec := range recs {
		for _, c := range rec.Callbacks(key) {
			u, err := url.Parse(target)
			if err != nil {
				return fmt.Errorf("--to: %w", err)
			}
			req := &http.Request{Method: http.MethodPost, URL: u, Header: http.Header{}}
			signer.Apply(req, signer.Sign())
			switch o.print {
			case "curl":
				fmt.Fprintf(w, "curl -sS -X POST %s -H %s", shellQuote(req.URL.String()), shellQuote("Content-Type: application/json"))
				for k := range req.Header {
					fmt.Fprintf(w, " -H %s", shellQuote(k+": "+req.Header.Get(k)))
				}
				fmt.Fprintf(w, " --data-binary %s\n", shellQuote(string(c.Body)))
			case "jsonl":
				line := struct {
					At      time.Time       `json:"at"`
					URL     string          `json:"url"`
					Headers http.Header     `json:"headers"`
					Body    json.RawMessage `json:"body"`
				}{c.At, req.URL.String(), req.Header, c.Body}
				enc := json.NewEncoder(w)
				enc.SetEscapeHTML(false)
				if err := enc.Encode(line); err != nil {
					return err
				}
			default:
				return fmt.Errorf("--print %q: want curl or jsonl", o.print)
			}
		}
	}
	return nil
}
