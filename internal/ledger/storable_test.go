package ledger_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

func TestCheckStorable(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(cb *rc.Callback)
		field string // "" when storable
	}{
		{"RC's own", func(*rc.Callback) {}, ""},
		{"recordId at the bound", func(cb *rc.Callback) { cb.RecordID = strings.Repeat("r", ledger.MaxIDBytes) }, ""},
		{"recordId over it", func(cb *rc.Callback) { cb.RecordID = strings.Repeat("r", ledger.MaxIDBytes+1) }, "recordId"},
		{"appKey over it in bytes", func(cb *rc.Callback) { cb.AppKey = strings.Repeat("é", 129) }, "appKey"},
		{"fileName at the bound", func(cb *rc.Callback) { cb.Output.FileName = strings.Repeat("f", ledger.MaxFileNameBytes) }, ""},
		{"fileName over it", func(cb *rc.Callback) { cb.Output.FileName = strings.Repeat("f", ledger.MaxFileNameBytes+1) }, "output.fileName"},
		{"NUL in roomId", func(cb *rc.Callback) { cb.RoomID = "a\x00" }, "roomId"},
		{"newline in sessionId", func(cb *rc.Callback) { cb.SessionID = "a\nINFO forged" }, "sessionId"},
		{"DEL in userId", func(cb *rc.Callback) { cb.UserID = "a\x7f" }, "userId"},
		{"C1 in fileName", func(cb *rc.Callback) { cb.Output.FileName = "a\u009bb" }, "output.fileName"},
		{"invalid UTF-8 in recordId", func(cb *rc.Callback) { cb.RecordID = "a\xffb" }, "recordId"},
		{"U+FFFD itself in recordId", func(cb *rc.Callback) { cb.RecordID = "a\uFFFDb" }, ""},
		{"RTL mark and emoji in roomId", func(cb *rc.Callback) { cb.RoomID = "\u200f🎥" }, ""},
		{"NUL in free text", func(cb *rc.Callback) {
			cb.ErrorMessage, cb.Extra, cb.Output.FileURL = "\x00", "\x00\xff", strings.Repeat("\x00", 100_000)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb := rc.Callback{AppKey: "app", RecordID: "8329208b99410743dcfeb80548e2c0ec", RoomID: "room", SessionID: "s", UserID: "u",
				Output: rc.Output{FileName: "s_room_u_1.mp4"}}
			tt.edit(&cb)
			err := ledger.CheckStorable(&cb)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			fe, ok := errors.AsType[*ledger.FieldError](err)
			if !ok || fe.Field != tt.field || !errors.Is(err, ledger.ErrUnstorable) {
				t.Fatalf("err %v, want ErrUnstorable naming %s", err, tt.field)
			}
			if len(err.Error()) > 120 {
				t.Errorf("the error echoes the value: %q", err.Error())
			}
		})
	}
}

func TestTextColumnAndClip(t *testing.T) {
	for in, want := range map[string]string{"plain é": "plain é", "a\x00b": "a\uFFFDb", "a\xffb": "a\uFFFDb", "\x00\xfe": "\uFFFD\uFFFD"} {
		if got := ledger.TextColumn(in); got != want {
			t.Errorf("TextColumn(%q) = %q, want %q", in, got, want)
		}
	}
	if got := ledger.Clip("short", 10); got != "short" {
		t.Errorf("Clip short = %q", got)
	}
	long := strings.Repeat("é", 300) // 600 bytes
	got := ledger.Clip(long, 201)
	if !utf8.ValidString(got) || !strings.HasSuffix(got, "…(600 bytes)") || len(got) > 201+len("…(600 bytes)") {
		t.Errorf("Clip long = %q", got)
	}
}

