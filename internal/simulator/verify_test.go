package simulator

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/rc"
)

const vt0 = int64(1_700_000_000_000)

// body is one callback as RC writes it; fields may be overridden.
func body(typ rc.Type, at int64, user, file string, code int, extra string) Callback {
	msg := "Success"
	if code != 200 {
		msg = fmt.Sprintf("failed %d at %d", code, at)
	}
	b := fmt.Sprintf(`{"timestamp":%d,"type":%d,"appKey":"app","recordId":"rec","roomId":"room","sessionId":"sess","userId":%q,"mode":0,"code":%d,"errorMessage":%q%s}`,
		at, typ, user, code, msg, extra)
	return Callback{RecordID: "rec", Type: typ, FileName: file, Code: code, Body: []byte(b)}
}

func fileOut(file string, size int64) string {
	return fmt.Sprintf(`,"output":{"fileName":%q,"fileSize":%d}`, file, size)
}

func uploadOut(file string) string {
	return fmt.Sprintf(`,"output":{"fileName":%q,"fileUrl":"https://s/%s"}`, file, file)
}

const startOut = `,"config":{"trigger":1,"mixLayout":2,"slicesMin":30,"audioFormat":"aac","videoFormat":"mp4"},"output":{"fileName":"tmp.mp4"}`

func p[T any](v T) *T { return &v }

// everyOrder calls visit with every order of cbs.
func everyOrder(cbs []Callback, visit func([]Callback)) {
	var rec func(k int)
	rec = func(k int) {
		if k == len(cbs) {
			visit(append([]Callback(nil), cbs...))
			return
		}
		for i := k; i < len(cbs); i++ {
			cbs[k], cbs[i] = cbs[i], cbs[k]
			rec(k + 1)
			cbs[k], cbs[i] = cbs[i], cbs[k]
		}
	}
	rec(0)
}

// TestExpect checks the oracle's expectations for conflicting callbacks in
// every order, against wants written from CONTRACT.md's rules.
func TestExpect(t *testing.T) {
	cfg := &rc.Config{Trigger: 1, MixLayout: 2, SlicesMin: 30, AudioFormat: "aac", VideoFormat: "mp4"}
	tests := []struct {
		name string
		cbs  []Callback
		want Expected
	}{
		{
			name: "ended with a retried upload",
			cbs: []Callback{
				body(9, vt0-50, "zed", "", 200, `,"output":{}`), // unknown and earliest: still not the identity
				body(rc.TypeStart, vt0, "alice", "", 200, startOut),
				body(rc.TypeSegment, vt0+100, "bob", "a.mp4", 200, fileOut("a.mp4", 100)),
				body(rc.TypeSegment, vt0+100, "bob", "a.mp4", 200, fileOut("a.mp4", 100)), // a redelivery
				body(rc.TypeUpload, vt0+200, "bob", "a.mp4", 500, `,"output":{"fileName":"a.mp4"}`),
				body(rc.TypeUpload, vt0+300, "bob", "a.mp4", 200, uploadOut("a.mp4")),
				body(rc.TypeEnd, vt0+400, "bob", "b.mp4", 200, fileOut("b.mp4", 200)),
			},
			want: Expected{
				RecordID: "rec", RoomID: "room", SessionID: "sess", UserID: "alice", Mode: 0,
				Status: "ended", UploadState: "partial", FileCount: 2, UploadedCount: 1, TotalBytes: 300,
				StartedAt: p(vt0), EndedAt: p(vt0 + 400), Config: cfg,
				LastError: &ExpectedError{Code: 500, Message: fmt.Sprintf("failed 500 at %d", vt0+200), At: vt0 + 200},
				Files: map[string]ExpectedFile{
					"a.mp4": {Kind: "segment", Size: p(int64(100)), URL: p("https://s/a.mp4"), UploadStatus: "uploaded"},
					"b.mp4": {Kind: "final", Size: p(int64(200)), UploadStatus: "pending"},
				},
			},
		},
		{
			name: "no start: the earliest callback names the user",
			cbs: []Callback{
				body(rc.TypeSegment, vt0+100, "bob", "a.mp4", 200, fileOut("a.mp4", 100)),
				body(9, vt0-50, "zed", "", 200, `,"output":{}`),
				body(rc.TypeUpload, vt0+300, "carol", "a.mp4", 200, uploadOut("a.mp4")),
			},
			want: Expected{
				RecordID: "rec", RoomID: "room", SessionID: "sess", UserID: "zed",
				Status: "recording", UploadState: "complete", FileCount: 1, UploadedCount: 1, TotalBytes: 100,
				Files: map[string]ExpectedFile{
					"a.mp4": {Kind: "segment", Size: p(int64(100)), URL: p("https://s/a.mp4"), UploadStatus: "uploaded"},
				},
			},
		},
		{
			name: "two starts, two ends, failures",
			cbs: []Callback{
				body(rc.TypeStart, vt0+10, "late", "", 500, `,"config":{"slicesMin":120},"output":{"fileName":"tmp.mp4"}`),
				body(rc.TypeStart, vt0, "alice", "", 200, startOut),
				body(rc.TypeEnd, vt0+400, "bob", "b.mp4", 501, fileOut("b.mp4", 0)),
				body(rc.TypeEnd, vt0+600, "bob", "c.mp4", 200, fileOut("c.mp4", 50)),
				body(rc.TypeSegment, vt0+500, "bob", "b.mp4", 200, fileOut("b.mp4", 70)),
			},
			want: Expected{
				RecordID: "rec", RoomID: "room", SessionID: "sess", UserID: "alice",
				Status: "failed", UploadState: "pending", FileCount: 2, TotalBytes: 50,
				StartedAt: p(vt0), EndedAt: p(vt0 + 600), Config: cfg,
				LastError: &ExpectedError{Code: 501, Message: fmt.Sprintf("failed 501 at %d", vt0+400), At: vt0 + 400},
				Files: map[string]ExpectedFile{
					"b.mp4": {Kind: "final", Size: p(int64(0)), UploadStatus: "pending"}, // the end's size counts
					"c.mp4": {Kind: "final", Size: p(int64(50)), UploadStatus: "pending"},
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			everyOrder(tt.cbs, func(order []Callback) {
				got, err := Expect(order)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Fatalf("Expect (-want +got):\n%s", diff)
				}
			})
		})
	}
}

