package ledger_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/simulator"
	"github.com/recledger/recledger/rc"
)

var updateFindings = flag.Bool("update-findings", false, "rewrite testdata/findings/*.json from the rules")

// The findings' clock: recordings of these cases are first seen at base
// (server clock) and stamped by RC from rcBase.
const (
	base   = int64(1_800_000_000_000)
	rcBase = int64(1_799_999_990_000)
	minute = int64(60_000)
	slice  = 30 * minute // the cases' segment length
)

// rec is a recording for the findings' cases: a sliced single-video
// recording of session "S" in room "R_1" (ids holding '_' on purpose),
// first seen at base, started at rcBase.
func rec(mode rc.Mode, files ...string) ledger.State {
	st := ledger.State{RecordID: "rec", AppKey: "app", RoomID: "R_1", SessionID: "S", UserID: "u_1", Mode: mode,
		StartFrom: &rc.Key{Type: rc.TypeStart, Timestamp: rcBase}, Config: &rc.Config{SlicesMin: 30},
		FirstSeenAt: base, LastEventAt: base, Files: map[string]ledger.FileState{}}
	for _, f := range files {
		st.Files[f] = ledger.FileState{Kind: ledger.KindSegment, FirstSeenAt: base}
	}
	return st
}

// fname names a file of user (and tag) at RC time at, as RC would.
func fname(user, tag string, at int64) string {
	return rc.FileName(rc.NameParts{SessionID: "S", RoomID: "R_1", UserID: user, StreamTag: tag, Timestamp: at, Format: "mp4"})
}

// ended returns st ended at RC time at.
func ended(st ledger.State, at int64) ledger.State {
	st.EndedAt = &at
	return st
}

// finalAt returns st with the file name made its stream's final one by an
// end callback at RC time at, which gave its size.
func finalAt(st ledger.State, name string, at int64) ledger.State {
	st.Files = maps.Clone(st.Files)
	f := st.Files[name]
	f.Kind, f.SizeFrom, f.Size = ledger.KindFinal, &rc.Key{Type: rc.TypeEnd, Timestamp: at, FileName: name}, ptr(int64(1))
	st.Files[name] = f
	return st
}

// edit returns st changed by fn.
func edit(st ledger.State, fn func(*ledger.State)) ledger.State {
	fn(&st)
	return st
}

// segs names n segment files of one stream, a slice apart from rcBase,
// the i-th skipped when listed in skip.
func segs(user, tag string, n int, skip ...int) []string {
	var out []string
next:
	for i := range n {
		for _, s := range skip {
			if s == i {
				continue next
			}
		}
		out = append(out, fname(user, tag, rcBase+int64(i)*slice))
	}
	return out
}

