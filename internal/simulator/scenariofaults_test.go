package simulator

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/rc"
)

func TestParseFaults(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Faults
	}{
		{"", Faults{}},
		{"dup=0.1, no-end=2", Faults{Dup: 0.1, NoEnd: Share{Count: 2}}},
		{"absent=1,wrong-size=1.0,missing-segment=0.25", Faults{Absent: Share{Count: 1}, WrongSize: Share{Rate: 1}, MissingSegment: Share{Rate: 0.25}}},
		{"no-end=0", Faults{}},
		{"all=0.5", Faults{Dup: 0.5, Reorder: 0.5, Delay: 0.5, Drop: 0.5, BadSig: 0.5, Replay: 0.5, Malformed: 0.5, Unknown: 0.5,
			Absent: Share{Rate: 0.5}, WrongSize: Share{Rate: 0.5}, NoEnd: Share{Rate: 0.5}, MissingSegment: Share{Rate: 0.5}}},
		{"all=0.5,no-end=3", Faults{Dup: 0.5, Reorder: 0.5, Delay: 0.5, Drop: 0.5, BadSig: 0.5, Replay: 0.5, Malformed: 0.5, Unknown: 0.5,
			Absent: Share{Rate: 0.5}, WrongSize: Share{Rate: 0.5}, NoEnd: Share{Count: 3}, MissingSegment: Share{Rate: 0.5}}},
	} {
		got, err := ParseFaults(tt.in)
		if err != nil {
			t.Errorf("ParseFaults(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseFaults(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	for _, bad := range []string{"dup=2", "dup=NaN", "no-end=NaN", "no-end=-1", "no-end=1.5", "no-end=2000000", "no-end=", "no-end",
		"absent=0x10", "all=2", "gone=0.1", "dup=0.1,,", "missing-segment=1e400", "wrong-size=\x00",
		"no-end=" + strings.Repeat("9", 1<<20), strings.Repeat("dup=0.1,", 1<<16) + "x=1"} {
		if f, err := ParseFaults(bad); err == nil {
			t.Errorf("ParseFaults(%q) = %+v, want an error", bad, f)
		}
	}
}

func FuzzParseFaults(f *testing.F) {
	for _, s := range []string{"", "all=0.1", "dup=0.1,no-end=2", "absent=1,wrong-size=1.0", "missing-segment=0.25 , reorder=1", "no-end=NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseFaults(s)
		if err != nil {
			return
		}
		for _, r := range []float64{got.Dup, got.Reorder, got.Delay, got.Drop, got.BadSig, got.Replay, got.Malformed, got.Unknown} {
			if !(r >= 0 && r <= 1) {
				t.Fatalf("ParseFaults(%q) accepted rate %v", s, r)
			}
		}
		for _, sh := range []Share{got.Absent, got.WrongSize, got.NoEnd, got.MissingSegment} {
			if !(sh.Rate >= 0 && sh.Rate <= 1) || sh.Count < 0 || sh.Count > maxFaultCount || sh.Rate > 0 && sh.Count > 0 {
				t.Fatalf("ParseFaults(%q) accepted share %+v", s, sh)
			}
		}
	})
}

// faulty generates a scenario with every scenario fault, sized so that
// each has candidates.
func faulty(seed uint64, start time.Time, f Faults) []Recording {
	return Generate(Options{AppKey: "app", Recordings: 60, Seed: seed, Start: start, FailedRecordings: 0.1,
		UploadFailures: 0.2, NeverUploaded: 0.05, Faults: f, Storage: "http://127.0.0.1:9"})
}

var everyFault = Faults{Absent: Share{Count: 3}, WrongSize: Share{Count: 4}, NoEnd: Share{Count: 5}, MissingSegment: Share{Count: 6}}

