package ledger

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/recledger/recledger/rc"
)

// FindingKind names what a completeness check found wrong with a
// recording: RC's callbacks can simply stop, and a recording nobody
// checks is found wanting only when a customer asks for it.
type FindingKind string

// The findings.
const (
	// FindingNotEnded: started, and no end after the longest a recording
	// may run (FindingRules.MaxOpen, default 24 h).
	FindingNotEnded FindingKind = "not_ended"
	// FindingStalled: still recording, sliced, and no callback for longer
	// than twice its segment length.
	FindingStalled FindingKind = "stalled"
	// FindingSegmentGap: two files of one stream whose timestamps are
	// further apart than the segment length allows.
	FindingSegmentGap FindingKind = "segment_gap"
	// FindingMissingFiles: ended with fewer files than its length and
	// segment length imply.
	FindingMissingFiles FindingKind = "missing_files"

	// FindingAny selects recordings with any finding (a filter value, not
	// a finding).
	FindingAny FindingKind = "any"
)

// FindingKinds lists the kinds, in the order views show them.
var FindingKinds = []FindingKind{FindingNotEnded, FindingStalled, FindingSegmentGap, FindingMissingFiles}

// Finding is one thing wrong with a recording, with the evidence. A
// finding is derived from the recording's state and the server clock
// when it is read: later callbacks that explain it clear it.
type Finding struct {
	Kind     FindingKind     `json:"kind"`
	Message  string          `json:"message"` // one line for people
	Evidence FindingEvidence `json:"evidence"`
}

// FindingEvidence is what a finding rests on; each kind fills its fields.
type FindingEvidence struct {
	// Since (Unix ms, server clock): not_ended, when the recording was
	// first seen; stalled, when its last callback arrived.
	Since *int64 `json:"since,omitempty"`
	// LimitMs is the allowance exceeded: not_ended, the longest a recording
	// may run; stalled, twice the segment length; segment_gap, the longest
	// step between two files.
	LimitMs int64 `json:"limitMs,omitempty"`
	// After and Before are the files on either side of a segment gap, and
	// GapMs the step between their timestamps (RC's clock).
	After  string `json:"after,omitempty"`
	Before string `json:"before,omitempty"`
	GapMs  int64  `json:"gapMs,omitempty"`
	// Expected and Got: missing_files, the files the length implies and
	// the files known.
	Expected int `json:"expected,omitempty"`
	Got      int `json:"got,omitempty"`
}

// DefaultMaxOpen is FindingRules.MaxOpen's default: the longest a
// recording may run before not_ended (--max-recording-length).
const DefaultMaxOpen = 24 * time.Hour

// FindingRules are the limits of the completeness checks.
type FindingRules struct {
	// MaxOpen is the longest a recording may go without its end
	// (DefaultMaxOpen when 0).
	MaxOpen time.Duration
}

// maxOpen is r.MaxOpen or its default.
func (r FindingRules) maxOpen() time.Duration {
	if r.MaxOpen <= 0 {
		return DefaultMaxOpen
	}
	return r.MaxOpen
}

// Limits the rules share with the stores' narrowing (see FindingClauses).
const (
	// endSlackMs is what missing_files allows RC's clock between a
	// recording's start and end timestamps beyond whole segments: the
	// simulator's recordings run 1-59 s over whole minutes, and RC's end
	// may be stamped a few seconds before the last segment's nominal end.
	endSlackMs = 5000
	// MinStallMs is the shortest stall any recording can have: twice the
	// shortest segment (one minute). Stores narrow stalled by it.
	MinStallMs = 2 * 60_000
)

// Findings returns what the completeness checks find wrong with st at the
// server time now, in FindingKinds order; nil when nothing (always for a
// failed recording: its failure is the finding that matters, and it says
// so itself).
func (r FindingRules) Findings(st *State, now time.Time) []Finding {
	if st.Failed {
		return nil
	}
	var out []Finding
	nowMs := now.UnixMilli()
	slice := sliceMs(st)
	if st.EndedAt == nil && st.FirstSeenAt != 0 {
		if limit := r.maxOpen().Milliseconds(); nowMs-st.FirstSeenAt > limit {
			out = append(out, Finding{Kind: FindingNotEnded,
				Message:  fmt.Sprintf("no end callback %s after it was first seen (limit %s)", ms(nowMs-st.FirstSeenAt), ms(limit)),
				Evidence: FindingEvidence{Since: ptr(st.FirstSeenAt), LimitMs: limit}})
		}
		if limit := 2 * slice; slice > 0 && st.LastEventAt != 0 && nowMs-st.LastEventAt > limit {
			out = append(out, Finding{Kind: FindingStalled,
				Message:  fmt.Sprintf("no callback for %s, more than twice its %s segments", ms(nowMs-st.LastEventAt), ms(slice)),
				Evidence: FindingEvidence{Since: ptr(st.LastEventAt), LimitMs: limit}})
		}
	}
	return append(out, stateFindings(st)...)
}

// StateFindings returns the findings of st that do not depend on the
// clock (segment_gap, missing_files): what stores keep beside the record
// (FindingMask) so a list can select by them.
func StateFindings(st *State) []Finding {
	if st.Failed {
		return nil
	}
	return stateFindings(st)
}

