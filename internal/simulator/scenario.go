// Package simulator plays RC's side of Cloud Recording status callbacks:
// it generates recordings in every mode with RC's field and file-naming
// rules, turns them into the callbacks RC would send (start, one segment
// per slicesMin, end, an upload per file, upload failures and retries),
// and delivers them signed, with RC's timeout and retry rules.
//
// Generation is deterministic for a seed, so a scenario can be replayed
// and its expected outcome known.
package simulator

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/recledger/recledger/rc"
)

// Options shape a scenario.
type Options struct {
	AppKey     string
	Recordings int
	Modes      []rc.Mode // the modes to draw from; all seven when empty
	Seed       uint64
	// Start is the simulated time of the first recording's start.
	Start time.Time
	// End, when set, replaces Start: the scenario is placed so that its
	// last callback falls exactly at End, and nothing it sends lies
	// beyond. A run that does not wait for simulated time (no speed) ends
	// by now this way: a receiver is never told of a file closed in its
	// future.
	End time.Time
	// Spread is the simulated time over which recordings start (default 1h).
	Spread time.Duration
	// UploadFailures is the share of uploads whose first attempt fails;
	// RC retries every 10 s and they succeed after one to six retries,
	// unless they are among NeverUploaded, the share that never succeeds.
	UploadFailures, NeverUploaded float64
	// FailedRecordings is the share of recordings whose start or end
	// callback reports a failure (code 500).
	FailedRecordings float64
	// Faults: the scenario faults (absent, wrong-size, no-end,
	// missing-segment) are applied here, with Seed; the others are the
	// run's (RunOptions).
	Faults Faults
	// Storage, when set, is the base URL of the test storage
	// (http://HOST:PORT) the uploads go to: fileUrls point at it with
	// presigned-looking query strings, and NewStorage serves the objects.
	// Empty, they point at https://storage.example.com/ as before.
	Storage string
}

// Recording is one generated recording task.
type Recording struct {
	RecordID  string
	RoomID    string
	SessionID string
	Mode      rc.Mode
	Config    rc.Config
	Streams   []Stream // one per file series: the room (mix), each user stream (single), each user (user-mix)
	StartedAt time.Time
	Duration  time.Duration
	StartCode int
	EndCode   int
	Files     []File
	// NoEnd (fault no-end): the end never comes, and nothing RC would
	// send from the end's time on is sent.
	NoEnd bool
	// Skipped (fault missing-segment): files cut from a stream's middle,
	// never reported nor uploaded; they are not in Files.
	Skipped []File
}

// Stream is a source of files: a user's stream in the single modes, a user
// in the single-user mix mode, the room (no user) in the mix modes.
type Stream struct {
	UserID string
	Tag    string // custom or screen-share stream tag; empty for the default stream
}

// File is one file of a recording and what happens to it.
type File struct {
	Name   string
	Stream Stream
	Final  bool      // named by the end callback, else by a segment callback
	From   time.Time // the slice's start, the timestamp in its name
	Size   int64     // RC's fileSize
	// StoredSize is the object's size in the test storage: Size, unless
	// the fault wrong-size changed it.
	StoredSize int64
	// Absent (fault absent): RC reports the upload, the test storage does
	// not hold the object.
	Absent     bool
	ClosedAt   time.Time // when the segment or end callback is sent
	URL        string
	FailedAt   time.Time // zero unless the first upload attempt fails
	UploadedAt time.Time // zero when the upload never succeeds
}

// Callback is one callback RC sends, at simulated time At.
type Callback struct {
	At       time.Time
	RecordID string
	Type     rc.Type
	FileName string
	Code     int
	Body     []byte
}

// The slice lengths, formats and layouts recordings are drawn from.
var (
	sliceMinutes = []int{30, 60, 120}
	audioFormats = []string{"aac", "mp3"}
	videoFormats = []string{"mp4", "mkv", "flv", "hls"}
	tags         = []string{"RongCloudRTC", "screenshare", "custom_cam2"}
)

// Generate returns the scenario's recordings, the same for the same options.
func Generate(o Options) []Recording {
	if o.End.IsZero() {
		return generate(o)
	}
	// Every time in a scenario is an offset from Start, drawn independently
	// of Start, so one draw from End measures the span and a second draw,
	// that span earlier, ends at End.
	end := o.End.Truncate(time.Millisecond)
	o.Start, o.End = end, time.Time{}
	if o.Recordings <= 0 {
		return nil
	}
	span := Last(generate(o)).Sub(end)
	o.Start = end.Add(-span)
	return generate(o)
}

// Last is the simulated time of the latest callback of recs (zero without
// any).
func Last(recs []Recording) time.Time {
	var last time.Time
	for _, rec := range recs {
		for _, c := range rec.Callbacks("") {
			if c.At.After(last) {
				last = c.At
			}
		}
	}
	return last
}

