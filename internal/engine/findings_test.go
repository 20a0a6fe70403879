package engine

import (
	"testing"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// TestFindingInputsSeeAnEndNamingAKnownFile: a user's end that arrives
// after its file's upload adds no file and moves no recording end (another
// user's came later), yet ends that user's stream, which missing_files
// judges: the stored findings must be derived again.
func TestFindingInputsSeeAnEndNamingAKnownFile(t *testing.T) {
	ended := int64(10_000_000)
	before := ledger.State{RecordID: "r", SessionID: "S", RoomID: "R", UserID: "u1", Mode: rc.ModeUserAudioVideo, EndedAt: &ended,
		MetaFrom: &rc.Key{Type: rc.TypeStart, RecordID: "r"}, FirstSeenAt: 1, LastEventAt: 4,
		Files: map[string]ledger.FileState{"S_R_u2_1000.mp4": {Kind: ledger.KindUnknown, UploadFrom: &rc.Key{Type: rc.TypeUpload, Timestamp: 2000}}}}
	cb := rc.Callback{Type: rc.TypeEnd, Timestamp: 1_500_000, RecordID: "r", SessionID: "S", RoomID: "R", UserID: "u2", Mode: rc.ModeUserAudioVideo, Code: 200}
	size := int64(7)
	cb.Output.FileName, cb.Output.FileSize = "S_R_u2_1000.mp4", &size
	after := ledger.Apply(before, cb, 5)
	if *after.EndedAt != ended || len(after.Files) != len(before.Files) || after.UserID != before.UserID {
		t.Fatalf("the case moved the end or added a file: %+v", after)
	}
	if !findingInputsChanged(&before, &after) {
		t.Error("an end naming a known file: findings inputs unchanged")
	}
	if findingInputsChanged(&after, &after) {
		t.Error("the same state: findings inputs changed")
	}
}
