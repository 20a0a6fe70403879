package ledger

import (
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/recledger/recledger/rc"
)

// State is everything the ledger knows of one recording: the merged facts of
// its callbacks and, for facts taken from one chosen callback, which one
// (its key), so that a later callback can be judged against it. Stores keep
// it whole; View turns it into the API's Recording.
type State struct {
	RecordID string `json:"recordId"`
	AppKey   string `json:"appKey"`

	// Identity fields come from the first callback in keyOrder, start
	// callbacks first: all of a recording's callbacks carry the same ones,
	// and if they ever disagree the choice must not depend on arrival.
	MetaFrom  *rc.Key `json:"metaFrom,omitempty"`
	RoomID    string  `json:"roomId"`
	SessionID string  `json:"sessionId"`
	UserID    string  `json:"userId"`
	Mode      rc.Mode `json:"mode"`
	Extra     string  `json:"extra"`

	// The configuration comes from the first start callback in keyOrder.
	StartFrom       *rc.Key    `json:"startFrom,omitempty"`
	Config          *rc.Config `json:"config,omitempty"`
	AudioSample     int        `json:"audioSample,omitempty"`
	VideoResolution string     `json:"videoResolution,omitempty"`

	EndedAt       *int64 `json:"endedAt,omitempty"`       // latest end timestamp (RC's clock)
	EndReceivedAt *int64 `json:"endReceivedAt,omitempty"` // first end's arrival (server clock), for overdue
	Failed        bool   `json:"failed,omitempty"`        // a start or end reported a failure

	LastErrorFrom *rc.Key    `json:"lastErrorFrom,omitempty"`
	LastError     *ErrorInfo `json:"lastError,omitempty"`

	FirstSeenAt int64 `json:"firstSeenAt"` // server clock
	LastEventAt int64 `json:"lastEventAt"` // server clock

	Files map[string]FileState `json:"files,omitempty"`
}

// FileState is what the ledger knows of one file of a recording.
type FileState struct {
	Kind         FileKind `json:"kind"`
	SizeFrom     *rc.Key  `json:"sizeFrom,omitempty"`
	Size         *int64   `json:"size,omitempty"`
	UploadFrom   *rc.Key  `json:"uploadFrom,omitempty"` // the successful upload whose URL counts
	URL          string   `json:"url,omitempty"`
	UploadedAt   *int64   `json:"uploadedAt,omitempty"`
	UploadFailed bool     `json:"uploadFailed,omitempty"` // some upload of it failed
	FirstSeenAt  int64    `json:"firstSeenAt"`
}

// succeeded reports whether a callback reports success. A missing code (0)
// reports nothing, so it is not counted as a failure.
func succeeded(cb *rc.Callback) bool { return cb.Code == rc.StatusOK || cb.Code == 0 }

// keyLess is the fixed total order on callbacks that every "chosen callback"
// rule uses: RC's timestamp first, then the rest of the identity.
func keyLess(a, b rc.Key) bool {
	switch {
	case a.Timestamp != b.Timestamp:
		return a.Timestamp < b.Timestamp
	case a.Type != b.Type:
		return a.Type < b.Type
	case a.FileName != b.FileName:
		return a.FileName < b.FileName
	case a.Code != b.Code:
		return a.Code < b.Code
	case a.AppKey != b.AppKey:
		return a.AppKey < b.AppKey
	}
	return a.RecordID < b.RecordID
}

// metaLess orders callbacks for the identity fields: start callbacks first.
func metaLess(a, b rc.Key) bool {
	if (a.Type == rc.TypeStart) != (b.Type == rc.TypeStart) {
		return a.Type == rc.TypeStart
	}
	return keyLess(a, b)
}

// sizeLess orders callbacks for a file's size: an end's size first, then a
// segment's, the earlier first.
func sizeLess(a, b rc.Key) bool {
	if (a.Type == rc.TypeEnd) != (b.Type == rc.TypeEnd) {
		return a.Type == rc.TypeEnd
	}
	return keyLess(a, b)
}

func kindRank(k FileKind) int {
	switch k {
	case KindFinal:
		return 2
	case KindSegment:
		return 1
	}
	return 0
}

