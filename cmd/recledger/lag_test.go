package main

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// TestCallbackLag: configured apps label their series, others share
// "other"; a callback stamped after its arrival counts as 0 and as clock
// ahead; one without a timestamp is not counted.
func TestCallbackLag(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := newLagMetrics(reg)
	l.known = func(k string) bool { return k == "app" }
	at := time.UnixMilli(1_800_000_000_000)
	for _, c := range []struct {
		app string
		ts  int64
	}{
		{"app", at.UnixMilli() - 2500}, // 2.5 s late
		{"app", at.UnixMilli() + 1000}, // RC's clock a second ahead
		{"stranger", at.UnixMilli() - 100},
		{"app", 0}, // no timestamp
	} {
		l.onStored(&rc.Callback{AppKey: c.app, Timestamp: c.ts}, at)
	}
	want := map[string]float64{
		"recledger_callback_lag_seconds count app":   2,   // the callback without a timestamp is not counted
		"recledger_callback_lag_seconds sum app":     2.5, // the one ahead counts 0
		"recledger_callback_lag_seconds count other": 1,
		"recledger_callback_lag_seconds sum other":   0.1,
		"recledger_callback_clock_ahead_total app":   1,
		"recledger_callback_clock_ahead_total other": 0,
	}
	got := gathered(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want)+2 { // and the upload lag's count and sum
		t.Errorf("series %v, want only app and other", got)
	}

	// Upload lag: observed for a complete recording, negative as 0.
	end, up := int64(1000), int64(61_000)
	l.onCompleted(&ledger.State{EndedAt: &end, Files: map[string]ledger.FileState{"a": {UploadFrom: &rc.Key{}, UploadedAt: &up}}})
	l.onCompleted(&ledger.State{EndedAt: &up, Files: map[string]ledger.FileState{"a": {UploadFrom: &rc.Key{}, UploadedAt: &end}}})
	l.onCompleted(&ledger.State{EndedAt: &end, Files: map[string]ledger.FileState{"a": {}}}) // not uploaded: none
	got = gathered(t, reg)
	if got["recledger_upload_lag_seconds count "] != 2 || got["recledger_upload_lag_seconds sum "] != 60 {
		t.Errorf("upload lag: count %v, sum %v; want 2 and 60", got["recledger_upload_lag_seconds count "], got["recledger_upload_lag_seconds sum "])
	}
}

// gathered reads reg's series as "NAME count|sum APP" (histograms) and
// "NAME APP" (counters).
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			app := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "app" {
					app = l.GetValue()
				}
			}
			if h := m.GetHistogram(); h != nil {
				out[mf.GetName()+" count "+app] = float64(h.GetSampleCount())
				out[mf.GetName()+" sum "+app] = h.GetSampleSum()
				continue
			}
			out[mf.GetName()+" "+app] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestFindingCounts: the scrape's gauges count recordings, once per kind
// each has (a recording with two gaps is one), over every page of the
// list.
func TestFindingCounts(t *testing.T) {
	const slice = 30 * 60_000
	now := time.UnixMilli(1_800_000_000_000)
	name := func(at int64) string { return fmt.Sprintf("S_R_u_%d.mp4", at) }
	gaps := ledger.State{RecordID: "gaps", SessionID: "S", RoomID: "R", UserID: "u", Mode: rc.ModeVideo,
		Config: &rc.Config{SlicesMin: 30}, FirstSeenAt: now.UnixMilli(), LastEventAt: now.UnixMilli(),
		Files: map[string]ledger.FileState{name(0): {}, name(2 * slice): {}, name(4 * slice): {}}} // two gaps
	stalled := ledger.State{RecordID: "stalled", Config: &rc.Config{SlicesMin: 30},
		FirstSeenAt: now.UnixMilli() - 3*slice, LastEventAt: now.UnixMilli() - 3*slice}
	pages := map[string]ledger.RecordingPage{
		"":   {Items: []ledger.State{gaps}, Next: "p2"},
		"p2": {Items: []ledger.State{stalled, gaps}},
	}
	list := func(_ context.Context, f ledger.RecordingFilter) (ledger.RecordingPage, error) {
		if f.Finding != ledger.FindingAny || !f.Now.Equal(now) {
			t.Errorf("listed with %+v", f)
		}
		return pages[f.Cursor], nil
	}
	counts, err := findingCounts(list, ledger.FindingRules{})(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	want := map[ledger.FindingKind]int64{ledger.FindingSegmentGap: 2, ledger.FindingStalled: 1}
	if !maps.Equal(counts, want) {
		t.Errorf("counts %v, want %v", counts, want)
	}
}

// TestUploadLagBeforeTheMetrics: serve makes the lag series before the
// store opens, whose projection may complete recordings at once (a log
// ahead of its ledger) on its own goroutine: what they observe then is
// served with the other metrics.
func TestUploadLagBeforeTheMetrics(t *testing.T) {
	l := newLagMetrics(nil)
	end, up := int64(1000), int64(31_000)
	l.onCompleted(&ledger.State{EndedAt: &end, Files: map[string]ledger.FileState{"a": {UploadFrom: &rc.Key{}, UploadedAt: &up}}})
	m := newMetrics(func(context.Context, time.Time) (ledger.Stats, error) { return ledger.Stats{}, nil }, nil, l)
	got := gathered(t, m.reg)
	if got["recledger_upload_lag_seconds count "] != 1 || got["recledger_upload_lag_seconds sum "] != 30 {
		t.Errorf("upload lag: count %v, sum %v; want 1 and 30", got["recledger_upload_lag_seconds count "], got["recledger_upload_lag_seconds sum "])
	}
}
