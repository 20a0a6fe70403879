package simulator

import (
	"fmt"
	"sort"
	"time"
)

// The findings oracle: what findings a recording must show, by the
// completeness rules of issue 16 (ledger.Findings implements them), written
// again here from the simulator's own model (each file's stream
// and slice start) and the callbacks the receiver acknowledged, not with
// the ledger's code. S is slicesMin in ms.
//   - not_ended: no end, and now - firstSeenAt > MaxOpen.
//   - stalled: no end, slicesMin > 0, now - lastEventAt > 2 S.
//   - segment_gap: slicesMin > 0; per stream, a step between consecutive
//     files' timestamps > 1.5 S, one finding per gap.
//   - missing_files: ended, start known, slicesMin > 0; per stream,
//     expected = ceil((to - from - 5000) / S), at least 1, where a stream
//     runs from startedAt (in the modes with a stream per user, from its
//     first file when later: a user who joins late) to endedAt (or to the
//     end callback that named its final file when earlier: a user who
//     leaves early); one finding summing expected and got over the
//     streams with fewer files.
//   - none at all on a failed recording.
//
// firstSeenAt and lastEventAt are the server's clock, so the clock rules
// read them from the answer and bound the server's "now" by the answer's
// Date header (or the local clock around the request without one): a
// recording within a second of its limit may show the finding or not, and
// is reported undecided rather than judged.

// DefaultMaxOpen is the server's default --max-recording-length.
const DefaultMaxOpen = 24 * time.Hour

// The finding kinds, as the API names them.
const (
	kindNotEnded     = "not_ended"
	kindStalled      = "stalled"
	kindSegmentGap   = "segment_gap"
	kindMissingFiles = "missing_files"
)

// shownFinding is a finding as the API shows it.
type shownFinding struct {
	Kind     string        `json:"kind"`
	Message  string        `json:"message"`
	Evidence shownEvidence `json:"evidence"`
}

type shownEvidence struct {
	Since    *int64 `json:"since"`
	LimitMs  int64  `json:"limitMs"`
	After    string `json:"after"`
	Before   string `json:"before"`
	GapMs    int64  `json:"gapMs"`
	Expected int    `json:"expected"`
	Got      int    `json:"got"`
}

func (e shownEvidence) String() string {
	var parts []string
	if e.Since != nil {
		parts = append(parts, fmt.Sprintf("since %d", *e.Since))
	}
	if e.LimitMs != 0 {
		parts = append(parts, fmt.Sprintf("limitMs %d", e.LimitMs))
	}
	if e.After != "" || e.Before != "" {
		parts = append(parts, fmt.Sprintf("after %s before %s", e.After, e.Before))
	}
	if e.GapMs != 0 {
		parts = append(parts, fmt.Sprintf("gapMs %d", e.GapMs))
	}
	if e.Expected != 0 || e.Got != 0 {
		parts = append(parts, fmt.Sprintf("expected %d got %d", e.Expected, e.Got))
	}
	if len(parts) == 0 {
		return "no evidence"
	}
	return fmt.Sprint(parts)
}

// key tells findings of one recording apart: by kind, and a gap by its
// files.
func (f shownFinding) key() string {
	if f.Kind == kindSegmentGap {
		return f.Kind + " after " + f.Evidence.After + " before " + f.Evidence.Before
	}
	return f.Kind
}

// expectedFinding is a finding the oracle expects; Maybe marks a clock
// finding too near its limit to say.
type expectedFinding struct {
	shownFinding
	Maybe bool
}

// clock bounds the server's "now" (Unix ms) when it answered.
type clock struct{ lo, hi int64 }

// past says whether now - since > limit holds for every now in c (yes),
// for none (no), or is on the edge (maybe).
func (c clock) past(since, limit int64) (yes, maybe bool) {
	switch {
	case c.lo-since > limit:
		return true, false
	case c.hi-since > limit:
		return false, true
	}
	return false, false
}