// Apply returns the state after one more callback, received at receivedAt
// (server clock, Unix ms). It does not modify s. Applying a callback twice
// gives the state of applying it once, and the order of callbacks does not
// change the result, except for the server-clock fields, which follow their
// arrival times; the raw log keeps duplicates from being applied again, so
// those do not move either.
func Apply(s State, cb rc.Callback, receivedAt int64) State {
	next := s
	next.Files = maps.Clone(s.Files)
	key := cb.Key()

	if next.MetaFrom == nil || metaLess(key, *next.MetaFrom) {
		next.MetaFrom = &key
		next.RecordID, next.AppKey = cb.RecordID, cb.AppKey
		next.RoomID, next.SessionID, next.UserID = cb.RoomID, cb.SessionID, cb.UserID
		next.Mode, next.Extra = cb.Mode, cb.Extra
	}
	if next.FirstSeenAt == 0 || receivedAt < next.FirstSeenAt {
		next.FirstSeenAt = receivedAt
	}
	next.LastEventAt = max(next.LastEventAt, receivedAt)

	if !succeeded(&cb) {
		if cb.Type == rc.TypeStart || cb.Type == rc.TypeEnd {
			next.Failed = true
		}
		if next.LastErrorFrom == nil || keyLess(*next.LastErrorFrom, key) {
			next.LastErrorFrom = &key
			next.LastError = &ErrorInfo{Code: cb.Code, Message: cb.ErrorMessage, At: cb.Timestamp}
		}
	}

	switch cb.Type {
	case rc.TypeStart:
		if next.StartFrom == nil || keyLess(key, *next.StartFrom) {
			next.StartFrom = &key
			next.Config = cb.Config
			next.AudioSample = cb.Output.AudioSample
			next.VideoResolution = cb.Output.VideoResolution
		}
	case rc.TypeEnd:
		if next.EndedAt == nil || cb.Timestamp > *next.EndedAt {
			next.EndedAt = ptr(cb.Timestamp)
		}
		if next.EndReceivedAt == nil || receivedAt < *next.EndReceivedAt {
			next.EndReceivedAt = ptr(receivedAt)
		}
	}
	if name := cb.Output.FileName; name != "" && (cb.Type == rc.TypeSegment || cb.Type == rc.TypeEnd || cb.Type == rc.TypeUpload) {
		if next.Files == nil {
			next.Files = make(map[string]FileState, 1)
		}
		next.Files[name] = applyFile(next.Files[name], &cb, key, receivedAt)
	}
	return next
}

func applyFile(f FileState, cb *rc.Callback, key rc.Key, receivedAt int64) FileState {
	if f.FirstSeenAt == 0 || receivedAt < f.FirstSeenAt {
		f.FirstSeenAt = receivedAt
	}
	kind := KindUnknown
	switch cb.Type {
	case rc.TypeEnd:
		kind = KindFinal
	case rc.TypeSegment:
		kind = KindSegment
	}
	if f.Kind == "" || kindRank(kind) > kindRank(f.Kind) {
		f.Kind = kind
	}
	switch cb.Type {
	case rc.TypeSegment, rc.TypeEnd:
		if cb.Output.FileSize != nil && (f.SizeFrom == nil || sizeLess(key, *f.SizeFrom)) {
			f.SizeFrom = &key
			f.Size = ptr(*cb.Output.FileSize)
		}
	case rc.TypeUpload:
		if !succeeded(cb) {
			f.UploadFailed = true
		} else if f.UploadFrom == nil || keyLess(*f.UploadFrom, key) {
			// The latest successful upload counts: a re-upload replaces the URL.
			f.UploadFrom = &key
			f.URL = cb.Output.FileURL
			f.UploadedAt = ptr(cb.Timestamp)
		}
	}
	return f
}

func ptr[T any](v T) *T { return &v }

// uploadStatus is the file's upload status.
func (f FileState) uploadStatus() UploadStatus {
	switch {
	case f.UploadFrom != nil:
		return UploadStatusUploaded
	case f.UploadFailed:
		return UploadStatusFailed
	}
	return UploadStatusPending
}

// Status is the recording's status.
func (s State) Status() Status {
	switch {
	case s.Failed:
		return StatusFailed
	case s.EndedAt == nil:
		return StatusRecording
	}
	if len(s.Files) > 0 && s.UploadedCount() == len(s.Files) {
		return StatusComplete
	}
	return StatusEnded
}

// UploadedCount is how many of the recording's files are uploaded.
func (s State) UploadedCount() int {
	n := 0
	for _, f := range s.Files {
		if f.UploadFrom != nil {
			n++
		}
	}
	return n
}

