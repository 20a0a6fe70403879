package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
)

// VerificationState is where the check of an uploaded file's URL stands
// (CONTRACT.md's File.verification.state).
type VerificationState string

// The verification states.
const (
	// VerifyPending: not checked yet, or the last check failed in a way
	// that may pass and is retried.
	VerifyPending VerificationState = "pending"
	// VerifyVerified: the storage answered with the object, and its size
	// is RC's fileSize (or RC gave none).
	VerifyVerified VerificationState = "verified"
	// VerifyMissing: the storage answered that the object is not there.
	VerifyMissing VerificationState = "missing"
	// VerifySizeMismatch: the object is there with another size than RC's.
	VerifySizeMismatch VerificationState = "size_mismatch"
	// VerifyUnreachable: the URL could not be checked: its host is not
	// allowed, it refused us for good, or retries ran out.
	VerifyUnreachable VerificationState = "unreachable"
)

// VerificationStates lists the states, in the order forms offer them.
var VerificationStates = []VerificationState{VerifyMissing, VerifySizeMismatch, VerifyUnreachable, VerifyPending, VerifyVerified}

// Final reports whether the state is a check's outcome rather than a wait
// for one.
func (s VerificationState) Final() bool { return s != VerifyPending && s != "" }

// Verification is what recledger found at an uploaded file's URL
// (CONTRACT.md). It is an observation of the customer's storage, not of
// RC's callbacks: it is kept beside the ledger, survives a rebuild, and
// can always be made again (re-check).
type Verification struct {
	State       VerificationState `json:"state"`
	HTTPStatus  *int              `json:"httpStatus"`  // the storage's last answer; null when none came
	Size        *int64            `json:"size"`        // the object's size as the storage reported it
	ContentType string            `json:"contentType"` // as the storage reported it
	ETag        string            `json:"etag"`
	CheckedAt   *int64            `json:"checkedAt"` // server clock, Unix ms; null until a check ended
	Attempts    int               `json:"attempts"`  // checks made for this URL
	// Error says why the state is not verified, in words that never hold
	// the URL's query string or user info.
	Error string `json:"error,omitempty"`
}

// FileCheck is one file's verification as a store keeps it: the
// verifier's work queue and its results, one row per (recording, file).
type FileCheck struct {
	RecordID string
	FileName string
	AppKey   string
	// URLHash identifies the upload URL checked (URLHash): a later upload
	// with another URL makes the check stale and it starts again. The URL
	// itself is not kept here (presigned URLs carry credentials); the
	// verifier reads it from the recording when it checks.
	URLHash string
	Verification
	// NextAt is when the check is due (server clock, Unix ms); 0 when the
	// state is final and nothing is due.
	NextAt int64
	// TakenAt, when not 0, is the NextAt the check had when the verifier
	// took it (DueVerifications): SaveVerification stores the outcome only
	// while the stored check is still due then. A re-check asked for while
	// the check was in flight made it due anew, and the outcome of the
	// check begun before it (say, before objects were restored) must not
	// answer it. Not stored.
	TakenAt int64
	// Announced says the final state's outbound event
	// (recording.file_verified or recording.file_missing) was announced,
	// or needs none.
	Announced bool
}

// URLHash is the FileCheck.URLHash of an upload URL.
func URLHash(url string) string {
	h := sha256.Sum256([]byte(url))
	return hex.EncodeToString(h[:16])
}

// RecheckFilter selects checks to make due again. RecordID alone selects a
// recording's files, with FileName one file; State alone every check in
// that state (the CLI's --all-missing). The zero filter selects nothing.
type RecheckFilter struct {
	RecordID string
	FileName string
	State    VerificationState
}

// Verifications is the store role that keeps storage verification.
type Verifications interface {
	// VerificationCursor returns the feed seq up to which the verifier has
	// queued the uploads it saw (0 at first).
	VerificationCursor(ctx context.Context) (int64, error)
	// QueueVerifications stores checks to make and moves the cursor to
	// cursor, in one transaction. A check for a (recording, file) already
	// stored with the same URLHash is left as it is (a redelivered
	// upload); with another URLHash it is replaced.
	QueueVerifications(ctx context.Context, checks []FileCheck, cursor int64) error
	// DueVerifications returns up to limit checks whose NextAt is at or
	// before now and not 0, the earliest first.
	DueVerifications(ctx context.Context, now int64, limit int) ([]FileCheck, error)
	// SaveVerification stores a check's outcome, unless the stored check
	// has another URLHash (a newer upload replaced it meanwhile) or, with
	// c.TakenAt, another NextAt (it was re-checked meanwhile); it reports
	// whether it stored it.
	SaveVerification(ctx context.Context, c FileCheck) (bool, error)
	// DropVerification deletes the check, if the stored one still has its
	// URLHash: its file is no longer in the ledger. Forget deletes a
	// recording's checks, but a check queued from a read of the recording
	// just before Forget committed is stored after it, and would keep the
	// file's name (which may name a user) of a recording erased.
	DropVerification(ctx context.Context, c FileCheck) error
	// FileVerifications returns a recording's checks by file name.
	FileVerifications(ctx context.Context, recordID string) (map[string]Verification, error)
	// Recheck makes the checks f selects due at now, whatever their state,
	// and returns how many.
	Recheck(ctx context.Context, f RecheckFilter, now int64) (int64, error)
	// Unannounced returns up to limit checks in a final state whose event
	// was not announced yet.
	Unannounced(ctx context.Context, limit int) ([]FileCheck, error)
	// MarkAnnounced notes that the check's event was announced, if the
	// stored check still has that URLHash and state.
	MarkAnnounced(ctx context.Context, c FileCheck) error
	// VerificationCounts counts the stored checks by state: of the states
	// given, or of every state when none is. Counting a few states reads
	// only their checks (the dashboard's overview asks for missing and
	// size_mismatch on every refresh; a store holds millions verified).
	VerificationCounts(ctx context.Context, states ...VerificationState) (map[VerificationState]int64, error)
}
