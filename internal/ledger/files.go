package ledger

import (
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FileUpload selects files across recordings by where their upload stands.
// The first three are a file's own uploadStatus; the other two are what
// the overview counts, so a link from a count lists exactly what it counted.
type FileUpload string

// The FileFilter upload selections.
const (
	FilesPending  FileUpload = "pending"  // uploadStatus pending: no upload reported, none failed
	FilesUploaded FileUpload = "uploaded" // uploadStatus uploaded
	FilesFailed   FileUpload = "failed"   // uploadStatus failed: an upload failed and none succeeded since
	// FilesNotUploaded is pending or failed: the files Stats.FilesPending
	// counts ("Files not uploaded yet").
	FilesNotUploaded FileUpload = "not_uploaded"
	// FilesOverdue is the files not uploaded of the recordings overdue at
	// the filter's Now: the files Stats.FilesOverdue counts.
	FilesOverdue FileUpload = "overdue"
)

// FileUploads lists the selections, in the order forms offer them.
var FileUploads = []FileUpload{FilesNotUploaded, FilesPending, FilesFailed, FilesOverdue, FilesUploaded}

// ErrBadFilter is a filter value no store knows.
var ErrBadFilter = errors.New("invalid filter")

// FileFilter selects files across recordings; zero fields match every file.
type FileFilter struct {
	Upload FileUpload
	Now    time.Time // the server clock for FilesOverdue; time.Now when zero
	AppKey string
	RoomID string
	// Since and Until bound the file's firstSeenAt (the server's clock when
	// its first callback arrived, inclusive): unlike the time in its name or
	// RC's timestamps, every file has one and it cannot be forged ahead.
	Since  *int64
	Until  *int64
	Limit  int    // 1 to MaxPage; DefaultPage when 0
	Cursor string // from the previous page's Next
}

// ListedFile is one file of a FilePage with the recording's app and room,
// which lists of files show beside it.
type ListedFile struct {
	File
	AppKey string `json:"appKey"`
	RoomID string `json:"roomId"`
}

// FilePage is one page of files: the newest recordings (by first arrival,
// as RecordingPage) first and, within a recording, its newest files (by
// firstSeenAt, then name) first. Next is empty on the last page.
type FilePage struct {
	Items []ListedFile
	Next  string
}

// PageLimit checks and defaults the filter's limit as ListRecordings does.
func (f FileFilter) PageLimit() (int, error) { return PageLimit(RecordingFilter{Limit: f.Limit}) }

// Check returns ErrBadFilter for an upload selection no store knows.
func (f FileFilter) Check() error {
	if f.Upload != "" && !slices.Contains(FileUploads, f.Upload) {
		return fmt.Errorf("upload %.40q: %w", f.Upload, ErrBadFilter)
	}
	return nil
}

// Matches reports whether the named file of s is one f selects at now
// (f.Now already resolved). Stores narrow the recordings with SQL first and
// leave the exact decision to this.
func (f FileFilter) Matches(s State, name string, now time.Time) bool {
	file, ok := s.Files[name]
	if !ok || f.AppKey != "" && s.AppKey != f.AppKey || f.RoomID != "" && s.RoomID != f.RoomID {
		return false
	}
	if f.Since != nil && file.FirstSeenAt < *f.Since || f.Until != nil && file.FirstSeenAt > *f.Until {
		return false
	}
	status := file.uploadStatus()
	switch f.Upload {
	case FilesPending, FilesUploaded, FilesFailed:
		return status == UploadStatus(f.Upload)
	case FilesNotUploaded:
		return status != UploadStatusUploaded
	case FilesOverdue:
		return status != UploadStatusUploaded && s.Overdue(now)
	}
	return true
}

// FileOrder returns the names of s's files in a FilePage's order: newest
// first seen first, then by name.
func FileOrder(s State) []string {
	names := make([]string, 0, len(s.Files))
	for n := range s.Files {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return compareFiles(s.Files[a].FirstSeenAt, a, s.Files[b].FirstSeenAt, b) })
	return names
}

// compareFiles orders files within a recording, newest first.
func compareFiles(atA int64, nameA string, atB int64, nameB string) int {
	if c := cmp.Compare(atB, atA); c != 0 {
		return c
	}
	return strings.Compare(nameA, nameB)
}

// FileCursor is where a FilePage ended: a file of the recording whose
// first event has seq Seq.
type FileCursor struct {
	Seq         int64
	FirstSeenAt int64
	Name        string
}

// Before reports whether the file (firstSeenAt, name) of the cursor's
// recording comes at or before the cursor, so a later page skips it. A
// file that appeared since keeps its place by the same order.
func (c FileCursor) Before(firstSeenAt int64, name string) bool {
	return compareFiles(firstSeenAt, name, c.FirstSeenAt, c.Name) <= 0
}

// EncodeFileCursor makes the opaque cursor after c for filter f; like a
// recordings cursor it carries a checksum of its filter.
func EncodeFileCursor(c FileCursor, f FileFilter) string {
	s := "f1:" + strconv.FormatInt(c.Seq, 10) + ":" + strconv.FormatInt(c.FirstSeenAt, 10) + ":" +
		strconv.FormatUint(uint64(fileScope(f)), 36) + ":" + c.Name
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// DecodeFileCursor reads f's cursor (the zero FileCursor when it has
// none), or returns ErrBadCursor.
func DecodeFileCursor(f FileFilter) (FileCursor, error) {
	if f.Cursor == "" {
		return FileCursor{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(f.Cursor)
	if err == nil {
		if rest, ok := strings.CutPrefix(string(b), "f1:"); ok {
			parts := strings.SplitN(rest, ":", 4)
			if len(parts) == 4 {
				seq, err1 := strconv.ParseInt(parts[0], 10, 64)
				at, err2 := strconv.ParseInt(parts[1], 10, 64)
				sc, err3 := strconv.ParseUint(parts[2], 36, 32)
				if err1 == nil && err2 == nil && err3 == nil && seq > 0 {
					if uint32(sc) != fileScope(f) {
						return FileCursor{}, fmt.Errorf("cursor belongs to other filters: %w", ErrBadCursor)
					}
					return FileCursor{Seq: seq, FirstSeenAt: at, Name: parts[3]}, nil
				}
			}
		}
	}
	return FileCursor{}, fmt.Errorf("cursor %.40q: %w", f.Cursor, ErrBadCursor)
}

// fileScope checksums what a file filter selects (not its page, nor its
// clock: an overdue list paged over a minute stays one list).
func fileScope(f FileFilter) uint32 {
	h := crc32.NewIEEE()
	for _, s := range []string{string(f.Upload), f.AppKey, f.RoomID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	for _, p := range []*int64{f.Since, f.Until} {
		if p != nil {
			h.Write([]byte(strconv.FormatInt(*p, 10)))
		}
		h.Write([]byte{0})
	}
	return h.Sum32()
}