// UploadState is the recording's upload state at the server time now.
func (s State) UploadState(now time.Time) UploadState {
	base := s.baseUploadState()
	if base != UploadNone && base != UploadComplete && s.Overdue(now) {
		return UploadOverdue
	}
	return base
}

// Overdue reports whether the end callback arrived more than OverdueAfter
// before now: a file not uploaded by then will not be.
func (s State) Overdue(now time.Time) bool {
	return s.EndReceivedAt != nil && now.UnixMilli()-*s.EndReceivedAt > OverdueAfter.Milliseconds()
}

// baseUploadState is the upload state without the time-dependent overdue.
func (s State) baseUploadState() UploadState {
	if len(s.Files) == 0 {
		return UploadNone
	}
	uploaded, failed := 0, false
	for _, f := range s.Files {
		switch f.uploadStatus() {
		case UploadStatusUploaded:
			uploaded++
		case UploadStatusFailed:
			failed = true
		}
	}
	switch {
	case uploaded == len(s.Files):
		return UploadComplete
	case failed:
		return UploadFailed
	case uploaded > 0:
		return UploadPartial
	}
	return UploadPending
}

// UploadLag is the latest uploadedAt minus endedAt (RC's clock, ms), once
// the recording ended and every file of it is uploaded; a failed
// recording has it too when that holds.
func (s State) UploadLag() (int64, bool) {
	if s.EndedAt == nil || len(s.Files) == 0 {
		return 0, false
	}
	var last int64
	for _, f := range s.Files {
		if f.UploadFrom == nil || f.UploadedAt == nil {
			return 0, false
		}
		last = max(last, *f.UploadedAt)
	}
	return last - *s.EndedAt, true
}

// BaseUploadState is the upload state without overdue, which depends on
// the clock; stores index it and add overdue when they read.
func (s State) BaseUploadState() UploadState { return s.baseUploadState() }

// View returns the API's view of the recording at the server time now, with
// its files (sorted by name) but without events.
func (s State) View(now time.Time) Recording {
	r := Recording{
		RecordID:        s.RecordID,
		AppKey:          s.AppKey,
		RoomID:          s.RoomID,
		SessionID:       s.SessionID,
		UserID:          s.UserID,
		Mode:            s.Mode,
		ModeName:        s.Mode.String(),
		Status:          s.Status(),
		UploadState:     s.UploadState(now),
		EndedAt:         s.EndedAt,
		Config:          s.Config,
		AudioSample:     s.AudioSample,
		VideoResolution: s.VideoResolution,
		Extra:           s.Extra,
		LastError:       s.LastError,
		Files:           s.FileViews(),
	}
	if lag, ok := s.UploadLag(); ok {
		r.UploadLagMs = ptr(lag)
	}
	if s.StartFrom != nil {
		r.StartedAt = ptr(s.StartFrom.Timestamp)
	}
	if s.FirstSeenAt != 0 {
		r.FirstSeenAt, r.LastEventAt = ptr(s.FirstSeenAt), ptr(s.LastEventAt)
	}
	for _, f := range r.Files {
		r.FileCount++
		if f.UploadStatus == UploadStatusUploaded {
			r.UploadedCount++
		}
		if f.FileSize != nil {
			r.TotalBytes += *f.FileSize
		}
	}
	return r
}

// FileViews returns the API's view of the recording's files, sorted by name.
func (s State) FileViews() []File {
	if len(s.Files) == 0 {
		return nil
	}
	names := make([]string, 0, len(s.Files))
	for n := range s.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	files := make([]File, 0, len(names))
	for _, n := range names {
		files = append(files, s.FileView(n))
	}
	return files
}

// FileView returns the API's view of the named file; the name must be one
// of s.Files.
func (s State) FileView(name string) File {
	f := s.Files[name]
	v := File{
		FileName:     name,
		RecordID:     s.RecordID,
		Kind:         f.Kind,
		FileSize:     f.Size,
		UploadStatus: f.uploadStatus(),
		UploadedAt:   f.UploadedAt,
		FirstSeenAt:  f.FirstSeenAt,
	}
	if f.UploadFrom != nil {
		v.FileURL = ptr(f.URL)
	}
	if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
		v.Format = name[dot+1:]
	}
	if p, ok := rc.ParseFileNameUser(name, s.SessionID, s.RoomID, s.UserID); ok {
		v.Parsed = &p
	}
	return v
}