// TestFindings pins each rule at its edges: every case's findings are
// compared with testdata/findings/NAME.json (each read against the
// design's rules when written with -update-findings: the evidence and the
// message), and want says the kinds it must hold, so a golden file
// rewritten from a broken rule still fails on the kinds.
func TestFindings(t *testing.T) {
	rules := ledger.FindingRules{MaxOpen: 24 * time.Hour}
	day := 24 * time.Hour.Milliseconds()
	at := func(ms int64) time.Time { return time.UnixMilli(ms) }
	tests := []struct {
		name string
		st   ledger.State
		now  time.Time
		want []ledger.FindingKind
	}{
		{"fresh", rec(rc.ModeVideo, segs("u_1", "", 1)...), at(base), nil},
		{"not ended at the limit", edit(rec(rc.ModeVideo), func(s *ledger.State) { s.Config = nil }), at(base + day), nil},
		{"not ended just over the limit", edit(rec(rc.ModeVideo), func(s *ledger.State) { s.Config = nil }), at(base + day + 1),
			[]ledger.FindingKind{ledger.FindingNotEnded}},
		{"not ended with callbacks coming is not stalled", edit(rec(rc.ModeVideo), func(s *ledger.State) { s.LastEventAt = base + day }), at(base + day + 1),
			[]ledger.FindingKind{ledger.FindingNotEnded}},
		{"ended is never not ended", ended(rec(rc.ModeVideo, segs("u_1", "", 1)...), rcBase+minute), at(base + 10*day), nil},
		{"stalled at twice the segment", rec(rc.ModeVideo), at(base + 2*slice), nil},
		{"stalled just over twice the segment", rec(rc.ModeVideo), at(base + 2*slice + 1), []ledger.FindingKind{ledger.FindingStalled}},
		{"not stalled without its start's config", edit(rec(rc.ModeVideo), func(s *ledger.State) { s.Config = nil }), at(base + 10*slice), nil},
		{"not stalled unsliced", edit(rec(rc.ModeVideo), func(s *ledger.State) { s.Config = &rc.Config{} }), at(base + 10*slice), nil},
		{"stalled and not ended", rec(rc.ModeVideo), at(base + day + 1), []ledger.FindingKind{ledger.FindingNotEnded, ledger.FindingStalled}},
		{"step of 1.5 segments is no gap", rec(rc.ModeVideo, fname("u_1", "", rcBase), fname("u_1", "", rcBase+slice+slice/2)), at(base), nil},
		{"step just over 1.5 segments is a gap", rec(rc.ModeVideo, fname("u_1", "", rcBase), fname("u_1", "", rcBase+slice+slice/2+1)), at(base),
			[]ledger.FindingKind{ledger.FindingSegmentGap}},
		{"one finding per gap", rec(rc.ModeVideo, segs("u_1", "", 7, 1, 4)...), at(base),
			[]ledger.FindingKind{ledger.FindingSegmentGap, ledger.FindingSegmentGap}},
		{"gaps within streams, not across", rec(rc.ModeVideo, append(segs("u_1", "", 2), fname("u_2", "cam", rcBase+5*slice))...), at(base), nil},
		{"several streams, one with a gap", rec(rc.ModeAudioVideo, append(append(segs("u_1", "", 4), segs("u_1", "screenshare", 4, 2)...), segs("u_2", "", 4)...)...), at(base),
			[]ledger.FindingKind{ledger.FindingSegmentGap}},
		{"mix modes are one stream", edit(rec(rc.ModeMixAudio, fname("", "", rcBase), fname("", "", rcBase+3*slice)), func(s *ledger.State) { s.UserID = "" }), at(base),
			[]ledger.FindingKind{ledger.FindingSegmentGap}},
		{"mix modes are one stream whatever the names hold", edit(rec(rc.ModeMixVideo, fname("x", "", rcBase), fname("y", "", rcBase+3*slice)), func(s *ledger.State) { s.UserID = "" }), at(base),
			[]ledger.FindingKind{ledger.FindingSegmentGap}},
		{"user mix by user", rec(rc.ModeUserAudioVideo, append(segs("u_1", "", 3), segs("u_12", "", 3, 1)...)...), at(base),
			[]ledger.FindingKind{ledger.FindingSegmentGap}},
		{"names that do not parse are not judged", rec(rc.ModeVideo, "S_R_1_u_1_x.mp4", "noext", "other_R_1_u_1_"+itoa(rcBase+5*slice)+".mp4", fname("u_1", "", rcBase)), at(base), nil},
		{"no gap without segments", edit(rec(rc.ModeVideo, fname("u_1", "", rcBase), fname("u_1", "", rcBase+5*slice)), func(s *ledger.State) { s.Config.SlicesMin = 0 }), at(base), nil},
		{"all files at the end plus 5 s", ended(rec(rc.ModeVideo, segs("u_1", "", 2)...), rcBase+2*slice+5000), at(base), nil},
		{"a file missing just past 5 s over", ended(rec(rc.ModeVideo, segs("u_1", "", 2)...), rcBase+2*slice+5001), at(base),
			[]ledger.FindingKind{ledger.FindingMissingFiles}},
		{"a short recording expects one file", ended(rec(rc.ModeVideo, segs("u_1", "", 1)...), rcBase+1000), at(base), nil},
		{"missing files summed over the short streams", ended(rec(rc.ModeAudioVideo, append(append(segs("u_1", "", 3), segs("u_2", "", 2)...), segs("u_3", "", 1)...)...), rcBase+2*slice+minute),
			at(base), []ledger.FindingKind{ledger.FindingMissingFiles}},
		{"a missing middle segment is a gap and missing files", ended(rec(rc.ModeVideo, segs("u_1", "", 4, 2)...), rcBase+4*slice-minute), at(base),
			[]ledger.FindingKind{ledger.FindingSegmentGap, ledger.FindingMissingFiles}},
		{"a user who joins late runs from their first file", ended(rec(rc.ModeVideo, append(segs("u_1", "", 4), fname("u_2", "", rcBase+2*slice+minute), fname("u_2", "", rcBase+3*slice+minute))...), rcBase+4*slice-minute),
			at(base), nil},
		{"a late joiner's missing segment is still missing", ended(rec(rc.ModeVideo, append(segs("u_1", "", 4), fname("u_2", "", rcBase+minute), fname("u_2", "", rcBase+3*slice+minute))...), rcBase+4*slice-minute),
			at(base), []ledger.FindingKind{ledger.FindingSegmentGap, ledger.FindingMissingFiles}},
		{"a user who leaves early runs to their own end", finalAt(ended(rec(rc.ModeUserAudioVideo, append(segs("u_1", "", 4), fname("u_2", "", rcBase))...), rcBase+4*slice-minute), fname("u_2", "", rcBase), rcBase+20*minute),
			at(base), nil},
		{"a user who leaves early without their end runs to the recording's", ended(rec(rc.ModeUserAudioVideo, append(segs("u_1", "", 4), fname("u_2", "", rcBase))...), rcBase+4*slice-minute),
			at(base), []ledger.FindingKind{ledger.FindingMissingFiles}},
		{"the mix modes' stream runs from the start", edit(ended(rec(rc.ModeMixAudioVideo, fname("", "", rcBase+2*slice), fname("", "", rcBase+3*slice)), rcBase+4*slice-minute), func(s *ledger.State) { s.UserID = "" }),
			at(base), []ledger.FindingKind{ledger.FindingMissingFiles}},
		{"no missing files without the start", edit(ended(rec(rc.ModeVideo, segs("u_1", "", 1)...), rcBase+4*slice), func(s *ledger.State) { s.StartFrom = nil }), at(base), nil},
		{"a failed recording has none", edit(ended(rec(rc.ModeVideo, segs("u_1", "", 4, 1)...), rcBase+9*slice), func(s *ledger.State) { s.Failed = true }), at(base + 10*day), nil},
		{"a failed open one neither", edit(rec(rc.ModeVideo), func(s *ledger.State) { s.Failed = true }), at(base + 10*day), nil},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rules.Findings(&tt.st, tt.now)
			var kinds []ledger.FindingKind
			for _, f := range got {
				kinds = append(kinds, f.Kind)
			}
			if !equalKinds(kinds, tt.want) {
				t.Errorf("kinds %v, want %v", kinds, tt.want)
			}
			file := filepath.Join("testdata", "findings", strings.ReplaceAll(tt.name, " ", "_")+".json")
			seen[filepath.Base(file)] = true
			b, err := json.MarshalIndent(got, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, '\n')
			if *updateFindings {
				if err := os.WriteFile(file, b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(file)
			if err != nil {
				t.Fatalf("%v (run with -update-findings to write it)", err)
			}
			if !bytes.Equal(b, want) {
				t.Errorf("findings differ from %s:\ngot:\n%s\nwant:\n%s", file, b, want)
			}
			// The stored kinds are exactly the clock-free ones.
			var mask ledger.FindingMask
			for _, k := range tt.want {
				mask |= k.Bit()
			}
			if m := ledger.StateFindingMask(&tt.st); m != mask {
				t.Errorf("StateFindingMask %b, want %b", m, mask)
			}
		})
	}
	entries, _ := os.ReadDir(filepath.Join("testdata", "findings"))
	for _, e := range entries {
		if !seen[e.Name()] {
			t.Errorf("testdata/findings/%s belongs to no case", e.Name())
		}
	}
}

