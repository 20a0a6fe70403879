package simulator

import (
	"time"

	"github.com/recledger/recledger/rc"
)

// The hand-made scenario of the golden oracle tests (testdata/oracle):
// slices of 30 minutes from vt0, uploads to a storage at goldenStorage
// that is never asked (the oracle reads the model).
const goldenStorage = "http://127.0.0.1:9300"

// handRecording cuts a recording of d into 30-minute files of one
// stream, each uploaded 5 s after it closes, and takes out the files at
// the indexes in skip.
func handRecording(id string, mode rc.Mode, user string, d time.Duration, skip ...int) Recording {
	start := time.UnixMilli(vt0)
	rec := Recording{RecordID: id, RoomID: "room-" + id, SessionID: "sess" + id, Mode: mode, StartedAt: start, Duration: d,
		StartCode: rc.StatusOK, EndCode: rc.StatusOK,
		Config:  rc.Config{Trigger: 1, MixLayout: 2, SlicesMin: 30, VideoFormat: "mp4", AudioFormat: "aac"},
		Streams: []Stream{{UserID: user}}}
	slice := 30 * time.Minute
	end := start.Add(d)
	for i, from := 0, start; from.Before(end); i, from = i+1, from.Add(slice) {
		to := from.Add(slice)
		if to.After(end) {
			to = end
		}
		f := File{Name: rc.FileName(rc.NameParts{SessionID: rec.SessionID, RoomID: rec.RoomID, UserID: user, Timestamp: from.UnixMilli(), Format: "mp4"}),
			Stream: rec.Streams[0], Final: !to.Before(end), From: from, Size: int64(1000 * (i + 1)), ClosedAt: to, UploadedAt: to.Add(5 * time.Second)}
		f.StoredSize = f.Size
		f.URL = presign(goldenStorage, ObjectPath(id, f.Name), f.UploadedAt)
		rec.Files = append(rec.Files, f)
	}
	for k := len(skip) - 1; k >= 0; k-- {
		rec.Skipped = append(rec.Skipped, rec.Files[skip[k]])
		rec.Files = append(rec.Files[:skip[k]], rec.Files[skip[k]+1:]...)
	}
	return rec
}

// handScenario is four recordings:
//   - gap: 1h35m03s, the second of four files missing: a segment gap of
//     an hour, and missing files (4 expected, 3 known); its third file's
//     object has another size, its last is absent from the storage.
//   - slack: 1h30m04s, the third of four files missing: a gap, but the
//     fourth file holds only 4 s, within the 5 s slack, so 3 files are
//     expected and none missing.
//   - open: single mode, no end, its second file never uploaded: not
//     ended and stalled once the server's clock is past the limits.
//   - failed: like gap, but the end reports a failure (size 0): no
//     findings at all.
func handScenario() []Recording {
	gap := handRecording("gap", rc.ModeMixAudioVideo, "", 95*time.Minute+3*time.Second, 1)
	gap.Files[1].StoredSize = 1234
	gap.Files[2].Absent = true
	slack := handRecording("slack", rc.ModeMixAudioVideo, "", 90*time.Minute+4*time.Second, 2)
	open := handRecording("open", rc.ModeAudioVideo, "u1", 66*time.Minute+40*time.Second)
	open.NoEnd = true
	open.Files[1].UploadedAt = time.Time{}
	failed := handRecording("failed", rc.ModeMixAudioVideo, "", 95*time.Minute+3*time.Second, 1)
	failed.EndCode = 500
	failed.Files[2].Size, failed.Files[2].StoredSize = 0, 0
	return []Recording{gap, slack, open, failed}
}

// userStream adds to rec the files of a stream of user from its start
// offset for d, cut at 30-minute slices from its start.
func userStream(rec *Recording, user string, from, d time.Duration) {
	s := Stream{UserID: user}
	rec.Streams = append(rec.Streams, s)
	start := rec.StartedAt.Add(from)
	end := start.Add(d)
	for at := start; at.Before(end); at = at.Add(30 * time.Minute) {
		to := at.Add(30 * time.Minute)
		if to.After(end) {
			to = end
		}
		f := File{Name: rc.FileName(rc.NameParts{SessionID: rec.SessionID, RoomID: rec.RoomID, UserID: user, Timestamp: at.UnixMilli(), Format: "mp4"}),
			Stream: s, Final: !to.Before(end), From: at, Size: 1000, StoredSize: 1000, ClosedAt: to, UploadedAt: to.Add(5 * time.Second)}
		f.URL = presign(goldenStorage, ObjectPath(rec.RecordID, f.Name), f.UploadedAt)
		rec.Files = append(rec.Files, f)
	}
}
