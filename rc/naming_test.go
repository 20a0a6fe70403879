package rc_test

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/rc"
)

func TestParseFileName(t *testing.T) {
	tests := []struct {
		name             string
		file             string
		session, room    string
		user             string
		want             rc.NameParts
		wantOK           bool
		viaParseFileName bool // also true through ParseFileName (no user id)
	}{
		{"RC mix example", "1K6-Q3uj6w7cfbGSq0ahA9_1775_1577616009233.mkv", "1K6-Q3uj6w7cfbGSq0ahA9", "1775", "",
			rc.NameParts{SessionID: "1K6-Q3uj6w7cfbGSq0ahA9", RoomID: "1775", Timestamp: 1577616009233, Format: "mkv"}, true, true},
		{"RC single example", "1K6-Q3uj6w7cfbGSq0ahA9_1775_123456_RongCloudRTC_1577616009233.mkv", "1K6-Q3uj6w7cfbGSq0ahA9", "1775", "123456",
			rc.NameParts{SessionID: "1K6-Q3uj6w7cfbGSq0ahA9", RoomID: "1775", UserID: "123456", StreamTag: "RongCloudRTC", Timestamp: 1577616009233, Format: "mkv"}, true, true},
		{"RC single-user mix example", "1K6-Q3uj6w7cfbGSq0ahA9_1775_123456_1577616009233.mkv", "1K6-Q3uj6w7cfbGSq0ahA9", "1775", "123456",
			rc.NameParts{SessionID: "1K6-Q3uj6w7cfbGSq0ahA9", RoomID: "1775", UserID: "123456", Timestamp: 1577616009233, Format: "mkv"}, true, true},
		{"RC mode-1 callback, no tag", "lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4", "lSA2G6CUf9A-6nnoNwXCx8", "111", "222",
			rc.NameParts{SessionID: "lSA2G6CUf9A-6nnoNwXCx8", RoomID: "111", UserID: "222", Timestamp: 1530027865231, Format: "mp4"}, true, true},
		{"ids with underscores", "s_1_room_2_user_3_screen_share_1530027865231.flv", "s_1", "room_2", "user_3",
			rc.NameParts{SessionID: "s_1", RoomID: "room_2", UserID: "user_3", StreamTag: "screen_share", Timestamp: 1530027865231, Format: "flv"}, true, false},
		{"mix with underscored room", "s1_room_a_1530027865231.m3u8", "s1", "room_a", "",
			rc.NameParts{SessionID: "s1", RoomID: "room_a", Timestamp: 1530027865231, Format: "m3u8"}, true, true},
		{"user id equal to the rest", "s_r_u_x_1.mp3", "s", "r", "u_x",
			rc.NameParts{SessionID: "s", RoomID: "r", UserID: "u_x", Timestamp: 1, Format: "mp3"}, true, false},
		{"known room is a prefix of another", "s_111_222_5.aac", "s", "11", "",
			rc.NameParts{SessionID: "s", RoomID: "111", UserID: "222", Timestamp: 5, Format: "aac"}, true, true},
		{"unknown ids", "a_b_c_d_5.mp4", "", "", "",
			rc.NameParts{SessionID: "a", RoomID: "b", UserID: "c", StreamTag: "d", Timestamp: 5, Format: "mp4"}, true, true},
		{"ids disagree with the callback", "x_y_5.mp4", "s", "r", "",
			rc.NameParts{SessionID: "x", RoomID: "y", Timestamp: 5, Format: "mp4"}, true, true},
		{"no extension", "s_r_1530027865231", "s", "r", "", rc.NameParts{}, false, false},
		{"empty extension", "s_r_1530027865231.", "s", "r", "", rc.NameParts{}, false, false},
		{"odd extension", "s_r_1530027865231.mp4?x", "s", "r", "", rc.NameParts{}, false, false},
		{"no timestamp", "s_r_user.mp4", "s", "r", "", rc.NameParts{}, false, false},
		{"signed timestamp", "s_r_+15.mp4", "s", "r", "", rc.NameParts{}, false, false},
		{"timestamp overflow", "s_r_99999999999999999999.mp4", "s", "r", "", rc.NameParts{}, false, false},
		{"only a timestamp", "1530027865231.mp4", "", "", "", rc.NameParts{}, false, false},
		{"one id", "s_1530027865231.mp4", "", "", "", rc.NameParts{}, false, false},
		{"empty session", "_r_1.mp4", "", "", "", rc.NameParts{}, false, false},
		{"empty user part", "s_r__5.mp4", "", "", "", rc.NameParts{}, false, false},
		{"empty user part after known ids", "s_r__5.mp4", "s", "r", "", rc.NameParts{}, false, false},
		{"temporary start name", "tmp", "s", "r", "", rc.NameParts{}, false, false},
		{"empty", "", "", "", "", rc.NameParts{}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := rc.ParseFileNameUser(tt.file, tt.session, tt.room, tt.user)
			if ok != tt.wantOK {
				t.Fatalf("ParseFileNameUser(%q) ok = %v, want %v (%+v)", tt.file, ok, tt.wantOK, got)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseFileNameUser(%q) (-want +got):\n%s", tt.file, diff)
			}
			if tt.viaParseFileName {
				got2, ok2 := rc.ParseFileName(tt.file, tt.session, tt.room)
				if diff := cmp.Diff(tt.want, got2); !ok2 || diff != "" {
					t.Errorf("ParseFileName(%q) ok=%v (-want +got):\n%s", tt.file, ok2, diff)
				}
			}
			if ok && strings.TrimLeft(strconv.FormatInt(got.Timestamp, 10), "0") != "" {
				if back := rc.FileName(got); back != tt.file {
					t.Errorf("FileName(parse(%q)) = %q", tt.file, back)
				}
			}
		})
	}
}