// TestPrintable: a label its sender chose (a claimed app key) loses what
// could break a log line, a terminal or a TEXT column, or hide what it
// says, and is bounded.
func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"your_appkey", "your_appkey"},
		{"", ""},
		{"k\x00e\x00y", "key"},
		{"key\nlevel=ERROR msg=forged", "keylevel=ERROR msg=forged"},
		{"\x1b[31mred\x1b[0m", "[31mred[0m"},
		{"key\u0085\u009b", "key"},         // C1 controls
		{"\u202egnp.exe\u200b", "gnp.exe"}, // bidi override, zero-width space
		{"k\xffey", "k\uFFFDey"},           // invalid UTF-8
		{"应用", "应用"},                       // any language's letters stay
		{strings.Repeat("a", 65), strings.Repeat("a", 64) + "…(65 bytes)"},
		{strings.Repeat("\x00", 1000) + "k", "k"}, // cleaned before it is measured
	} {
		if got := ledger.Printable(tt.in, 64); got != tt.want {
			t.Errorf("Printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPrepareRejectionBoundsEverything(t *testing.T) {
	h := http.Header{"Signature": {"***"}, "Nul": {"a\x00b"}}
	for i := range 200 {
		h.Set(fmt.Sprintf("X-Forged-%03d", i), strings.Repeat("v", 60_000/200))
	}
	h.Set("X-Huge", strings.Repeat("h", 60_000))
	r := ledger.Rejection{Reason: "bad_signature", AppKey: strings.Repeat("k\x00", 10_000), Message: strings.Repeat("m\x00", 10_000), Remote: strings.Repeat("r", 1000),
		Method: "POST", Path: "/" + strings.Repeat("p", 5000), Header: h, Body: make([]byte, 2*ledger.MaxQuarantineBody)}
	sr := ledger.PrepareRejection(r)
	if len(sr.Header) > ledger.MaxRejectionHeaderFields+1 {
		t.Errorf("%d header fields kept, want at most %d and the marker", len(sr.Header), ledger.MaxRejectionHeaderFields)
	}
	if sr.Header.Get(ledger.DroppedHeader) == "" {
		t.Errorf("no %s marker though fields were dropped", ledger.DroppedHeader)
	}
	total := 0
	for k, vs := range sr.Header {
		if k == ledger.DroppedHeader {
			continue
		}
		total += len(k)
		for _, v := range vs {
			total += len(v)
			if len(v) > ledger.MaxRejectionHeaderValue+len("…(60000 bytes)") {
				t.Errorf("%s: %d bytes kept", k, len(v))
			}
			if strings.ContainsRune(v, 0) {
				t.Errorf("%s: NUL kept (PostgreSQL's JSONB refuses it)", k)
			}
		}
	}
	if total > ledger.MaxRejectionHeaderBytes {
		t.Errorf("%d bytes of header kept, want at most %d", total, ledger.MaxRejectionHeaderBytes)
	}
	if len(sr.Message) > ledger.MaxRejectionText+20 || strings.ContainsRune(sr.Message, 0) || len(sr.AppKey) > ledger.MaxRejectionShort+20 || strings.ContainsRune(sr.AppKey, 0) || len(sr.Remote) > ledger.MaxRejectionRemote+20 ||
		len(sr.Path) > ledger.MaxRejectionText+20 || len(sr.Body) != ledger.MaxQuarantineBody {
		t.Errorf("not bounded: message %d, app key %d, remote %d, path %d, body %d bytes", len(sr.Message), len(sr.AppKey), len(sr.Remote), len(sr.Path), len(sr.Body))
	}
	header, _ := json.Marshal(sr.Header)
	want := ledger.RejectionRowOverhead + len(sr.Body) + len(header) + len(sr.Message) + len(sr.Remote) + len(sr.Path) + len(sr.Reason) + len(sr.AppKey) + len(sr.Method)
	if sr.Size != int64(want) || string(sr.HeaderJSON) != string(header) {
		t.Errorf("size %d, want %d: every stored byte counts", sr.Size, want)
	}
	if sr.Size > 120<<10 {
		t.Errorf("a rejection with 60 KB of headers stores %d bytes", sr.Size)
	}
}

// TestCheckLookup: a filter or path id is held to the rule of the field it
// names, the fileName's bound being the larger one.
func TestCheckLookup(t *testing.T) {
	for _, tt := range []struct {
		field, v string
		ok       bool
	}{
		{"roomId", "room-1", true},
		{"roomId", "", true},
		{"roomId", "\U0001F600 'x' OR 1=1; --", true},
		{"roomId", strings.Repeat("r", ledger.MaxIDBytes), true},
		{"roomId", strings.Repeat("r", ledger.MaxIDBytes+1), false},
		{"recordId", strings.Repeat("r", ledger.MaxIDBytes+1), false},
		{"fileName", strings.Repeat("f", ledger.MaxIDBytes+1), true},
		{"fileName", strings.Repeat("f", ledger.MaxFileNameBytes), true},
		{"fileName", strings.Repeat("f", ledger.MaxFileNameBytes+1), false},
		{"userId", "a\x00b", false},
		{"appKey", "a\xffb", false},
		{"sessionId", "a\u0085b", false},
		{"fileName", "a\x1b[2Jb", false},
		{"userId", "a\uFFFDb", true}, // the replacement character itself is valid
	} {
		err := ledger.CheckLookup(tt.field, tt.v)
		if (err == nil) != tt.ok {
			t.Errorf("CheckLookup(%s, %.40q) = %v, want ok %v", tt.field, tt.v, err, tt.ok)
		}
		var fe *ledger.FieldError
		if err != nil && (!errors.As(err, &fe) || fe.Field != tt.field || strings.Contains(fe.Error(), tt.v)) {
			t.Errorf("CheckLookup(%s, %.40q) = %v, want a FieldError naming the field, not the value", tt.field, tt.v, err)
		}
	}
}