func equalKinds(a, b []ledger.FindingKind) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestFindingRulesDefault: the zero rules allow a day.
func TestFindingRulesDefault(t *testing.T) {
	st := edit(rec(rc.ModeVideo), func(s *ledger.State) { s.Config = nil })
	if f := (ledger.FindingRules{}).Findings(&st, time.UnixMilli(base+ledger.DefaultMaxOpen.Milliseconds())); f != nil {
		t.Errorf("findings at 24 h: %v", f)
	}
	if f := (ledger.FindingRules{}).Findings(&st, time.UnixMilli(base+ledger.DefaultMaxOpen.Milliseconds()+1)); len(f) != 1 {
		t.Errorf("findings just past 24 h: %v", f)
	}
	short := ledger.FindingRules{MaxOpen: time.Hour}
	if f := short.Findings(&st, time.UnixMilli(base+time.Hour.Milliseconds()+1)); len(f) != 1 || *f[0].Evidence.Since != base || f[0].Evidence.LimitMs != 3600_000 {
		t.Errorf("findings past a 1 h limit: %+v", f)
	}
}

// simulated folds a simulated recording's callbacks, received when RC
// sends them, and calls check with the state and the time after each
// instant's callbacks (RC sends the end of every stream at once: between
// two of them the others' final files are missing, for no time at all).
func simulated(t *testing.T, r simulator.Recording, cbs []simulator.Callback, check func(st ledger.State, at time.Time)) ledger.State {
	t.Helper()
	var st ledger.State
	for i, c := range cbs {
		cb, err := rc.Parse(c.Body)
		if err != nil {
			t.Fatal(err)
		}
		st = ledger.Apply(st, cb, c.At.UnixMilli())
		if check != nil && (i == len(cbs)-1 || cbs[i+1].At.After(c.At)) {
			check(st, c.At)
		}
	}
	return st
}

