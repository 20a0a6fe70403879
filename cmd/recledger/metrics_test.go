package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
)

// TestCommitHistogramsAgree: every successful group commit is observed by
// both commit histograms, a commit holding only quarantined requests
// included (it was one the batch histogram skipped); a failed one by
// neither.
func TestCommitHistogramsAgree(t *testing.T) {
	m := newMetrics(func(context.Context, time.Time) (ledger.Stats, error) { return ledger.Stats{}, nil }, nil, nil)
	for _, c := range []struct {
		callbacks, rejections int
		err                   error
	}{
		{3, 0, nil},
		{0, 2, nil}, // refused requests only
		{1, 1, nil},
		{2, 0, errors.New("disk full")},
	} {
		m.onCommit(c.callbacks, c.rejections, time.Millisecond, c.err)
	}
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts, sums := map[string]uint64{}, map[string]float64{}
	for _, f := range families {
		if h := f.GetMetric()[0].GetHistogram(); h != nil {
			counts[f.GetName()], sums[f.GetName()] = h.GetSampleCount(), h.GetSampleSum()
		}
	}
	if counts["recledger_commit_batch_size"] != 3 || counts["recledger_commit_seconds"] != 3 {
		t.Errorf("counts: batch %d, seconds %d; want 3 and 3", counts["recledger_commit_batch_size"], counts["recledger_commit_seconds"])
	}
	if sums["recledger_commit_batch_size"] != 7 {
		t.Errorf("batch sum %v, want 7 requests committed", sums["recledger_commit_batch_size"])
	}
}

// TestServeMetricsBuildInfoAndCommits: the running server shows its build
// (the version it was stamped with, this toolchain) and commit
// histograms whose counts agree after stored and quarantined callbacks.
func TestServeMetricsBuildInfoAndCommits(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
	srv.postSeeds(t, "type1-start.json")
	// Refused, and quarantined in a commit of its own.
	resp, err := testClient.Post("http://"+srv.addr+"/v1/callbacks/recording", "application/json", bytes.NewReader([]byte(`{"type":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("unsigned callback: %d, want 401", resp.StatusCode)
	}
	resp, err = testClient.Get("http://" + srv.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	info := regexp.MustCompile(`(?m)^recledger_build_info\{(.*)\} 1$`).FindSubmatch(text)
	if info == nil {
		t.Fatalf("no recledger_build_info:\n%s", text)
	}
	for _, want := range []string{`version="` + stampedVersion + `"`, `goversion="` + runtime.Version() + `"`, `revision="`} {
		if !strings.Contains(string(info[1]), want) {
			t.Errorf("recledger_build_info{%s} lacks %s", info[1], want)
		}
	}
	count := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `_count (\d+)$`).FindSubmatch(text)
		if m == nil {
			t.Fatalf("no %s_count", name)
		}
		return string(m[1])
	}
	if b, s := count("recledger_commit_batch_size"), count("recledger_commit_seconds"); b != s || b == "0" {
		t.Errorf("commit counts disagree: batch size %s, seconds %s", b, s)
	}
}
