// Package ledger is recledger's domain: what a recording, its files and its
// events are, and the rules that fold RC's callbacks into them.
//
// Everything the API shows is derived from the raw callback log through
// Apply, a pure function whose result does not depend on the order in which
// callbacks arrive: each field is merged by a commutative rule (minimum,
// maximum, "any", or the value of the first callback in a fixed total order),
// so a replay of the log, in any order, rebuilds the same ledger.
package ledger

import (
	"encoding/json"
	"time"

	"github.com/recledger/recledger/rc"
)

// Status is where a recording stands.
type Status string

// The recording statuses of CONTRACT.md.
const (
	StatusRecording Status = "recording" // seen, not ended
	StatusEnded     Status = "ended"     // end seen, some file not yet uploaded
	StatusComplete  Status = "complete"  // end seen and every known file uploaded
	StatusFailed    Status = "failed"    // a start or end callback carried a code other than 200
)

// UploadState summarises the uploads of a recording's files.
type UploadState string

// The upload states of CONTRACT.md.
const (
	UploadNone     UploadState = "none"     // no files yet
	UploadPending  UploadState = "pending"  // files, none uploaded, none failed
	UploadPartial  UploadState = "partial"  // some uploaded
	UploadComplete UploadState = "complete" // every file uploaded
	UploadFailed   UploadState = "failed"   // some upload failed and was not retried successfully
	UploadOverdue  UploadState = "overdue"  // ended over OverdueAfter ago and still not all uploaded
)

// OverdueAfter is how long after the end callback arrived a recording may
// still have files not uploaded: RC retries a failed upload for 24 hours, and
// an hour more allows for the last retry and clock differences.
const OverdueAfter = 25 * time.Hour

// FileKind tells which callback named a file.
type FileKind string

// The file kinds of CONTRACT.md.
const (
	KindFinal   FileKind = "final"   // named by an end callback
	KindSegment FileKind = "segment" // named by a segment callback only
	KindUnknown FileKind = "unknown" // named by upload callbacks only
)

// UploadStatus is where one file's upload stands.
type UploadStatus string

// The file upload statuses of CONTRACT.md.
const (
	UploadStatusPending  UploadStatus = "pending"
	UploadStatusUploaded UploadStatus = "uploaded"
	UploadStatusFailed   UploadStatus = "failed"
)

// Recording is the API's view of one recording (CONTRACT.md). Times are Unix
// milliseconds; startedAt and endedAt are RC's clock, firstSeenAt and
// lastEventAt the server's.
type Recording struct {
	RecordID        string      `json:"recordId"`
	AppKey          string      `json:"appKey"`
	RoomID          string      `json:"roomId"`
	SessionID       string      `json:"sessionId"`
	UserID          string      `json:"userId"`
	Mode            rc.Mode     `json:"mode"`
	ModeName        string      `json:"modeName"`
	Status          Status      `json:"status"`
	UploadState     UploadState `json:"uploadState"`
	StartedAt       *int64      `json:"startedAt"`
	EndedAt         *int64      `json:"endedAt"`
	FirstSeenAt     *int64      `json:"firstSeenAt"`
	LastEventAt     *int64      `json:"lastEventAt"`
	Config          *rc.Config  `json:"config"`
	AudioSample     int         `json:"audioSample"`
	VideoResolution string      `json:"videoResolution"`
	Extra           string      `json:"extra"`
	FileCount       int         `json:"fileCount"`
	UploadedCount   int         `json:"uploadedCount"`
	TotalBytes      int64       `json:"totalBytes"`
	LastError       *ErrorInfo  `json:"lastError"`
	// UploadLagMs is how long after its end the last file was uploaded:
	// the latest uploadedAt minus endedAt (RC's clock); null until the
	// recording ended and every file is uploaded.
	UploadLagMs *int64 `json:"uploadLagMs"`
	// Findings are what the completeness checks find wrong with the
	// recording at the time of the view (FindingRules); absent when none.
	Findings []Finding `json:"findings,omitempty"`
	Files    []File    `json:"files,omitempty"`
	Events   []Event   `json:"events,omitempty"`
}

// ErrorInfo is the latest failure a recording's callbacks reported.
type ErrorInfo struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	At      int64  `json:"at"` // RC's timestamp of the failing callback
}

// File is the API's view of one recording file (CONTRACT.md).
type File struct {
	FileName     string        `json:"fileName"`
	RecordID     string        `json:"recordId"`
	Kind         FileKind      `json:"kind"`
	FileSize     *int64        `json:"fileSize"`
	FileURL      *string       `json:"fileUrl"`
	UploadStatus UploadStatus  `json:"uploadStatus"`
	UploadedAt   *int64        `json:"uploadedAt"`
	FirstSeenAt  int64         `json:"firstSeenAt"`
	Format       string        `json:"format"`
	Parsed       *rc.NameParts `json:"parsed"`
	AlsoIn       []string      `json:"alsoIn,omitempty"`
	// Verification is the storage check of an uploaded file, when storage
	// verification is on (stores keep it beside the state: see
	// Verifications).
	Verification *Verification `json:"verification,omitempty"`
}

// Event is one callback in the raw log (CONTRACT.md).
type Event struct {
	Seq          int64   `json:"seq"`        // arrival order, gapless per store
	ReceivedAt   int64   `json:"receivedAt"` // server clock, Unix ms
	Type         rc.Type `json:"type"`
	TypeName     string  `json:"typeName"`
	Timestamp    int64   `json:"timestamp"`
	AppKey       string  `json:"appKey"`
	RecordID     string  `json:"recordId"`
	FileName     string  `json:"fileName,omitempty"`
	Code         int     `json:"code"`
	ErrorMessage string  `json:"errorMessage"`
	Duplicate    bool    `json:"duplicate"`
	// Removed marks a tombstone: the row of a recording removed by
	// retention or erasure. It keeps its Seq and ReceivedAt (the feed
	// stays gapless); every other field is empty and TypeName is
	// "removed".
	Removed bool            `json:"removed,omitempty"`
	Body    json.RawMessage `json:"body"`
}

// NewEvent describes a parsed callback received at receivedAt as a store
// gives it back; the store assigns Seq and Duplicate. The error message is
// the TEXT column's copy (TextColumn); the body is exact.
func NewEvent(cb rc.Callback, receivedAt time.Time) Event {
	return Event{
		ReceivedAt:   receivedAt.UnixMilli(),
		Type:         cb.Type,
		TypeName:     cb.Type.String(),
		Timestamp:    cb.Timestamp,
		AppKey:       cb.AppKey,
		RecordID:     cb.RecordID,
		FileName:     cb.Output.FileName,
		Code:         cb.Code,
		ErrorMessage: TextColumn(cb.ErrorMessage),
		Body:         cb.Raw,
	}
}
