package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// stream is go test -json as Go 1.26 writes it, cut down: a passing test,
// a failing one, skips for want of PostgreSQL, Chromium and curl, a skip
// in -short mode, a full-disk test that skipped without root, and a
// package that does not build.
const stream = `{"Action":"start","Package":"p/a"}
{"Action":"run","Package":"p/a","Test":"TestOK"}
{"Action":"output","Package":"p/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"p/a","Test":"TestOK","Output":"--- PASS: TestOK (0.00s)\n"}
{"Action":"pass","Package":"p/a","Test":"TestOK"}
{"Action":"run","Package":"p/a","Test":"TestBroken"}
{"Action":"output","Package":"p/a","Test":"TestBroken","Output":"=== RUN   TestBroken\n"}
{"Action":"output","Package":"p/a","Test":"TestBroken","Output":"    a_test.go:9: got 1, want 2\n"}
{"Action":"output","Package":"p/a","Test":"TestBroken","Output":"--- FAIL: TestBroken (0.00s)\n"}
{"Action":"fail","Package":"p/a","Test":"TestBroken"}
{"Action":"run","Package":"p/a","Test":"TestStore/postgres"}
{"Action":"output","Package":"p/a","Test":"TestStore/postgres","Output":"=== RUN   TestStore/postgres\n"}
{"Action":"output","Package":"p/a","Test":"TestStore/postgres","Output":"    a_test.go:20: set RECLEDGER_TEST_POSTGRES_URL to run the PostgreSQL tests\n"}
{"Action":"output","Package":"p/a","Test":"TestStore/postgres","Output":"--- SKIP: TestStore/postgres (0.00s)\n"}
{"Action":"skip","Package":"p/a","Test":"TestStore/postgres"}
{"Action":"output","Package":"p/a","Output":"FAIL\n"}
{"Action":"output","Package":"p/a","Output":"FAIL\tp/a\t0.01s\n"}
{"Action":"fail","Package":"p/a"}
{"Action":"run","Package":"p/b","Test":"TestBrowser"}
{"Action":"output","Package":"p/b","Test":"TestBrowser","Output":"    b_test.go:41: no chromium: install Debian's chromium or set RECLEDGER_TEST_CHROMIUM\n"}
{"Action":"skip","Package":"p/b","Test":"TestBrowser"}
{"Action":"run","Package":"p/b","Test":"TestSign"}
{"Action":"output","Package":"p/b","Test":"TestSign","Output":"    b_test.go:242: curl is not installed; .ci/run installs it\n"}
{"Action":"skip","Package":"p/b","Test":"TestSign"}
{"Action":"run","Package":"p/b","Test":"TestCrash"}
{"Action":"output","Package":"p/b","Test":"TestCrash","Output":"    b_test.go:262: crash test skipped in -short mode\n"}
{"Action":"skip","Package":"p/b","Test":"TestCrash"}
{"Action":"run","Package":"p/b","Test":"TestFullDiskAnswers503"}
{"Action":"output","Package":"p/b","Test":"TestFullDiskAnswers503","Output":"    b_test.go:300: needs root to mount a tmpfs\n"}
{"Action":"skip","Package":"p/b","Test":"TestFullDiskAnswers503"}
{"Action":"output","Package":"p/b","Output":"PASS\n"}
{"Action":"output","Package":"p/b","Output":"ok  \tp/b\t0.02s\n"}
{"Action":"pass","Package":"p/b"}
{"ImportPath":"p/c [p/c.test]","Action":"build-output","Output":"# p/c [p/c.test]\n"}
{"ImportPath":"p/c [p/c.test]","Action":"build-output","Output":"c_test.go:3:1: syntax error\n"}
{"ImportPath":"p/c [p/c.test]","Action":"build-fail"}
`

func TestCheck(t *testing.T) {
	var out strings.Builder
	r, err := check(strings.NewReader(stream), &out)
	if err != nil {
		t.Fatal(err)
	}
	wantOut := "=== RUN   TestBroken\n    a_test.go:9: got 1, want 2\n--- FAIL: TestBroken (0.00s)\n" +
		"FAIL\nFAIL\tp/a\t0.01s\nok  \tp/b\t0.02s\n# p/c [p/c.test]\nc_test.go:3:1: syntax error\n"
	if diff := cmp.Diff(wantOut, out.String()); diff != "" {
		t.Errorf("printed (-want +got):\n%s", diff)
	}
	if r.passed != 1 || r.failed != 1 || len(r.skipped) != 5 {
		t.Errorf("passed %d, failed %d, skipped %d; want 1, 1, 5", r.passed, r.failed, len(r.skipped))
	}
	if want := []string{"p/a", "p/c [p/c.test]"}; !cmp.Equal(want, r.failedPkgs) {
		t.Errorf("failing packages %q, want %q", r.failedPkgs, want)
	}
	markers := []string{"RECLEDGER_TEST_POSTGRES_URL", "RECLEDGER_TEST_CHROMIUM", "chromium", "curl"}
	names := regexp.MustCompile("^TestFullDisk")
	var got []string
	for _, s := range r.skipped {
		if required(s, markers, names) {
			got = append(got, s.test)
		}
	}
	if want := []string{"TestStore/postgres", "TestBrowser", "TestSign", "TestFullDiskAnswers503"}; !cmp.Equal(want, got) {
		t.Errorf("required skips %q, want %q", got, want)
	}
	if got := r.skipped[0].message; got != "a_test.go:20: set RECLEDGER_TEST_POSTGRES_URL to run the PostgreSQL tests" {
		t.Errorf("skip message %q", got)
	}
}