// TestFaultFreeRecordingsHaveNoFindings: recordings of every mode and
// slice length, as RC's callbacks build them (the simulator's
// generator), have no finding at any point of their life, nor once
// ended, a day later.
func TestFaultFreeRecordingsHaveNoFindings(t *testing.T) {
	rules := ledger.FindingRules{}
	seen := map[string]bool{}
	for m := rc.ModeAudioVideo; m <= rc.ModeUserAudioVideo; m++ {
		recs := simulator.Generate(simulator.Options{AppKey: "app", Recordings: 60, Modes: []rc.Mode{m}, Seed: uint64(m) + 1,
			Start: time.UnixMilli(base), UploadFailures: 0.2})
		for _, r := range recs {
			seen[m.String()+"/"+itoa(int64(r.Config.SlicesMin))] = true
			cbs := r.Callbacks("app")
			st := simulated(t, r, cbs, func(st ledger.State, at time.Time) {
				if f := rules.Findings(&st, at); f != nil {
					t.Fatalf("%s (%s, %d min slices) at %s: %+v", r.RecordID, m, r.Config.SlicesMin, at, f)
				}
			})
			last := cbs[len(cbs)-1].At
			if f := rules.Findings(&st, last.Add(48*time.Hour)); f != nil {
				t.Fatalf("%s (%s, %d min slices) ended: %+v", r.RecordID, m, r.Config.SlicesMin, f)
			}
		}
	}
	for m := rc.ModeAudioVideo; m <= rc.ModeUserAudioVideo; m++ {
		for _, s := range []int{30, 60, 120} {
			if !seen[m.String()+"/"+itoa(int64(s))] {
				t.Errorf("no %s recording with %d min slices generated", m, s)
			}
		}
	}
}

// TestFindingsClearWhenExplained: a recording missing a middle segment's
// callbacks shows a gap and missing files; once they arrive (late, as a
// redelivery would) the findings are gone. One whose end never came is
// not_ended and stalled until the end arrives.
func TestFindingsClearWhenExplained(t *testing.T) {
	rules := ledger.FindingRules{}
	recs := simulator.Generate(simulator.Options{AppKey: "app", Recordings: 40, Modes: []rc.Mode{rc.ModeAudioVideo}, Seed: 7, Start: time.UnixMilli(base)})
	var r simulator.Recording
	for _, c := range recs {
		if c.Duration > time.Duration(3*c.Config.SlicesMin)*time.Minute {
			r = c
			break
		}
	}
	if r.RecordID == "" {
		t.Fatal("no recording of three segments or more generated")
	}
	missing := r.Files[1].Name // a middle segment of the first stream
	var held, rest []simulator.Callback
	for _, c := range r.Callbacks("app") {
		if c.FileName == missing && c.Type != rc.TypeStart {
			held = append(held, c)
		} else {
			rest = append(rest, c)
		}
	}
	st := simulated(t, r, rest, nil)
	now := rest[len(rest)-1].At.Add(time.Minute)
	got := rules.Findings(&st, now)
	if len(got) != 2 || got[0].Kind != ledger.FindingSegmentGap || got[1].Kind != ledger.FindingMissingFiles {
		t.Fatalf("without %s: %+v, want a segment gap and missing files", missing, got)
	}
	if got[0].Evidence.After != r.Files[0].Name || got[0].Evidence.Before != r.Files[2].Name {
		t.Errorf("gap between %s and %s, want %s and %s", got[0].Evidence.After, got[0].Evidence.Before, r.Files[0].Name, r.Files[2].Name)
	}
	for _, c := range held {
		cb, _ := rc.Parse(c.Body)
		st = ledger.Apply(st, cb, now.UnixMilli())
	}
	if f := rules.Findings(&st, now); f != nil {
		t.Errorf("after the missing segment arrived: %+v", f)
	}

	// No end: every callback before the end, then the end.
	var open, ends []simulator.Callback
	for _, c := range r.Callbacks("app") {
		if c.Type == rc.TypeEnd || (len(ends) > 0) {
			ends = append(ends, c)
			continue
		}
		open = append(open, c)
	}
	st = simulated(t, r, open, nil)
	late := open[len(open)-1].At.Add(25 * time.Hour)
	if f := rules.Findings(&st, late); len(f) != 2 || f[0].Kind != ledger.FindingNotEnded || f[1].Kind != ledger.FindingStalled {
		t.Fatalf("without the end a day later: %+v", f)
	}
	for _, c := range ends {
		cb, _ := rc.Parse(c.Body)
		st = ledger.Apply(st, cb, late.UnixMilli())
	}
	if f := rules.Findings(&st, late); f != nil {
		t.Errorf("after the end arrived: %+v", f)
	}
}