func stateFindings(st *State) []Finding {
	slice := sliceMs(st)
	if slice <= 0 {
		return nil
	}
	streams := fileStreams(st)
	var out []Finding
	limit := slice + slice/2
	for _, s := range streams {
		for i := 1; i < len(s); i++ {
			if gap := s[i].at - s[i-1].at; gap > limit {
				out = append(out, Finding{Kind: FindingSegmentGap,
					Message:  fmt.Sprintf("%s between %s and %s, more than 1.5 times its %s segments", ms(gap), s[i-1].name, s[i].name, ms(slice)),
					Evidence: FindingEvidence{After: s[i-1].name, Before: s[i].name, GapMs: gap, LimitMs: limit}})
			}
		}
	}
	if st.EndedAt != nil && st.StartFrom != nil {
		want, got := 0, 0
		for _, s := range streams {
			// A stream runs from the start, or in the modes with a stream
			// per user from its first file (a user who joins late), to its
			// own end when an end callback named its final file (a user
			// who leaves early), else to the recording's end.
			begin, end := st.StartFrom.Timestamp, *st.EndedAt
			if !st.Mode.IsMix() {
				begin = max(begin, s[0].at)
			}
			if last := s[len(s)-1]; last.end != 0 {
				end = min(end, last.end)
			}
			expected := 1
			if span := end - begin - endSlackMs; span > 0 {
				expected = int((span + slice - 1) / slice)
			}
			if len(s) < expected {
				want += expected
				got += len(s)
			}
		}
		if want > 0 {
			out = append(out, Finding{Kind: FindingMissingFiles,
				Message:  fmt.Sprintf("%d of %d files expected from its length and %s segments", got, want, ms(slice)),
				Evidence: FindingEvidence{Expected: want, Got: got}})
		}
	}
	return out
}

// sliceMs is the recording's segment length in ms, 0 when it is not sliced
// (or its start, which tells, has not come).
func sliceMs(st *State) int64 {
	if st.Config == nil || st.Config.SlicesMin <= 0 {
		return 0
	}
	return int64(st.Config.SlicesMin) * 60_000
}

type streamFile struct {
	name string
	at   int64 // the name's timestamp
	// end is the timestamp of the end callback that named the file its
	// stream's final one (the callback its size came from), 0 when none.
	end int64
}

// fileStreams groups st's files into streams by their names (rc's naming
// rule, with the recording's ids): each user stream in the single modes
// (user and tag), each user in the single-user mix, the room in the mix
// modes. A name that does not parse, or names another session or room,
// is not judged. Each stream is sorted by timestamp, then name; streams
// come in the order of their keys.
func fileStreams(st *State) [][]streamFile {
	by := map[string][]streamFile{}
	for name := range st.Files {
		p, ok := rc.ParseFileNameUser(name, st.SessionID, st.RoomID, st.UserID)
		if !ok || p.SessionID != st.SessionID || p.RoomID != st.RoomID {
			continue
		}
		key := ""
		if !st.Mode.IsMix() {
			// The user and tag as the name splits them: a user id holding
			// '_' may be split elsewhere than RC joined it, but the same
			// stream's names always split alike, and two streams never do.
			key = p.UserID + "\x00" + p.StreamTag
		}
		sf := streamFile{name: name, at: p.Timestamp}
		if f := st.Files[name]; f.Kind == KindFinal && f.SizeFrom != nil && f.SizeFrom.Type == rc.TypeEnd {
			sf.end = f.SizeFrom.Timestamp
		}
		by[key] = append(by[key], sf)
	}
	keys := slices.Sorted(maps.Keys(by))
	out := make([][]streamFile, 0, len(keys))
	for _, k := range keys {
		s := by[k]
		slices.SortFunc(s, func(a, b streamFile) int {
			if c := cmp.Compare(a.at, b.at); c != 0 {
				return c
			}
			return strings.Compare(a.name, b.name)
		})
		out = append(out, s)
	}
	return out
}

// ms writes a duration in ms for people: "1h30m0s".
func ms(v int64) string { return (time.Duration(v) * time.Millisecond).String() }

// FindingMask is a set of finding kinds as stores keep it: one bit per
// kind of StateFindings.
type FindingMask int64

// Bit is the kind's bit in a FindingMask; 0 for the kinds that depend on
// the clock, which stores do not keep.
func (k FindingKind) Bit() FindingMask {
	switch k {
	case FindingSegmentGap:
		return 1
	case FindingMissingFiles:
		return 2
	}
	return 0
}

// Clock reports whether the kind depends on the server clock (not_ended,
// stalled): stores narrow it by columns and decide it in Go.
func (k FindingKind) Clock() bool { return k == FindingNotEnded || k == FindingStalled }

// StateFindingMask is the mask of StateFindings(st).
func StateFindingMask(st *State) FindingMask {
	var m FindingMask
	for _, f := range StateFindings(st) {
		m |= f.Kind.Bit()
	}
	return m
}

// CheckFinding returns ErrBadFilter for a RecordingFilter.Finding that is
// neither empty, FindingAny nor a kind.
func CheckFinding(k FindingKind) error {
	if k == "" || k == FindingAny || slices.Contains(FindingKinds, k) {
		return nil
	}
	return fmt.Errorf("finding %.40q, want any or one of %s: %w", string(k), kindList(), ErrBadFilter)
}

func kindList() string {
	names := make([]string, len(FindingKinds))
	for i, k := range FindingKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// HasFinding reports whether the findings fs hold one of kind k (any kind
// for FindingAny; true for an empty k).
func HasFinding(fs []Finding, k FindingKind) bool {
	if k == "" {
		return true
	}
	for _, f := range fs {
		if k == FindingAny || f.Kind == k {
			return true
		}
	}
	return false
}

// View is st.View(now) with its findings under r.
func (r FindingRules) View(st State, now time.Time) Recording {
	v := st.View(now)
	v.Findings = r.Findings(&st, now)
	return v
}
