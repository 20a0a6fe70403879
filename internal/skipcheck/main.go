// Command skipcheck reads `go test -json` from its input, prints what a
// plain `go test` would (each package's result, the output of failed
// tests, build errors), and exits non-zero when a test failed or when a
// test that CI must run skipped: one whose skip message names a service
// it needs (PostgreSQL's RECLEDGER_TEST_POSTGRES_URL, NATS's
// RECLEDGER_TEST_NATS_URL, Chromium, curl, nginx, caddy, Litestream's
// RECLEDGER_TEST_LITESTREAM, podman for the container image,
// systemd-analyze for the unit, promtool for docs/alerts.yml) or
// whose name CI requires (TestFullDisk*, which needs root for a tmpfs).
//
// .ci/run pipes the README's test command through it, so that a test that
// quietly skipped for want of a service fails CI instead of passing it.
//
//	go test -json ./... | go run ./internal/skipcheck
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output and build-fail events
	Test       string
	Output     string
}

// skip is a test that skipped, with what it printed.
type skip struct {
	pkg, test, message string
}

// report is what one run of go test -json came to.
type report struct {
	passed, failed int
	skipped        []skip
	failedPkgs     []string
}

// check copies the human part of the stream in to out and returns the
// report. Output of tests is held until the test ends: printed if it
// failed, kept as the message if it skipped, dropped if it passed.
func check(in io.Reader, out io.Writer) (report, error) {
	var r report
	held := map[string][]string{} // package + test -> output lines
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			fmt.Fprintf(out, "%s\n", line) // not an event (go vet's or the linker's words): pass it on
			continue
		}
		key := e.Package + " " + e.Test
		switch {
		case e.Action == "build-output":
			fmt.Fprint(out, e.Output)
		case e.Action == "build-fail":
			r.failedPkgs = append(r.failedPkgs, e.ImportPath)
		case e.Test == "":
			if e.Action == "output" && e.Output != "PASS\n" && !strings.HasPrefix(e.Output, "=== ") {
				fmt.Fprint(out, e.Output)
			}
			if e.Action == "fail" {
				r.failedPkgs = append(r.failedPkgs, e.Package)
			}
		case e.Action == "output":
			held[key] = append(held[key], e.Output)
		case e.Action == "pass":
			r.passed++
			delete(held, key)
		case e.Action == "fail":
			r.failed++
			fmt.Fprint(out, strings.Join(held[key], ""))
			delete(held, key)
		case e.Action == "skip":
			r.skipped = append(r.skipped, skip{e.Package, e.Test, skipMessage(held[key])})
			delete(held, key)
		}
	}
	return r, sc.Err()
}

// skipMessage is what a skipped test said, without go test's framing.
func skipMessage(lines []string) string {
	var msg []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		msg = append(msg, t)
	}
	return strings.Join(msg, " ")
}

// required reports whether a skipped test is one CI must run.
func required(s skip, markers []string, names *regexp.Regexp) bool {
	if names != nil && names.MatchString(strings.Split(s.test, "/")[0]) {
		return true
	}
	lower := strings.ToLower(s.message)
	for _, m := range markers {
		if m != "" && strings.Contains(lower, strings.ToLower(m)) {
			return true
		}
	}
	return false
}

func main() {
	markers := flag.String("markers", "RECLEDGER_TEST_POSTGRES_URL,RECLEDGER_TEST_NATS_URL,RECLEDGER_TEST_CHROMIUM,RECLEDGER_TEST_LITESTREAM,chromium,curl,nginx,caddy,podman,systemd-analyze,promtool",
		"comma-separated words: a skipped test whose message holds one fails the check")
	// TestRestoreAsRoot* restores into a directory another user owns,
	// which takes root, as TestFullDisk*'s tmpfs does.
	names := flag.String("names", "^(TestFullDisk|TestRestoreAsRoot)", "a skipped test whose name matches this regular expression fails the check")
	flag.Parse()
	re, err := regexp.Compile(*names)
	if err != nil {
		fmt.Fprintln(os.Stderr, "skipcheck: -names:", err)
		os.Exit(2)
	}
	r, err := check(os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "skipcheck: reading go test -json:", err)
		os.Exit(2)
	}
	var bad []string
	for _, s := range r.skipped {
		if required(s, strings.Split(*markers, ","), re) {
			bad = append(bad, fmt.Sprintf("  %s %s: %s", s.pkg, s.test, s.message))
		}
	}
	sort.Strings(bad)
	fmt.Printf("tests: %d passed, %d failed, %d skipped (%d of them required in CI)\n", r.passed, r.failed, len(r.skipped), len(bad))
	status := 0
	if len(bad) > 0 {
		fmt.Println("FAIL: tests CI must run were skipped:")
		fmt.Println(strings.Join(bad, "\n"))
		status = 1
	}
	if r.failed > 0 || len(r.failedPkgs) > 0 {
		fmt.Printf("FAIL: %d tests failed; packages failing: %s\n", r.failed, strings.Join(r.failedPkgs, " "))
		status = 1
	}
	os.Exit(status)
}