// TestUploadLag: null until the end and every upload, then the latest
// upload minus the end on RC's clock.
func TestUploadLag(t *testing.T) {
	up := func(at int64) ledger.FileState {
		return ledger.FileState{UploadFrom: &rc.Key{Timestamp: at}, UploadedAt: &at}
	}
	tests := []struct {
		name string
		st   ledger.State
		want *int64
	}{
		{"open", ledger.State{Files: map[string]ledger.FileState{"a": up(5)}}, nil},
		{"ended without files", ledger.State{EndedAt: ptr(int64(10))}, nil},
		{"one not uploaded", ledger.State{EndedAt: ptr(int64(10)), Files: map[string]ledger.FileState{"a": up(50), "b": {UploadFailed: true}}}, nil},
		{"all uploaded", ledger.State{EndedAt: ptr(int64(10)), Files: map[string]ledger.FileState{"a": up(50), "b": up(70), "c": up(3)}}, ptr(int64(60))},
		{"uploaded before the end", ledger.State{EndedAt: ptr(int64(100)), Files: map[string]ledger.FileState{"a": up(50)}}, ptr(int64(-50))},
	}
	for _, tt := range tests {
		got := tt.st.View(time.UnixMilli(base)).UploadLagMs
		if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
			t.Errorf("%s: uploadLagMs %v, want %v", tt.name, deref(got), deref(tt.want))
		}
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// TestCheckFinding: the filter's values.
func TestCheckFinding(t *testing.T) {
	for _, k := range append([]ledger.FindingKind{"", ledger.FindingAny}, ledger.FindingKinds...) {
		if err := ledger.CheckFinding(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
	for _, k := range []ledger.FindingKind{"ANY", "stalled ", "gap", "not_ended\x00", ledger.FindingKind(strings.Repeat("x", 1<<16))} {
		err := ledger.CheckFinding(k)
		if err == nil || !errors.Is(err, ledger.ErrBadFilter) || len(err.Error()) > 200 {
			t.Errorf("%.20q: %v", k, err)
		}
	}
}

// TestUsersComingAndGoingHaveNoFindings: a recording of a mode with a
// stream per user, as RC's callbacks build it, where one user joins late
// and one leaves early, has no finding at any point of its life nor once
// ended.
func TestUsersComingAndGoingHaveNoFindings(t *testing.T) {
	start := time.UnixMilli(base)
	r := simulator.Recording{RecordID: "users", RoomID: "room", SessionID: "sess", Mode: rc.ModeAudioVideo, StartedAt: start,
		Duration: 95*time.Minute + 3*time.Second, StartCode: rc.StatusOK, EndCode: rc.StatusOK,
		Config: rc.Config{Trigger: 1, MixLayout: 2, SlicesMin: 30, VideoFormat: "mp4", AudioFormat: "aac"}}
	stream := func(user string, from, d time.Duration) {
		s := simulator.Stream{UserID: user}
		r.Streams = append(r.Streams, s)
		end := start.Add(from + d)
		for at := start.Add(from); at.Before(end); at = at.Add(30 * time.Minute) {
			to := at.Add(30 * time.Minute)
			if to.After(end) {
				to = end
			}
			r.Files = append(r.Files, simulator.File{Name: rc.FileName(rc.NameParts{SessionID: r.SessionID, RoomID: r.RoomID, UserID: user, Timestamp: at.UnixMilli(), Format: "mp4"}),
				Stream: s, Final: !to.Before(end), From: at, Size: 1000, StoredSize: 1000, ClosedAt: to, UploadedAt: to.Add(5 * time.Second),
				URL: "https://storage.example.com/" + user})
		}
	}
	stream("u1", 0, r.Duration)
	stream("late", 40*time.Minute, r.Duration-40*time.Minute)
	stream("early", 0, 20*time.Minute)
	rules := ledger.FindingRules{}
	cbs := r.Callbacks("app")
	st := simulated(t, r, cbs, func(st ledger.State, at time.Time) {
		if f := rules.Findings(&st, at); f != nil {
			t.Fatalf("at %s: %+v", at, f)
		}
	})
	if st.EndedAt == nil {
		t.Fatal("the recording did not end")
	}
	if f := rules.Findings(&st, cbs[len(cbs)-1].At.Add(48*time.Hour)); f != nil {
		t.Errorf("ended: %+v", f)
	}
}