// TestScenarioFaultsAreDeterministic: the same seed hits the same files
// and recordings wherever the scenario lies in time; another seed others.
func TestScenarioFaultsAreDeterministic(t *testing.T) {
	hits := func(recs []Recording) []string {
		var out []string
		for _, rec := range recs {
			if rec.NoEnd {
				out = append(out, "no-end "+rec.RecordID)
			}
			for _, f := range rec.Skipped {
				out = append(out, "missing "+f.Name[strings.LastIndexByte(f.Name, '_'):])
			}
			for _, f := range rec.Files {
				if f.Absent || f.StoredSize != f.Size {
					out = append(out, "storage "+rec.RecordID+f.Name[strings.LastIndexByte(f.Name, '_'):])
				}
			}
		}
		return out
	}
	a := hits(faulty(3, time.UnixMilli(vt0), everyFault))
	b := hits(faulty(3, time.UnixMilli(vt0).Add(1000*time.Hour), everyFault))
	// Names carry timestamps; the recordIds and the hit files' place in
	// their streams must agree.
	if len(a) != 18 || len(a) != len(b) {
		t.Fatalf("hits %d and %d, want 18 both: %v\n%v", len(a), len(b), a, b)
	}
	for i := range a {
		if strings.HasPrefix(a[i], "no-end") && a[i] != b[i] {
			t.Errorf("hit %d: %s, then %s", i, a[i], b[i])
		}
	}
	if c := hits(faulty(4, time.UnixMilli(vt0), everyFault)); cmp.Equal(a, c) {
		t.Error("seeds 3 and 4 hit the same")
	}
}

// TestScenarioFaultsDoWhatTheySay checks each fault's effect on the
// callbacks and the storage, and that counts are exact.
func TestScenarioFaultsDoWhatTheySay(t *testing.T) {
	recs := faulty(5, time.UnixMilli(vt0), everyFault)
	if got, want := InjectedFaults(recs), map[string]int{"absent": 3, "wrong-size": 4, "no-end": 5, "missing-segment": 6}; !cmp.Equal(got, want) {
		t.Errorf("injected %v, want %v", got, want)
	}
	st := NewStorage(recs)
	for _, rec := range recs {
		cbs := rec.Callbacks("app")
		named := map[string]bool{}
		for _, c := range cbs {
			if c.Type != rc.TypeStart {
				named[c.FileName] = true
			}
			if rec.NoEnd && (c.Type == rc.TypeEnd || !c.At.Before(rec.End())) {
				t.Errorf("%s has no end, but %v at %s is sent (the end was due at %s)", rec.RecordID, c.Type, c.At, rec.End())
			}
		}
		if !rec.NoEnd && rec.StartCode == rc.StatusOK && cbs[len(cbs)-1].At.Before(rec.End()) {
			t.Errorf("%s: the last callback is before the end", rec.RecordID)
		}
		for _, f := range rec.Skipped {
			if named[f.Name] {
				t.Errorf("%s: the missing segment %s is reported", rec.RecordID, f.Name)
			}
			var before, after int
			for _, g := range rec.Files {
				if g.Stream == f.Stream && g.From.Before(f.From) {
					before++
				}
				if g.Stream == f.Stream && g.From.After(f.From) {
					after++
				}
			}
			if before == 0 || after == 0 || rec.EndCode != rc.StatusOK || rec.NoEnd {
				t.Errorf("%s: the missing segment %s is not in the middle of its stream of a recording that ends well (%d before, %d after)", rec.RecordID, f.Name, before, after)
			}
		}
		for _, f := range rec.Files {
			obj, held := st.Object(ObjectPath(rec.RecordID, f.Name))
			switch {
			case !rec.uploadSent(f):
				if held || f.Absent || f.StoredSize != f.Size {
					t.Errorf("%s: never reported uploaded, but in the storage or hit by a storage fault", f.Name)
				}
			case f.Absent:
				if held || f.StoredSize != f.Size {
					t.Errorf("%s is absent but held (%v) or its size changed", f.Name, held)
				}
			case !held || obj.Size != f.StoredSize:
				t.Errorf("%s: held %v with %d bytes, want %d", f.Name, held, obj.Size, f.StoredSize)
			}
		}
	}
	// Without a storage, absent and wrong-size have nothing to act on.
	plain := Generate(Options{AppKey: "app", Recordings: 60, Seed: 5, Start: time.UnixMilli(vt0), Faults: everyFault})
	if got := InjectedFaults(plain); got["absent"] != 0 || got["wrong-size"] != 0 || got["no-end"] != 5 {
		t.Errorf("without a storage: injected %v, want no-end alone", got)
	}
	for _, f := range plain[0].Files {
		if !strings.HasPrefix(f.URL, "https://storage.example.com/") {
			t.Errorf("without a storage, a fileUrl is %s", f.URL)
		}
	}
	// A rate: about that share.
	rated := Generate(Options{AppKey: "app", Recordings: 2000, Seed: 6, Start: time.UnixMilli(vt0), Faults: Faults{NoEnd: Share{Rate: 0.1}}})
	if n := InjectedFaults(rated)["no-end"]; math.Abs(float64(n)-200) > 50 {
		t.Errorf("no-end=0.1 of 2000 recordings hit %d", n)
	}
}

