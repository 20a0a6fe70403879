package ledger_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// FuzzFindings judges recordings whose files have any names (RC advises
// against relying on them; a sender chooses them): the rules never panic,
// give their kinds in FindingKinds order, every gap exceeds its limit and
// names two of the recording's files, and the stored mask is exactly the
// clock-free kinds. Names ending in mkv are final files, named by an end
// callback (their streams end there).
func FuzzFindings(f *testing.F) {
	f.Add("S", "R_1", "u_1", int8(0), uint8(30), "S_R_1_u_1_1000.mp4\nS_R_1_u_1_5401000.mp4\nS_R_1_u_1_cam_1000.mp4", int64(9_000_000))
	f.Add("", "", "", int8(4), uint8(1), "_1.mp4\n__2.a\nx_y_3.mp4", int64(-1))
	f.Add("a_b", "c", "", int8(3), uint8(120), "a_b_c_0.flv\na_b_c_99999999999999999999.flv", int64(0))
	f.Add("S", "R", "u", int8(0), uint8(1), "S_R_u_1000.mp4\nS_R_late_200000.mp4\nS_R_early_1000.mkv\nS_R_u_9223372036854775807.mkv", int64(400000))
	f.Fuzz(func(t *testing.T, session, room, user string, mode int8, slices_ uint8, names string, end int64) {
		st := ledger.State{RecordID: "r", SessionID: session, RoomID: room, UserID: user, Mode: rc.Mode(mode),
			StartFrom: &rc.Key{Timestamp: 1000}, Config: &rc.Config{SlicesMin: int(slices_)},
			FirstSeenAt: 1, LastEventAt: 2, Files: map[string]ledger.FileState{}}
		if end >= 0 {
			st.EndedAt = &end
		}
		for _, n := range strings.Split(names, "\n") {
			st.Files[n] = ledger.FileState{}
			if strings.HasSuffix(n, "mkv") { // a final file, its stream ended by its end callback
				st.Files[n] = ledger.FileState{Kind: ledger.KindFinal, SizeFrom: &rc.Key{Type: rc.TypeEnd, Timestamp: end - int64(len(n))}}
			}
		}
		fs := ledger.FindingRules{}.Findings(&st, time.UnixMilli(3))
		var mask ledger.FindingMask
		last := -1
		for _, fd := range fs {
			i := slices.Index(ledger.FindingKinds, fd.Kind)
			if i < last {
				t.Fatalf("kinds out of order: %+v", fs)
			}
			last = i
			mask |= fd.Kind.Bit()
			if fd.Kind == ledger.FindingSegmentGap {
				_, a := st.Files[fd.Evidence.After]
				_, b := st.Files[fd.Evidence.Before]
				if fd.Evidence.GapMs <= fd.Evidence.LimitMs || !a || !b {
					t.Fatalf("gap %+v", fd.Evidence)
				}
			}
			if fd.Kind == ledger.FindingMissingFiles && fd.Evidence.Got >= fd.Evidence.Expected {
				t.Fatalf("missing files %+v", fd.Evidence)
			}
		}
		if m := ledger.StateFindingMask(&st); m != mask {
			t.Fatalf("mask %b, findings %b", m, mask)
		}
	})
}
