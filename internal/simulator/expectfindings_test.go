package simulator

import (
	"testing"
	"time"

	"github.com/recledger/recledger/rc"
)

// TestOracleJudgesEachUsersStream: in a mode with a stream per user, a
// user who joins late is judged from their first file and one who leaves
// early to their own end, so neither is missing files; without that end
// acknowledged, the early leaver is judged to the recording's end and is.
func TestOracleJudgesEachUsersStream(t *testing.T) {
	rec := Recording{RecordID: "users", RoomID: "room", SessionID: "sess", Mode: rc.ModeAudioVideo, StartedAt: time.UnixMilli(vt0),
		Duration: 95*time.Minute + 3*time.Second, StartCode: rc.StatusOK, EndCode: rc.StatusOK,
		Config: rc.Config{Trigger: 1, MixLayout: 2, SlicesMin: 30, VideoFormat: "mp4", AudioFormat: "aac"}}
	userStream(&rec, "u1", 0, rec.Duration)                               // four files
	userStream(&rec, "late", 40*time.Minute, rec.Duration-40*time.Minute) // two
	userStream(&rec, "early", 0, 20*time.Minute)                          // one
	seen := vt0
	got := shown{FirstSeenAt: &seen, LastEventAt: &seen}
	judge := func(cbs []Callback) []expectedFinding {
		want, err := Expect(cbs)
		if err != nil {
			t.Fatal(err)
		}
		return expectFindings(rec, want, got, clock{seen + 1000, seen + 1000}, time.Hour)
	}
	all := rec.Callbacks("app")
	if found := judge(all); found != nil {
		t.Errorf("every callback: findings %+v, want none", found)
	}
	var noEarlyEnd []Callback
	for _, c := range all {
		if c.Type != rc.TypeEnd || c.FileName != rec.Files[len(rec.Files)-1].Name {
			noEarlyEnd = append(noEarlyEnd, c)
		}
	}
	if len(noEarlyEnd) != len(all)-1 {
		t.Fatalf("the early leaver's end is not among the callbacks")
	}
	found := judge(noEarlyEnd)
	if len(found) != 1 || found[0].Kind != kindMissingFiles || found[0].Evidence.Expected != 4 || found[0].Evidence.Got != 1 {
		t.Errorf("without the early leaver's end: findings %+v, want missing_files 1 of 4", found)
	}
}
