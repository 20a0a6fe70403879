package ledger

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
