package simulator_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/simulator"
	"github.com/recledger/recledger/rc"
)

var epoch = time.UnixMilli(1_700_000_000_000)

func scenario(seed uint64, n int) []simulator.Recording {
	return simulator.Generate(simulator.Options{AppKey: "app", Recordings: n, Seed: seed, Start: epoch,
		UploadFailures: 0.2, NeverUploaded: 0.05, FailedRecordings: 0.1})
}

func TestDeterministicForASeed(t *testing.T) {
	a, b, c := scenario(42, 50), scenario(42, 50), scenario(43, 50)
	for i := range a {
		ca, cb := a[i].Callbacks("app"), b[i].Callbacks("app")
		if len(ca) != len(cb) {
			t.Fatalf("recording %d: %d callbacks, then %d", i, len(ca), len(cb))
		}
		for j := range ca {
			if !bytes.Equal(ca[j].Body, cb[j].Body) || !ca[j].At.Equal(cb[j].At) {
				t.Fatalf("recording %d callback %d differs for the same seed", i, j)
			}
		}
	}
	if a[0].RecordID == c[0].RecordID {
		t.Error("another seed gave the same recording")
	}
}

func TestEveryModeFollowsRCsRules(t *testing.T) {
	recs := scenario(7, 400)
	seen := map[rc.Mode]int{}
	for _, rec := range recs {
		seen[rec.Mode]++
		slice := time.Duration(rec.Config.SlicesMin) * time.Minute
		perStream := int((rec.Duration + slice - 1) / slice)
		if got := len(rec.Files); got != perStream*len(rec.Streams) {
			t.Fatalf("%s (mode %d, %s of %d-min slices, %d streams): %d files, want %d",
				rec.RecordID, rec.Mode, rec.Duration, rec.Config.SlicesMin, len(rec.Streams), got, perStream*len(rec.Streams))
		}
		switch {
		case rec.Mode.IsMix():
			if len(rec.Streams) != 1 || rec.Streams[0].UserID != "" {
				t.Errorf("mix mode %d with streams %+v", rec.Mode, rec.Streams)
			}
		case rec.Mode.IsUserMix():
			for _, s := range rec.Streams {
				if s.UserID == "" || s.Tag != "" {
					t.Errorf("user-mix stream %+v", s)
				}
			}
		}
		if (rec.Config.AudioFormat != "") != rec.Mode.HasAudio() || (rec.Config.VideoFormat != "") != rec.Mode.HasVideo() {
			t.Errorf("mode %d with config %+v", rec.Mode, rec.Config)
		}
		finals := 0
		for _, f := range rec.Files {
			p, ok := rc.ParseFileNameUser(f.Name, rec.SessionID, rec.RoomID, f.Stream.UserID)
			if !ok || p.UserID != f.Stream.UserID || p.StreamTag != f.Stream.Tag {
				t.Fatalf("file %s of stream %+v reads back as %+v, %v", f.Name, f.Stream, p, ok)
			}
			want := rec.Config.VideoFormat
			if !rec.Mode.HasVideo() {
				want = rec.Config.AudioFormat
			}
			if p.Format != want {
				t.Errorf("file %s has format %s, want %s", f.Name, p.Format, want)
			}
			if f.Final {
				finals++
			}
			secs := int64(0)
			if f.Final {
				secs = int64(rec.StartedAt.Add(rec.Duration).Sub(time.UnixMilli(p.Timestamp)).Seconds())
			} else {
				secs = int64(rec.Config.SlicesMin) * 60
			}
			if rec.EndCode == rc.StatusOK || !f.Final {
				lo, hi := secs*16_000, (secs+1)*128_000+4096
				if f.Size < lo || f.Size > hi {
					t.Errorf("file %s of %d s has %d bytes, want %d-%d", f.Name, secs, f.Size, lo, hi)
				}
			}
		}
		if finals != len(rec.Streams) {
			t.Errorf("%s: %d final files for %d streams", rec.RecordID, finals, len(rec.Streams))
		}
	}
	for m := rc.ModeAudioVideo; m <= rc.ModeUserAudioVideo; m++ {
		if seen[m] == 0 {
			t.Errorf("no recording in mode %d among 400", m)
		}
	}
}

// TestCallbacksAreWhatRCSends parses every generated callback as the
// receiver would: no errors, no oddities, userId empty exactly in the mix
// modes, and the sequence of types RC produces.
func TestCallbacksAreWhatRCSends(t *testing.T) {
	for _, rec := range scenario(9, 200) {
		cbs := rec.Callbacks("app")
		if cbs[0].Type != rc.TypeStart {
			t.Fatalf("%s starts with type %d", rec.RecordID, cbs[0].Type)
		}
		for i, c := range cbs {
			if i > 0 && c.At.Before(cbs[i-1].At) {
				t.Fatalf("%s: callbacks out of time order", rec.RecordID)
			}
			cb, err := rc.Parse(c.Body)
			if err != nil {
				t.Fatalf("%s: %v\n%s", rec.RecordID, err, c.Body)
			}
			if len(cb.Warnings) > 0 {
				t.Errorf("%s: warnings %v\n%s", rec.RecordID, cb.Warnings, c.Body)
			}
			if (cb.UserID == "") != rec.Mode.IsMix() {
				t.Errorf("mode %d callback with userId %q", rec.Mode, cb.UserID)
			}
			if cb.Timestamp != c.At.UnixMilli() || cb.AppKey != "app" || cb.RecordID != rec.RecordID {
				t.Errorf("callback fields %+v", cb)
			}
		}
		if rec.StartCode != rc.StatusOK {
			if len(cbs) != 1 {
				t.Errorf("a recording that failed to start sent %d callbacks", len(cbs))
			}
			continue
		}
		uploads, failures := 0, 0
		for _, c := range cbs {
			if c.Type == rc.TypeUpload {
				if c.Code == rc.StatusOK {
					uploads++
				} else {
					failures++
				}
			}
		}
		want := 0
		for _, f := range rec.Files {
			if !f.UploadedAt.IsZero() {
				want++
			}
		}
		if uploads != want {
			t.Errorf("%s: %d successful uploads, want %d", rec.RecordID, uploads, want)
		}
	}
}

// TestEndPlacesTheLastCallback: a scenario placed by End ends exactly
// there, whatever its seed, and is otherwise the scenario of its seed.
func TestEndPlacesTheLastCallback(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 99} {
		ended := simulator.Generate(simulator.Options{AppKey: "app", Recordings: 30, Seed: seed, End: epoch, UploadFailures: 0.3})
		started := simulator.Generate(simulator.Options{AppKey: "app", Recordings: 30, Seed: seed, Start: epoch, UploadFailures: 0.3})
		if last := simulator.Last(ended); !last.Equal(epoch) {
			t.Errorf("seed %d: the last callback is at %s, want %s", seed, last, epoch)
		}
		for i := range ended {
			if ended[i].RecordID != started[i].RecordID || len(ended[i].Files) != len(started[i].Files) {
				t.Fatalf("seed %d: placing by End changed recording %d", seed, i)
			}
		}
	}
}
