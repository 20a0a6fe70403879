// Package delivery is recledger's outbound side: the events it tells
// downstream systems about recordings, and (next) the dispatcher that
// sends them to destinations, one folder per destination kind (webhook/,
// jetstream/).
//
// Events are derived from the ledger's fold, never from raw callbacks: the
// projection engine calls Rules.Derive with a recording's state after each
// callback, and Derive announces what the state newly shows, once. What a
// recording has announced (Announced) is kept beside its state, so a
// redelivered callback, or callbacks in any order, never announce a thing
// twice: a file is created before it is uploaded (and no upload failure
// follows its upload), and a recording is completed once, after its end
// and every file's upload, never together with failed.
//
// Callbacks cannot tell that a recording has no more files to come, so
// completed also waits until the recording has been complete and quiet
// for Rules.Settle. Callbacks that arrive within Settle of each other, in
// any order, cannot contradict it; a file whose first callback comes
// later still gets its own events, after completed, and no second
// completed.
package delivery

import (
	"cmp"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// Type is an event's type.
type Type string

// The event types of CONTRACT.md.
const (
	Started       Type = "recording.started"        // RC reported a successful start
	FileCreated   Type = "recording.file_created"   // a segment or final file became known
	Ended         Type = "recording.ended"          // RC reported the end
	UploadFailed  Type = "recording.upload_failed"  // an upload of a file failed, and none has succeeded yet
	FileUploaded  Type = "recording.file_uploaded"  // a file reached the customer's storage
	Failed        Type = "recording.failed"         // a start or end reported a failure
	Completed     Type = "recording.completed"      // ended, every file uploaded, and quiet for Settle
	UploadOverdue Type = "recording.upload_overdue" // RC's upload retries are over and a file is still not uploaded
	// FileVerified: the storage has the uploaded file, with RC's size
	// (storage verification, --verify-storage).
	FileVerified Type = "recording.file_verified"
	// FileMissing: the storage answered that the uploaded file is not
	// there (verification state missing), or is there with another size
	// (size_mismatch); the file's verification says which.
	FileMissing Type = "recording.file_missing"
)

// Types are the event types, in the order Derive announces them within one
// call; the storage verifier announces the last two (FileVerified,
// FileMissing), not Derive.
var Types = []Type{Started, FileCreated, Ended, UploadFailed, FileUploaded, Failed, Completed, UploadOverdue, FileVerified, FileMissing}

// DestinationDisabled is announced to the other destinations when the
// dispatcher disables one (410 Gone, or failing for too long): an event
// about recledger itself, not a recording.
const DestinationDisabled Type = "destination.disabled"

// SystemTypes are the types of events about recledger itself.
var SystemTypes = []Type{DestinationDisabled}

// DisabledEvent is a DestinationDisabled event as destinations receive it.
type DisabledEvent struct {
	ID          string    `json:"id"`
	Type        Type      `json:"type"`
	Time        time.Time `json:"time"` // when it was disabled, UTC
	Destination struct {
		ID   string `json:"id"`
		Type Kind   `json:"type"`
		URL  string `json:"url"` // its query's values hidden
	} `json:"destination"`
	Reason string `json:"reason"`
}

// NewDisabledEvent is the event that destination d was disabled at at
// (Unix ms) for reason; url is d's URL as it may be shown.
func NewDisabledEvent(d *Destination, url, reason string, at int64) DisabledEvent {
	e := DisabledEvent{ID: ID("", d.ID, DestinationDisabled, strconv.FormatInt(at, 10)), Type: DestinationDisabled,
		Time: time.UnixMilli(at).UTC(), Reason: reason}
	e.Destination.ID, e.Destination.Type, e.Destination.URL = d.ID, d.Kind, url
	return e
}

// Announced is what a recording has announced: how many events (the last
// one's sequence number) and which.
type Announced struct {
	Count int
	Done  map[Type]bool            // the recording-wide types announced
	Files map[string]map[Type]bool // per file, the file types announced
}

// Change is one event to announce.
type Change struct {
	Type     Type
	Sequence int    // the recording's own event number: 1, 2, 3, ...
	File     string // the file it concerns; "" for the recording
}

// DefaultSettle is Rules.Settle's default. RC sends a recording's ends
// (one per stream in the single modes) together and its uploads seconds
// later, and retries a callback twice after 5 s; a minute covers those.
// What it does not cover (a callback held back by an outage longer than
// that) arrives after completed, as its own events.
const DefaultSettle = time.Minute

// Rules derive events.
type Rules struct {
	// Settle is how long a recording must have been complete without a new
	// callback before it is announced completed (default DefaultSettle).
	Settle time.Duration
}

// Derive returns the events a recording's state st newly shows at now
// (Unix ms, the projection's clock: a callback's arrival, or the time of
// a periodic pass), in announcement order, and adds them to a.
func (r Rules) Derive(st *ledger.State, a *Announced, now int64) []Change {
	var out []Change
	add := func(t Type, file string) {
		if file == "" {
			if a.Done == nil {
				a.Done = map[Type]bool{}
			}
			a.Done[t] = true
		} else {
			if a.Files == nil {
				a.Files = map[string]map[Type]bool{}
			}
			if a.Files[file] == nil {
				a.Files[file] = map[Type]bool{}
			}
			a.Files[file][t] = true
		}
		a.Count++
		out = append(out, Change{Type: t, Sequence: a.Count, File: file})
	}
	done := func(t Type) bool { return a.Done[t] }
	fileDone := func(name string, t Type) bool { return a.Files[name][t] }

	files := sortedFiles(st)
	// A failed start is announced as failed alone: the recording never
	// began (RC sends nothing more for it). The chosen start's key keeps
	// its code; a missing code (0) reports no failure, as in ledger.Apply.
	if st.StartFrom != nil && (st.StartFrom.Code == rc.StatusOK || st.StartFrom.Code == 0) && !done(Started) {
		add(Started, "")
	}
	for _, f := range files {
		if !fileDone(f.name, FileCreated) {
			add(FileCreated, f.name)
		}
	}
	if st.EndedAt != nil && !done(Ended) {
		add(Ended, "")
	}
	for _, f := range files {
		if f.UploadFailed && f.UploadFrom == nil && !fileDone(f.name, UploadFailed) { // never after an upload: UploadFrom stays set
			add(UploadFailed, f.name)
		}
	}
	for _, f := range files {
		if f.UploadFrom != nil && !fileDone(f.name, FileUploaded) {
			add(FileUploaded, f.name)
		}
	}
	if st.Failed && !done(Failed) && !done(Completed) {
		add(Failed, "")
	}
	if st.Status() == ledger.StatusComplete && !done(Completed) && now-st.LastEventAt >= r.settle().Milliseconds() {
		add(Completed, "")
	}
	if st.UploadState(time.UnixMilli(now)) == ledger.UploadOverdue && !done(UploadOverdue) && !done(Completed) {
		add(UploadOverdue, "")
	}
	return out
}

// Due reports whether st may have an event to announce by time alone
// (Completed after Settle, UploadOverdue), and from when: the projection
// engine keeps such recordings on a timer.
func (r Rules) Due(st *ledger.State, a *Announced) (at int64, ok bool) {
	switch {
	case st.Status() == ledger.StatusComplete && !a.Done[Completed]:
		return st.LastEventAt + r.settle().Milliseconds(), true
	case st.EndReceivedAt != nil && !a.Done[UploadOverdue] && !a.Done[Completed] &&
		st.BaseUploadState() != ledger.UploadNone && st.BaseUploadState() != ledger.UploadComplete:
		return *st.EndReceivedAt + ledger.OverdueAfter.Milliseconds() + 1, true
	}
	return 0, false
}

func (r Rules) settle() time.Duration {
	if r.Settle <= 0 {
		return DefaultSettle
	}
	return r.Settle
}

type namedFile struct {
	name string
	ledger.FileState
}

// sortedFiles orders a recording's files by when they were first seen,
// then by name: the order they are announced in.
func sortedFiles(st *ledger.State) []namedFile {
	out := make([]namedFile, 0, len(st.Files))
	for name, f := range st.Files {
		out = append(out, namedFile{name, f})
	}
	slices.SortFunc(out, func(x, y namedFile) int {
		return cmp.Or(cmp.Compare(x.FirstSeenAt, y.FirstSeenAt), strings.Compare(x.name, y.name))
	})
	return out
}

// ID is an event's id: derived from the recording and what the event
// says, not from when it was derived, so a rebuild from the log gives the
// same ids and receivers can drop what they already have. No two events
// of a recording share one: each (type, file) is announced at most once.
func ID(appKey, recordID string, t Type, file string) string {
	h := sha256.New()
	for _, s := range []string{appKey, recordID, string(t), file} {
		// Each part behind its length: no choice of parts (NUL bytes
		// included, which RC's ids may hold) runs into the next.
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	return "evt_" + strings.ToLower(idEncoding.EncodeToString(h.Sum(nil)[:20]))
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Event is an outbound event as destinations receive it (CONTRACT.md, and
// the OutboundEvent schema of the OpenAPI document).
type Event struct {
	ID       string    `json:"id"`
	Type     Type      `json:"type"`
	Time     time.Time `json:"time"` // when it was derived, UTC
	RecordID string    `json:"recordId"`
	AppKey   string    `json:"appKey"`
	Sequence int       `json:"sequence"`
	// Recording is the recording as it stood when the event was derived,
	// with every file's name, size and URL.
	Recording ledger.Recording `json:"recording"`
	File      *ledger.File     `json:"file,omitempty"` // the file it concerns, if one
}

// NewEvent is change c of the recording in state st, derived at at (Unix
// ms).
func NewEvent(st *ledger.State, c Change, at int64) Event {
	when := time.UnixMilli(at).UTC()
	e := Event{
		ID:        ID(st.AppKey, st.RecordID, c.Type, c.File),
		Type:      c.Type,
		Time:      when,
		RecordID:  st.RecordID,
		AppKey:    st.AppKey,
		Sequence:  c.Sequence,
		Recording: st.View(when),
	}
	if _, ok := st.Files[c.File]; c.File != "" && ok {
		f := st.FileView(c.File)
		e.File = &f
	}
	return e
}