// TestFindingsTheFaultsImply runs the findings oracle over every callback
// of scenarios (all acknowledged, long before any clock limit): without
// faults no recording has a finding (the simulator's slices and the 5 s
// slack agree); a missing segment is one segment_gap of twice the slice,
// and missing_files exactly when the arithmetic says so; no-end is
// not_ended once past the limit, and stalled once past twice the slice.
func TestFindingsTheFaultsImply(t *testing.T) {
	at := func(ms int64) clock { return clock{ms, ms} }
	for seed := range uint64(20) {
		recs := faulty(seed, time.UnixMilli(vt0), Faults{MissingSegment: Share{Rate: 0.5}, NoEnd: Share{Rate: 0.2}})
		for _, rec := range recs {
			want, err := Expect(rec.Callbacks("app"))
			if err != nil {
				t.Fatal(err)
			}
			seen := vt0
			got := shown{FirstSeenAt: &seen, LastEventAt: &seen}
			found := expectFindings(rec, want, got, at(seen+1000), time.Hour)
			kinds := map[string]int{}
			for _, f := range found {
				kinds[f.Kind]++
			}
			s := int64(rec.Config.SlicesMin) * 60_000
			switch {
			case len(rec.Skipped) > 0:
				d := rec.Duration.Milliseconds()
				short := (d-5000+s-1)/s < (d+s-1)/s // the 5 s slack forgives the last slice
				if kinds[kindSegmentGap] != 1 || (kinds[kindMissingFiles] == 1) == short || len(found) != kinds[kindSegmentGap]+kinds[kindMissingFiles] {
					t.Errorf("seed %d, %s (duration %s, slice %d min) missing %s: findings %+v", seed, rec.RecordID, rec.Duration, rec.Config.SlicesMin, rec.Skipped[0].Name, found)
				}
				for _, f := range found {
					if f.Kind == kindSegmentGap && (f.Evidence.GapMs != 2*s || f.Evidence.LimitMs != s*3/2) {
						t.Errorf("seed %d, %s: gap evidence %s, want gapMs %d limitMs %d", seed, rec.RecordID, f.Evidence, 2*s, s*3/2)
					}
				}
			case len(found) > 0:
				t.Errorf("seed %d, %s (no-end %v): findings %+v, want none", seed, rec.RecordID, rec.NoEnd, found)
			}
			if !rec.NoEnd || want.Status == "failed" {
				continue
			}
			late := expectFindings(rec, want, got, at(seen+2*s+1), time.Hour)
			if len(late) != 2 || late[0].Kind != kindNotEnded || late[1].Kind != kindStalled || late[0].Maybe || late[1].Maybe ||
				*late[0].Evidence.Since != seen || late[0].Evidence.LimitMs != 3_600_000 || late[1].Evidence.LimitMs != 2*s {
				t.Errorf("seed %d, %s: past both limits, findings %+v, want not_ended and stalled", seed, rec.RecordID, late)
			}
			edge := expectFindings(rec, want, got, clock{seen + 600_000, seen + 600_001}, 10*time.Minute)
			if len(edge) != 1 || !edge[0].Maybe || edge[0].Kind != kindNotEnded {
				t.Errorf("seed %d, %s: on the limit's edge, findings %+v, want not_ended maybe", seed, rec.RecordID, edge)
			}
		}
	}
}