func generate(o Options) []Recording {
	modes := o.Modes
	if len(modes) == 0 {
		for m := rc.ModeAudioVideo; m <= rc.ModeUserAudioVideo; m++ {
			modes = append(modes, m)
		}
	}
	spread := o.Spread
	if spread <= 0 {
		spread = time.Hour
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	recs := make([]Recording, 0, o.Recordings)
	for i := range o.Recordings {
		rec := Recording{
			RecordID:  fmt.Sprintf("%016x%016x", r.Uint64(), r.Uint64()),
			RoomID:    roomID(r, i),
			SessionID: sessionID(r),
			Mode:      modes[r.IntN(len(modes))],
			StartedAt: o.Start.Add(time.Duration(r.Int64N(int64(spread)))).Truncate(time.Millisecond),
			StartCode: rc.StatusOK,
			EndCode:   rc.StatusOK,
		}
		rec.Config = rc.Config{Trigger: 1, MixLayout: 2 + r.IntN(2), SlicesMin: sliceMinutes[r.IntN(len(sliceMinutes))]}
		if rec.Mode.HasAudio() {
			rec.Config.AudioFormat = audioFormats[r.IntN(len(audioFormats))]
		}
		if rec.Mode.HasVideo() {
			rec.Config.VideoFormat = videoFormats[r.IntN(len(videoFormats))]
		}
		// Some end within the first slice, some run for several.
		rec.Duration = time.Duration(1+r.IntN(4*rec.Config.SlicesMin))*time.Minute + time.Duration(1+r.IntN(59))*time.Second
		if r.Float64() < o.FailedRecordings {
			if r.IntN(2) == 0 {
				rec.StartCode = 500
			} else {
				rec.EndCode = 500
			}
		}
		rec.Streams = streams(r, rec.Mode, func() string { return userID(r) })
		rec.Files = files(r, &rec, o)
		recs = append(recs, rec)
	}
	applyScenarioFaults(recs, o.Faults, o.Seed, o.Storage != "")
	return recs
}

func roomID(r *rand.Rand, i int) string {
	switch r.IntN(3) {
	case 0:
		return strconv.Itoa(1000 + r.IntN(9000))
	case 1:
		return fmt.Sprintf("room-%d", i)
	}
	return fmt.Sprintf("class_%d_%d", r.IntN(100), i) // ids may hold '_'
}

const idChars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func sessionID(r *rand.Rand) string {
	b := make([]byte, 22)
	for i := range b {
		b[i] = idChars[r.IntN(len(idChars))]
	}
	b[11] = '-' // RC's session ids look like lSA2G6CUf9A-6nnoNwXCx8
	return string(b)
}

func userID(r *rand.Rand) string {
	if r.IntN(4) == 0 {
		return fmt.Sprintf("user_%d", r.IntN(100000)) // with '_', as customers' ids may be
	}
	return strconv.Itoa(100000 + r.IntN(900000))
}

// streams returns the file series of a recording in mode m, for users
// newUser draws. The users of one recording are distinct, as in an RC
// room: two users drawing the same id would share file names, two files
// named alike with different sizes, which RC never sends (a 30-minute soak
// met one such pair in 238,680 recordings, and the oracle and the ledger
// then disagreed about its size).
func streams(r *rand.Rand, m rc.Mode, newUser func() string) []Stream {
	if m.IsMix() {
		return []Stream{{}}
	}
	var out []Stream
	users := 1 + r.IntN(3)
	taken := map[string]bool{}
	for i := range users {
		u := newUser()
		for taken[u] {
			u += "_" + strconv.Itoa(i)
		}
		taken[u] = true
		out = append(out, Stream{UserID: u})
		if m.IsSingle() && r.IntN(3) == 0 { // a camera or screen-share stream beside the default one
			out = append(out, Stream{UserID: u, Tag: tags[r.IntN(len(tags))]})
		}
	}
	return out
}

// bytesPerSecond is a plausible bitrate for the mode's files.
func bytesPerSecond(m rc.Mode) int64 {
	switch {
	case m.HasAudio() && m.HasVideo():
		return 128_000
	case m.HasVideo():
		return 112_000
	}
	return 16_000
}

// files cuts each stream into a segment per slicesMin and a final file,
// and decides each file's upload.
func files(r *rand.Rand, rec *Recording, o Options) []File {
	format := rec.Config.VideoFormat
	if !rec.Mode.HasVideo() {
		format = rec.Config.AudioFormat
	}
	slice := time.Duration(rec.Config.SlicesMin) * time.Minute
	end := rec.StartedAt.Add(rec.Duration)
	var out []File
	for _, s := range rec.Streams {
		for from := rec.StartedAt; from.Before(end); from = from.Add(slice) {
			to := from.Add(slice)
			if to.After(end) {
				to = end
			}
			f := File{
				Name:     rc.FileName(rc.NameParts{SessionID: rec.SessionID, RoomID: rec.RoomID, UserID: s.UserID, StreamTag: s.Tag, Timestamp: from.UnixMilli(), Format: format}),
				Stream:   s,
				Final:    !to.Before(end),
				From:     from,
				Size:     int64(to.Sub(from).Seconds())*bytesPerSecond(rec.Mode) + r.Int64N(4096),
				ClosedAt: to,
			}
			if f.Final && rec.EndCode != rc.StatusOK {
				f.Size = 0 // a failed end reports no size
			}
			f.StoredSize = f.Size
			upload := to.Add(time.Duration(2+r.IntN(8)) * time.Second)
			switch {
			case r.Float64() < o.UploadFailures:
				f.FailedAt = upload
				if r.Float64() >= o.NeverUploaded/max(o.UploadFailures, 1e-9) {
					f.UploadedAt = upload.Add(time.Duration(1+r.IntN(6)) * 10 * time.Second)
				}
			default:
				f.UploadedAt = upload
			}
			f.URL = "https://storage.example.com/" + rec.RecordID + "/" + f.Name
			if o.Storage != "" {
				f.URL = presign(o.Storage, ObjectPath(rec.RecordID, f.Name), upload)
			}
			out = append(out, f)
		}
	}
	return out
}

// wire is a callback body in the order RC writes its fields.
type wire struct {
	Timestamp    int64      `json:"timestamp"`
	Type         rc.Type    `json:"type"`
	AppKey       string     `json:"appKey"`
	RecordID     string     `json:"recordId"`
	RoomID       string     `json:"roomId"`
	SessionID    string     `json:"sessionId"`
	UserID       string     `json:"userId"`
	Mode         rc.Mode    `json:"mode"`
	Extra        string     `json:"extra"`
	Code         int        `json:"code"`
	ErrorMessage string     `json:"errorMessage"`
	Config       *rc.Config `json:"config,omitempty"`
	Output       wireOutput `json:"output"`
}

type wireOutput struct {
	FileName         string `json:"fileName"`
	FileSize         *int64 `json:"fileSize,omitempty"`
	FileURL          string `json:"fileUrl,omitempty"`
	AudioSample      any    `json:"audioSample,omitempty"`
	VideoResoulation string `json:"videoResoulation,omitempty"` // sic: RC's spelling
}

// Callbacks returns the callbacks RC sends for rec, in the order of
// simulated time.
func (rec Recording) Callbacks(appKey string) []Callback {
	var out []Callback
	add := func(at time.Time, typ rc.Type, user string, code int, output wireOutput, cfg *rc.Config) {
		if !rec.sent(at) {
			return // no-end: the end and what follows it never come
		}
		w := wire{Timestamp: at.UnixMilli(), Type: typ, AppKey: appKey, RecordID: rec.RecordID, RoomID: rec.RoomID,
			SessionID: rec.SessionID, UserID: user, Mode: rec.Mode, Extra: "sim", Code: code, ErrorMessage: "Success",
			Config: cfg, Output: output}
		if code != rc.StatusOK {
			w.ErrorMessage = "internal error"
			if typ == rc.TypeUpload {
				w.ErrorMessage = "upload to storage failed"
			}
		}
		body, err := json.Marshal(w)
		if err != nil {
			panic(err) // a wire value always marshals
		}
		out = append(out, Callback{At: at, RecordID: rec.RecordID, Type: typ, FileName: output.FileName, Code: code, Body: body})
	}
	startOut := wireOutput{FileName: rec.Files[0].Name}
	if rec.Mode.HasAudio() {
		startOut.AudioSample = 48000
	}
	if rec.Mode.HasVideo() {
		startOut.VideoResoulation = "1280x720"
	}
	cfg := rec.Config
	add(rec.StartedAt, rc.TypeStart, rec.Streams[0].UserID, rec.StartCode, startOut, &cfg)
	if rec.StartCode != rc.StatusOK {
		return out // a recording that failed to start produces nothing else
	}
	for _, f := range rec.Files {
		typ, code := rc.TypeSegment, rc.StatusOK
		if f.Final {
			typ, code = rc.TypeEnd, rec.EndCode
		}
		size := f.Size
		add(f.ClosedAt, typ, f.Stream.UserID, code, wireOutput{FileName: f.Name, FileSize: &size}, nil)
		if !f.FailedAt.IsZero() {
			add(f.FailedAt, rc.TypeUpload, f.Stream.UserID, 500, wireOutput{FileName: f.Name}, nil)
		}
		if !f.UploadedAt.IsZero() {
			add(f.UploadedAt, rc.TypeUpload, f.Stream.UserID, rc.StatusOK, wireOutput{FileName: f.Name, FileURL: f.URL}, nil)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}
