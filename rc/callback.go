package rc

// Type is the step of a recording a callback reports.
type Type int

// The callback types RC documents. Other values are accepted and reported as
// unknown: RC may add types, and a receiver must not reject them.
const (
	TypeStart   Type = 1 // recording started
	TypeSegment Type = 2 // a segment file was closed because the recording outgrew slicesMin
	TypeEnd     Type = 3 // recording ended; output names the final file
	TypeUpload  Type = 4 // a file was uploaded (or failed to upload) to the customer's storage
)

// String returns the type's name: "start", "segment", "end", "upload" or
// "unknown".
func (t Type) String() string {
	switch t {
	case TypeStart:
		return "start"
	case TypeSegment:
		return "segment"
	case TypeEnd:
		return "end"
	case TypeUpload:
		return "upload"
	}
	return "unknown"
}

// Known reports whether t is one of the four documented types.
func (t Type) Known() bool { return t >= TypeStart && t <= TypeUpload }

// Mode is the recording mode chosen when the recording was started.
type Mode int

// The recording modes. Modes 0-2 record each user stream to its own file, 3-5
// mix the room into one file, and 6 mixes each user's audio and video into one
// file per user.
const (
	ModeUnknown        Mode = -1 // the callback carried no usable mode
	ModeAudioVideo     Mode = 0  // audio and video, one file per stream
	ModeVideo          Mode = 1  // video only, one file per stream
	ModeAudio          Mode = 2  // audio only, one file per stream
	ModeMixAudioVideo  Mode = 3  // audio and video mixed, one file per room
	ModeMixVideo       Mode = 4  // video only mixed, one file per room
	ModeMixAudio       Mode = 5  // audio only mixed, one file per room
	ModeUserAudioVideo Mode = 6  // audio and video mixed per user, one file per user
)

var modeNames = [...]string{
	"single-audio-video",
	"single-video",
	"single-audio",
	"mix-audio-video",
	"mix-video",
	"mix-audio",
	"user-mix",
}

// String returns the mode's name, for example "single-video" or "mix-audio";
// "unknown" for values RC does not document.
func (m Mode) String() string {
	if m.Known() {
		return modeNames[m]
	}
	return "unknown"
}

// Known reports whether m is one of the seven documented modes.
func (m Mode) Known() bool { return m >= ModeAudioVideo && m <= ModeUserAudioVideo }

// IsSingle reports whether m records each user stream to its own file (0-2).
func (m Mode) IsSingle() bool { return m >= ModeAudioVideo && m <= ModeAudio }

// IsMix reports whether m mixes the whole room into one file (3-5). In these
// modes callbacks carry an empty userId.
func (m Mode) IsMix() bool { return m >= ModeMixAudioVideo && m <= ModeMixAudio }

// IsUserMix reports whether m mixes each user's streams into one file (6).
func (m Mode) IsUserMix() bool { return m == ModeUserAudioVideo }

// HasAudio reports whether files recorded in m carry audio.
func (m Mode) HasAudio() bool {
	switch m {
	case ModeAudioVideo, ModeAudio, ModeMixAudioVideo, ModeMixAudio, ModeUserAudioVideo:
		return true
	}
	return false
}

// HasVideo reports whether files recorded in m carry video.
func (m Mode) HasVideo() bool {
	switch m {
	case ModeAudioVideo, ModeVideo, ModeMixAudioVideo, ModeMixVideo, ModeUserAudioVideo:
		return true
	}
	return false
}

// StatusOK is the code of a step that succeeded; any other code is a failure
// of that step, described by ErrorMessage.
const StatusOK = 200

// Callback is one status callback as RC sent it.
type Callback struct {
	Timestamp    int64   `json:"timestamp"` // event time on RC's clock, Unix ms; 0 when absent
	Type         Type    `json:"type"`
	AppKey       string  `json:"appKey"`
	RecordID     string  `json:"recordId"`
	RoomID       string  `json:"roomId"`
	SessionID    string  `json:"sessionId"`
	UserID       string  `json:"userId"` // empty in the mix modes
	Mode         Mode    `json:"mode"`   // ModeUnknown when absent
	Extra        string  `json:"extra"`
	Code         int     `json:"code"` // StatusOK on success; 0 when absent
	ErrorMessage string  `json:"errorMessage"`
	Config       *Config `json:"config,omitempty"` // start callbacks only
	Output       Output  `json:"output"`

	// Warnings lists what was odd about the body but did not stop it from
	// being understood: a number sent as a string, a null, an unknown type.
	Warnings []Warning `json:"warnings,omitempty"`

	// Raw is the body exactly as received (a copy Parse owns).
	Raw []byte `json:"-"`
}

// Config is the recording configuration a start callback reports.
type Config struct {
	Trigger     int    `json:"trigger"`     // 1 automatic (RC's example also shows 0)
	MixLayout   int    `json:"mixLayout"`   // 1 custom, 2 floating (default), 3 adaptive
	SlicesMin   int    `json:"slicesMin"`   // segment length in minutes
	AudioFormat string `json:"audioFormat"` // aac, mp3
	VideoFormat string `json:"videoFormat"` // mkv, mp4, flv, hls
}

// Output describes the file a callback is about.
type Output struct {
	FileName string `json:"fileName,omitempty"`
	// FileSize is the size in bytes reported by segment and end callbacks;
	// nil when the callback did not carry one.
	FileSize *int64 `json:"fileSize,omitempty"`
	FileURL  string `json:"fileUrl,omitempty"` // upload callbacks only
	// AudioSample and VideoResolution come with start callbacks; zero or
	// empty when the mode has no audio or no video. RC spells the resolution
	// field "videoResoulation"; both spellings land here.
	AudioSample     int    `json:"audioSample,omitempty"`
	VideoResolution string `json:"videoResolution,omitempty"`
}

// OK reports whether the step the callback reports succeeded.
func (c *Callback) OK() bool { return c.Code == StatusOK }

// Key is what identifies a callback: RC sends no event id, so two callbacks
// with equal keys are deliveries of the same event.
type Key struct {
	AppKey    string `json:"appKey"`
	RecordID  string `json:"recordId"`
	Type      Type   `json:"type"`
	Timestamp int64  `json:"timestamp"`
	FileName  string `json:"fileName"`
	Code      int    `json:"code"`
}

// Key returns the callback's identity.
func (c *Callback) Key() Key {
	return Key{
		AppKey:    c.AppKey,
		RecordID:  c.RecordID,
		Type:      c.Type,
		Timestamp: c.Timestamp,
		FileName:  c.Output.FileName,
		Code:      c.Code,
	}
}

// Warning is one oddity Parse accepted.
type Warning struct {
	Field   string `json:"field"` // JSON path, for example "output.fileSize"
	Message string `json:"message"`
}

func (w Warning) String() string { return w.Field + ": " + w.Message }