func TestFileNamePatterns(t *testing.T) {
	base := rc.NameParts{SessionID: "1K6-Q3uj6w7cfbGSq0ahA9", RoomID: "1775", Timestamp: 1577616009233, Format: "mkv"}
	single, user := base, base
	single.UserID, single.StreamTag = "123456", "RongCloudRTC"
	user.UserID = "123456"
	tagOnly := base
	tagOnly.StreamTag = "ignored"
	for _, tt := range []struct {
		parts rc.NameParts
		want  string
	}{
		{base, "1K6-Q3uj6w7cfbGSq0ahA9_1775_1577616009233.mkv"},
		{single, "1K6-Q3uj6w7cfbGSq0ahA9_1775_123456_RongCloudRTC_1577616009233.mkv"},
		{user, "1K6-Q3uj6w7cfbGSq0ahA9_1775_123456_1577616009233.mkv"},
		{tagOnly, "1K6-Q3uj6w7cfbGSq0ahA9_1775_1577616009233.mkv"},
	} {
		if got := rc.FileName(tt.parts); got != tt.want {
			t.Errorf("FileName(%+v) = %q, want %q", tt.parts, got, tt.want)
		}
	}
}

// TestFileNameRoundTrip builds names from random parts, ids full of '_' and
// '-' included, and checks that parsing with the known ids gives the parts
// back. Without the user id the split between user and tag is a guess, so
// that round trip is checked only for user ids without '_'.
func TestFileNameRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	formats := []string{"mp4", "mkv", "flv", "m3u8", "aac", "mp3"}
	const idChars = "abcXYZ019_-."
	id := func() string {
		n := 1 + r.IntN(12)
		b := make([]byte, n)
		for i := range b {
			b[i] = idChars[r.IntN(len(idChars))]
		}
		return string(b)
	}
	for i := range 20000 {
		p := rc.NameParts{SessionID: id(), RoomID: id(), Timestamp: r.Int64N(1 << 45), Format: formats[r.IntN(len(formats))]}
		switch i % 3 {
		case 1:
			p.UserID = id()
		case 2:
			p.UserID, p.StreamTag = id(), id()
		}
		name := rc.FileName(p)
		got, ok := rc.ParseFileNameUser(name, p.SessionID, p.RoomID, p.UserID)
		if !ok || got != p {
			t.Fatalf("ParseFileNameUser(%q, %q, %q, %q) = %+v, %v; want %+v", name, p.SessionID, p.RoomID, p.UserID, got, ok, p)
		}
		if !strings.Contains(p.UserID, "_") && !strings.Contains(p.StreamTag, "_") {
			if got, ok := rc.ParseFileName(name, p.SessionID, p.RoomID); !ok || got != p {
				t.Fatalf("ParseFileName(%q, %q, %q) = %+v, %v; want %+v", name, p.SessionID, p.RoomID, got, ok, p)
			}
		}
	}
}

// FuzzParseFileName checks that any name the rules accept is rebuilt exactly
// by FileName (the parse loses nothing), whatever the known ids are.
func FuzzParseFileName(f *testing.F) {
	f.Add("1K6-Q3uj6w7cfbGSq0ahA9_1775_123456_RongCloudRTC_1577616009233.mkv", "1K6-Q3uj6w7cfbGSq0ahA9", "1775", "123456")
	f.Add("1K6-Q3uj6w7cfbGSq0ahA9_1775_1577616009233.mkv", "", "", "")
	f.Add("s_1_room_2_user_3_screen_share_1530027865231.flv", "s_1", "room_2", "user_3")
	f.Add("a__b_._1.x", "a_", "_b", ".")
	f.Fuzz(func(t *testing.T, name, session, room, user string) {
		p, ok := rc.ParseFileNameUser(name, session, room, user)
		if !ok {
			if p != (rc.NameParts{}) {
				t.Fatalf("not ok, but parts %+v", p)
			}
			return
		}
		if p.SessionID == "" || p.RoomID == "" || p.Format == "" || p.Timestamp < 0 {
			t.Fatalf("ParseFileNameUser(%q) = %+v: empty part", name, p)
		}
		if p.StreamTag != "" && p.UserID == "" {
			t.Fatalf("ParseFileNameUser(%q) = %+v: tag without user", name, p)
		}
		dot := strings.LastIndexByte(name, '.')
		us := strings.LastIndexByte(name[:dot], '_')
		if ts := name[us+1 : dot]; ts != strconv.FormatInt(p.Timestamp, 10) {
			return // leading zeros: the number is right, its text not kept
		}
		if back := rc.FileName(p); back != name {
			t.Fatalf("FileName(ParseFileNameUser(%q)) = %q", name, back)
		}
	})
}