// answer is what recledger's API answers for the first TestExpect case.
const answer = `{"recordId":"rec","appKey":"app","roomId":"room","sessionId":"sess","userId":"alice","mode":0,"modeName":"single-audio-video",
"status":"ended","uploadState":"partial","startedAt":1700000000000,"endedAt":1700000000400,"firstSeenAt":1,"lastEventAt":2,
"config":{"trigger":1,"mixLayout":2,"slicesMin":30,"audioFormat":"aac","videoFormat":"mp4"},"extra":"",
"fileCount":2,"uploadedCount":1,"totalBytes":300,"lastError":{"code":500,"message":"failed 500 at 1700000000200","at":1700000000200},
"files":[{"fileName":"a.mp4","recordId":"rec","kind":"segment","fileSize":100,"fileUrl":"https://s/a.mp4","uploadStatus":"uploaded"},
{"fileName":"b.mp4","recordId":"rec","kind":"final","fileSize":200,"fileUrl":null,"uploadStatus":"pending"}],"events":[]}`

// TestCompare checks the oracle reports an API answer that differs from
// the expectation in any one field it checks, naming that field, and
// nothing for an answer that matches.
func TestCompare(t *testing.T) {
	want, err := Expect([]Callback{
		body(rc.TypeStart, vt0, "alice", "", 200, startOut),
		body(rc.TypeSegment, vt0+100, "bob", "a.mp4", 200, fileOut("a.mp4", 100)),
		body(rc.TypeUpload, vt0+200, "bob", "a.mp4", 500, `,"output":{"fileName":"a.mp4"}`),
		body(rc.TypeUpload, vt0+300, "bob", "a.mp4", 200, uploadOut("a.mp4")),
		body(rc.TypeEnd, vt0+400, "bob", "b.mp4", 200, fileOut("b.mp4", 200)),
	})
	if err != nil {
		t.Fatal(err)
	}
	decode := func(s string) shown {
		var got shown
		if err := json.Unmarshal([]byte(s), &got); err != nil {
			t.Fatalf("%v: %s", err, s)
		}
		return got
	}
	if m := compare(want, decode(answer)); len(m) != 0 {
		t.Fatalf("the matching answer is reported: %q", m)
	}
	for _, tt := range []struct {
		field, from, to string
		kind            string
	}{
		{"roomId", `"roomId":"room"`, `"roomId":"room2"`, "roomId"},
		{"sessionId", `"sessionId":"sess"`, `"sessionId":"sess2"`, "sessionId"},
		{"userId", `"userId":"alice"`, `"userId":"bob"`, "userId"},
		{"mode", `"mode":0`, `"mode":1`, "mode"},
		{"status", `"status":"ended"`, `"status":"complete"`, "status"},
		{"uploadState", `"uploadState":"partial"`, `"uploadState":"pending"`, "uploadState"},
		{"fileCount", `"fileCount":2`, `"fileCount":3`, "fileCount"},
		{"uploadedCount", `"uploadedCount":1`, `"uploadedCount":2`, "uploadedCount"},
		{"totalBytes", `"totalBytes":300`, `"totalBytes":200`, "totalBytes"},
		{"startedAt", `"startedAt":1700000000000`, `"startedAt":1700000000001`, "startedAt"},
		{"startedAt", `"startedAt":1700000000000`, `"startedAt":null`, "startedAt"},
		{"endedAt", `"endedAt":1700000000400`, `"endedAt":1700000000300`, "endedAt"},
		{"endedAt", `"endedAt":1700000000400`, `"endedAt":null`, "endedAt"},
		{"lastError", `"code":500`, `"code":502`, "lastError"},
		{"lastError", `"message":"failed 500 at 1700000000200"`, `"message":"other"`, "lastError"},
		{"lastError", `"at":1700000000200}`, `"at":1700000000300}`, "lastError"},
		{"lastError", `"lastError":{"code":500,"message":"failed 500 at 1700000000200","at":1700000000200}`, `"lastError":null`, "lastError"},
		{"config", `"slicesMin":30`, `"slicesMin":60`, "config"},
		{"config", `"audioFormat":"aac"`, `"audioFormat":"mp3"`, "config"},
		{"config", `"config":{"trigger":1,"mixLayout":2,"slicesMin":30,"audioFormat":"aac","videoFormat":"mp4"}`, `"config":null`, "config"},
		{"file a.mp4 kind", `"kind":"segment"`, `"kind":"final"`, "file kind"},
		{"file a.mp4 size", `"fileSize":100`, `"fileSize":101`, "file size"},
		{"file a.mp4 url", `"fileUrl":"https://s/a.mp4"`, `"fileUrl":"https://s/other.mp4"`, "file url"},
		{"file a.mp4 uploadStatus", `"uploadStatus":"uploaded"`, `"uploadStatus":"failed"`, "file uploadStatus"},
		{"file b.mp4 size", `"fileSize":200`, `"fileSize":null`, "file size"},
		{"file b.mp4 url", `"fileUrl":null`, `"fileUrl":"https://s/b.mp4"`, "file url"},
		{"file c.mp4 is shown but was never acknowledged", `"files":[`, `"files":[{"fileName":"c.mp4","kind":"final","uploadStatus":"pending"},`, "file not acknowledged"},
		{"file b.mp4 was acknowledged but is not shown", `,
{"fileName":"b.mp4","recordId":"rec","kind":"final","fileSize":200,"fileUrl":null,"uploadStatus":"pending"}`, ``, "file not shown"},
	} {
		changed := strings.Replace(answer, tt.from, tt.to, 1)
		if changed == answer {
			t.Fatalf("%s: %q is not in the answer", tt.field, tt.from)
		}
		m := compare(want, decode(changed))
		if len(m) != 1 || !strings.HasPrefix(m[0].String(), "rec: "+tt.field) || m[0].Kind != tt.kind {
			t.Errorf("changing %s to %s: reported %v, want one line about %s of kind %q", tt.from, tt.to, m, tt.field, tt.kind)
		}
	}
}