// expectFindings returns the findings rec must show, given what its
// acknowledged callbacks imply (want), the server's clock facts the answer
// shows (got) and the server's MaxOpen.
func expectFindings(rec Recording, want Expected, got shown, now clock, maxOpen time.Duration) []expectedFinding {
	if want.Status == "failed" {
		return nil
	}
	var out []expectedFinding
	add := func(kind string, maybe bool, ev shownEvidence) {
		out = append(out, expectedFinding{shownFinding{Kind: kind, Evidence: ev}, maybe})
	}
	s := int64(0)
	if want.Config != nil {
		s = int64(want.Config.SlicesMin) * 60_000
	}
	if want.EndedAt == nil {
		if got.FirstSeenAt != nil {
			limit := maxOpen.Milliseconds()
			if yes, maybe := now.past(*got.FirstSeenAt, limit); yes || maybe {
				add(kindNotEnded, maybe, shownEvidence{Since: got.FirstSeenAt, LimitMs: limit})
			}
		}
		if s > 0 && got.LastEventAt != nil {
			if yes, maybe := now.past(*got.LastEventAt, 2*s); yes || maybe {
				add(kindStalled, maybe, shownEvidence{Since: got.LastEventAt, LimitMs: 2 * s})
			}
		}
	}
	if s <= 0 {
		return out
	}
	streams := knownStreams(rec, want)
	for _, files := range streams {
		for i := 1; i < len(files); i++ {
			step := files[i].From.UnixMilli() - files[i-1].From.UnixMilli()
			if step > s*3/2 {
				add(kindSegmentGap, false, shownEvidence{After: files[i-1].Name, Before: files[i].Name, GapMs: step, LimitMs: s * 3 / 2})
			}
		}
	}
	if want.EndedAt != nil && want.StartedAt != nil {
		var ev shownEvidence
		for _, files := range streams {
			// A user's stream may join late (it runs from its first
			// file) and leave early (to its final file's end, when that
			// end was acknowledged); the room's runs from the start to
			// the end.
			from, to := *want.StartedAt, *want.EndedAt
			if !rec.Mode.IsMix() && files[0].From.UnixMilli() > from {
				from = files[0].From.UnixMilli()
			}
			if last := files[len(files)-1]; last.Final && want.Files[last.Name].Kind == "final" && last.ClosedAt.UnixMilli() < to {
				to = last.ClosedAt.UnixMilli()
			}
			d := to - from - 5000
			expected := d / s
			if d > 0 && d%s != 0 {
				expected++
			}
			expected = max(expected, 1)
			if int64(len(files)) < expected {
				ev.Expected += int(expected)
				ev.Got += len(files)
			}
		}
		if ev.Expected > 0 {
			add(kindMissingFiles, false, ev)
		}
	}
	return out
}

// knownStreams groups the files the receiver knows of (want.Files) by the
// stream the simulator cut them from, each in time order.
func knownStreams(rec Recording, want Expected) [][]File {
	byStream := map[Stream][]File{}
	var order []Stream
	for _, f := range rec.Files {
		if _, known := want.Files[f.Name]; !known {
			continue
		}
		if _, seen := byStream[f.Stream]; !seen {
			order = append(order, f.Stream)
		}
		byStream[f.Stream] = append(byStream[f.Stream], f)
	}
	out := make([][]File, 0, len(order))
	for _, s := range order {
		files := byStream[s]
		sort.SliceStable(files, func(i, j int) bool { return files[i].From.Before(files[j].From) })
		out = append(out, files)
	}
	return out
}

// compareFindings reports how the findings shown differ from those
// expected, and returns how many expected findings were on the edge.
func compareFindings(recordID string, want []expectedFinding, got []shownFinding) (out []Mismatch, undecided int) {
	add := func(kind, format string, args ...any) {
		out = append(out, Mismatch{recordID, kind, fmt.Sprintf(format, args...)})
	}
	expected := map[string]expectedFinding{}
	for _, w := range want {
		expected[w.key()] = w
		if w.Maybe {
			undecided++
		}
	}
	shownKeys := map[string]bool{}
	for _, g := range got {
		k := g.key()
		if shownKeys[k] {
			add("finding twice", "finding %s is shown twice", k)
			continue
		}
		shownKeys[k] = true
		w, ok := expected[k]
		if !ok {
			add("finding not expected", "finding %s is shown (%s: %s), want none", k, g.Evidence, g.Message)
			continue
		}
		if g.Evidence.String() != w.Evidence.String() {
			add("finding evidence", "finding %s evidence is %s, want %s", k, g.Evidence, w.Evidence)
		}
	}
	for _, w := range want {
		if !w.Maybe && !shownKeys[w.key()] {
			add("finding not shown", "finding %s (%s) is not shown", w.key(), w.Evidence)
		}
	}
	return out, undecided
}
