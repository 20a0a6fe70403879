package ledger_test

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/rc"
)

// with returns cb changed by edit, so that a case can make two callbacks
// disagree on one field.
func with(cb rc.Callback, edit func(*rc.Callback)) rc.Callback {
	edit(&cb)
	return cb
}

// TestWhichValueWins pins each "which one wins" rule of Apply with
// callbacks that disagree, fed in every order: the order-independence
// tests only ever see one end and one failure, so a rule that picked the
// wrong one of two (the earliest end, the first error) would pass them.
// Each want is written from the rule as documented on State, not taken
// from a run of Apply.
func TestWhichValueWins(t *testing.T) {
	file := name(1)
	tests := []struct {
		name     string
		rule     string
		arrivals []arrival
		got      func(ledger.State) any
		want     any
	}{
		{
			name: "lastError", rule: "the latest failing callback in key order (RC's timestamp first)",
			arrivals: []arrival{
				{callback(rc.TypeStart, t0, "", 200), 10},
				{callback(rc.TypeSegment, t0+100, name(1), 501), 20},
				{callback(rc.TypeUpload, t0+300, name(1), 503), 30},
				{callback(rc.TypeUpload, t0+200, name(2), 502), 40},
			},
			got:  func(s ledger.State) any { return s.LastError },
			want: &ledger.ErrorInfo{Code: 503, Message: "error 503", At: t0 + 300},
		},
		{
			name: "lastError on equal timestamps", rule: "the higher type wins a tie on RC's timestamp, then the file name, then the code",
			arrivals: []arrival{
				{callback(rc.TypeStart, t0, "", 500), 10},
				{callback(rc.TypeEnd, t0, name(1), 501), 20},
				{callback(rc.TypeSegment, t0, name(2), 502), 30},
				{callback(rc.TypeEnd, t0, name(0), 503), 40},
			},
			got:  func(s ledger.State) any { return s.LastError },
			want: &ledger.ErrorInfo{Code: 501, Message: "error 501", At: t0},
		},
		{
			name: "lastError ignores successes", rule: "a later success does not clear or replace the failure",
			arrivals: []arrival{
				{callback(rc.TypeStart, t0, "", 500), 10},
				{callback(rc.TypeEnd, t0+100, name(1), 200), 20},
				{callback(rc.TypeUpload, t0+200, name(1), 200), 30},
			},
			got:  func(s ledger.State) any { return []any{s.LastError, s.Failed} },
			want: []any{&ledger.ErrorInfo{Code: 500, Message: "error 500", At: t0}, true},
		},
		{
			name: "endedAt", rule: "the latest end timestamp",
			arrivals: []arrival{
				{callback(rc.TypeEnd, t0+9000, name(1), 200), 30},
				{callback(rc.TypeEnd, t0+9500, name(2), 200), 10},
				{callback(rc.TypeEnd, t0+8000, name(3), 200), 20},
			},
			got:  func(s ledger.State) any { return s.EndedAt },
			want: ptr(t0 + 9500),
		},
		{
			name: "endReceivedAt", rule: "the first end's arrival by the server clock (overdue counts from it)",
			arrivals: []arrival{
				{callback(rc.TypeEnd, t0+9000, name(1), 200), 300},
				{callback(rc.TypeEnd, t0+9500, name(2), 200), 100},
				{callback(rc.TypeEnd, t0+8000, name(3), 200), 200},
				{callback(rc.TypeUpload, t0+9600, name(3), 200), 50}, // not an end
			},
			got:  func(s ledger.State) any { return s.EndReceivedAt },
			want: ptr(int64(100)),
		},
		{
			name: "startedAt and config", rule: "the first start callback in key order",
			arrivals: []arrival{
				{with(callback(rc.TypeStart, t0+5, "", 200), func(cb *rc.Callback) {
					cb.Config = &rc.Config{Trigger: 1, MixLayout: 3, SlicesMin: 60, AudioFormat: "mp3", VideoFormat: "flv"}
					cb.Output.AudioSample, cb.Output.VideoResolution = 16000, "1280x720"
				}), 10},
				{callback(rc.TypeStart, t0, "", 200), 20},
				{with(callback(rc.TypeStart, t0+9, "", 200), func(cb *rc.Callback) {
					cb.Config = &rc.Config{SlicesMin: 120}
					cb.Output.AudioSample, cb.Output.VideoResolution = 8000, "320x240"
				}), 5},
			},
			got: func(s ledger.State) any {
				r := s.View(now)
				return []any{r.StartedAt, r.Config, r.AudioSample, r.VideoResolution}
			},
			want: []any{ptr(t0), &rc.Config{MixLayout: 2, SlicesMin: 30, AudioFormat: "aac", VideoFormat: "mp4"}, 48000, "640x480"},
		},
		{
			name: "startedAt on equal timestamps", rule: "a tie on RC's timestamp goes to the lower code",
			arrivals: []arrival{
				{with(callback(rc.TypeStart, t0, "", 500), func(cb *rc.Callback) { cb.Config = &rc.Config{SlicesMin: 120} }), 10},
				{callback(rc.TypeStart, t0, "", 200), 20},
			},
			got:  func(s ledger.State) any { return s.Config },
			want: &rc.Config{MixLayout: 2, SlicesMin: 30, AudioFormat: "aac", VideoFormat: "mp4"},
		},
		{
			name: "identity from a start", rule: "a start callback's identity fields win over any other's, even an earlier one",
			arrivals: []arrival{
				{with(callback(rc.TypeSegment, t0-100, name(1), 200), func(cb *rc.Callback) {
					cb.RoomID, cb.SessionID, cb.UserID, cb.Mode, cb.Extra = "seg-room", "seg-sess", "seg-user", rc.ModeAudio, "seg"
				}), 10},
				{with(callback(rc.TypeStart, t0, "", 200), func(cb *rc.Callback) {
					cb.RoomID, cb.SessionID, cb.UserID, cb.Mode, cb.Extra = "start-room", "start-sess", "start-user", rc.ModeMixAudio, "start"
				}), 20},
				{with(callback(rc.TypeStart, t0+1, "", 200), func(cb *rc.Callback) {
					cb.RoomID, cb.SessionID, cb.UserID, cb.Mode, cb.Extra = "late-room", "late-sess", "late-user", rc.ModeVideo, "late"
				}), 5},
				{with(callback(rc.TypeEnd, t0+200, name(2), 200), func(cb *rc.Callback) {
					cb.RoomID, cb.SessionID, cb.UserID, cb.Mode, cb.Extra = "end-room", "end-sess", "end-user", rc.ModeAudioVideo, "end"
				}), 30},
			},
			got: func(s ledger.State) any {
				return []any{s.RoomID, s.SessionID, s.UserID, s.Mode, s.Extra}
			},
			want: []any{"start-room", "start-sess", "start-user", rc.ModeMixAudio, "start"},
		},
		{
			name: "identity without a start", rule: "without a start, the first callback in key order",
			arrivals: []arrival{
				{with(callback(rc.TypeUpload, t0+300, name(1), 200), func(cb *rc.Callback) { cb.UserID, cb.RoomID = "u-upload", "r-upload" }), 5},
				{with(callback(rc.TypeEnd, t0+200, name(1), 200), func(cb *rc.Callback) { cb.UserID, cb.RoomID = "u-end", "r-end" }), 10},
				{with(callback(rc.TypeSegment, t0+100, name(2), 200), func(cb *rc.Callback) { cb.UserID, cb.RoomID = "u-seg", "r-seg" }), 20},
			},
			got:  func(s ledger.State) any { return []any{s.UserID, s.RoomID} },
			want: []any{"u-seg", "r-seg"},
		},
		{
			name: "firstSeenAt and lastEventAt", rule: "the earliest and the latest arrival by the server clock",
			arrivals: []arrival{
				{callback(rc.TypeStart, t0, "", 200), 500},
				{callback(rc.TypeSegment, t0+100, name(1), 200), 100},
				{callback(rc.TypeUpload, t0+200, name(1), 200), 900},
				{callback(rc.TypeEnd, t0+300, name(2), 200), 300},
			},
			got:  func(s ledger.State) any { return []int64{s.FirstSeenAt, s.LastEventAt} },
			want: []int64{100, 900},
		},
		{
			name: "failed", rule: "any failing start or end fails the recording; a success does not undo it",
			arrivals: []arrival{
				{callback(rc.TypeStart, t0, "", 200), 10},
				{callback(rc.TypeEnd, t0+100, name(1), 500), 20},
				{callback(rc.TypeEnd, t0+200, name(2), 200), 30},
			},
			got:  func(s ledger.State) any { return s.Status() },
			want: ledger.StatusFailed,
		},
		{
			name: "file kind", rule: "final if an end named it, else segment if a segment did, else unknown",
			arrivals: []arrival{
				{callback(rc.TypeUpload, t0+300, name(1), 200), 10},
				{callback(rc.TypeSegment, t0+100, name(1), 200), 20},
				{callback(rc.TypeEnd, t0+200, name(1), 200), 30},
				{callback(rc.TypeSegment, t0+100, name(2), 200), 40},
				{callback(rc.TypeUpload, t0+400, name(2), 200), 50},
				{callback(rc.TypeUpload, t0+400, name(3), 200), 60},
			},
			got: func(s ledger.State) any {
				return []ledger.FileKind{s.Files[name(1)].Kind, s.Files[name(2)].Kind, s.Files[name(3)].Kind}
			},
			want: []ledger.FileKind{ledger.KindFinal, ledger.KindSegment, ledger.KindUnknown},
		},
		{
			name: "file size from an end", rule: "an end's size wins over a segment's, even an earlier one",
			arrivals: []arrival{
				{with(callback(rc.TypeSegment, t0+100, file, 200), func(cb *rc.Callback) { cb.Output.FileSize = ptr(int64(111)) }), 10},
				{with(callback(rc.TypeEnd, t0+200, file, 200), func(cb *rc.Callback) { cb.Output.FileSize = ptr(int64(222)) }), 20},
				{with(callback(rc.TypeEnd, t0+300, file, 200), func(cb *rc.Callback) { cb.Output.FileSize = ptr(int64(333)) }), 30},
				{with(callback(rc.TypeEnd, t0+50, file, 200), func(cb *rc.Callback) { cb.Output.FileSize = nil }), 40}, // no size: no say
			},
			got:  func(s ledger.State) any { return s.Files[file].Size },
			want: ptr(int64(222)),
		},
		{
			name: "file size from segments", rule: "without an end's size, the earliest segment's",
			arrivals: []arrival{
				{with(callback(rc.TypeSegment, t0+200, file, 200), func(cb *rc.Callback) { cb.Output.FileSize = ptr(int64(222)) }), 10},
				{with(callback(rc.TypeSegment, t0+100, file, 200), func(cb *rc.Callback) { cb.Output.FileSize = ptr(int64(111)) }), 20},
				{with(callback(rc.TypeSegment, t0+300, file, 200), func(cb *rc.Callback) { cb.Output.FileSize = ptr(int64(333)) }), 30},
				{callback(rc.TypeUpload, t0+400, file, 200), 40},
			},
			got:  func(s ledger.State) any { return s.Files[file].Size },
			want: ptr(int64(111)),
		},
		{
			name: "file url", rule: "the latest successful upload's URL and time (a re-upload replaces it)",
			arrivals: []arrival{
				{callback(rc.TypeUpload, t0+200, file, 200), 30},
				{callback(rc.TypeUpload, t0+300, file, 200), 10},
				{callback(rc.TypeUpload, t0+100, file, 200), 20},
				{callback(rc.TypeUpload, t0+400, file, 500), 40}, // a later failure does not undo it
			},
			got: func(s ledger.State) any {
				v := s.FileView(file)
				return []any{v.FileURL, v.UploadedAt, v.UploadStatus}
			},
			want: []any{ptr(fmt.Sprintf("http://oss/%s?v=%d", file, t0+300)), ptr(t0 + 300), ledger.UploadStatusUploaded},
		},
		{
			name: "file upload failed", rule: "a failed upload without any success leaves the file failed",
			arrivals: []arrival{
				{callback(rc.TypeSegment, t0+100, file, 200), 10},
				{callback(rc.TypeUpload, t0+200, file, 500), 20},
				{callback(rc.TypeUpload, t0+300, file, 502), 30},
			},
			got: func(s ledger.State) any {
				v := s.FileView(file)
				return []any{v.FileURL, v.UploadStatus, s.LastError}
			},
			want: []any{(*string)(nil), ledger.UploadStatusFailed, &ledger.ErrorInfo{Code: 502, Message: "error 502", At: t0 + 300}},
		},
		{
			name: "file firstSeenAt", rule: "the earliest arrival of any callback naming the file",
			arrivals: []arrival{
				{callback(rc.TypeSegment, t0+100, file, 200), 300},
				{callback(rc.TypeUpload, t0+200, file, 200), 100},
				{callback(rc.TypeEnd, t0+300, file, 200), 200},
			},
			got:  func(s ledger.State) any { return s.Files[file].FirstSeenAt },
			want: int64(100),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orders := 0
			ledgertest.Permute(len(tt.arrivals), func(p []int) {
				orders++
				shuffled := make([]arrival, len(p))
				for i, j := range p {
					shuffled[i] = tt.arrivals[j]
				}
				if diff := cmp.Diff(tt.want, tt.got(fold(shuffled))); diff != "" {
					t.Fatalf("in order %v, %s: (-want +got)\n%s", p, tt.rule, diff)
				}
			})
			if want := factorial(len(tt.arrivals)); orders != want {
				t.Fatalf("checked %d orders, want %d", orders, want)
			}
		})
	}
}

func factorial(n int) int {
	if n <= 1 {
		return 1
	}
	return n * factorial(n-1)
}
