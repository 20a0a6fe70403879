package simulator

import (
	"fmt"
	"net/url"
	"slices"

	"github.com/recledger/recledger/rc"
)

// shownVerification is a file's storage verification as the API shows it.
type shownVerification struct {
	State       string `json:"state"`
	HTTPStatus  *int   `json:"httpStatus"`
	Size        *int64 `json:"size"`
	ContentType string `json:"contentType"`
	ETag        string `json:"etag"`
	CheckedAt   *int64 `json:"checkedAt"`
	Error       string `json:"error"`
}

// compareVerification checks the verification of each file shown against
// the test storage: an uploaded file's must be what its object implies
// (verified; missing for the fault absent; size_mismatch for wrong-size,
// when RC's size is known), with the storage's status, size, type and
// ETag; a file not uploaded has none. It counts the states shown into
// states and returns how many are still pending.
//
// One case allows two answers: when the receiver acknowledged a file's
// upload before any callback giving its size, the check may have run
// before the size was known, and a checker without RC's size verifies
// any size. A wrong-size file may then show verified.
func compareVerification(st *Storage, want Expected, got shown, acked []Callback, states map[string]int) (out []Mismatch, pending int) {
	add := func(kind, format string, args ...any) {
		out = append(out, Mismatch{want.RecordID, kind, fmt.Sprintf(format, args...)})
	}
	late := sizeAfterUpload(acked)
	for _, f := range got.Files {
		w, ok := want.Files[f.FileName]
		if !ok {
			continue // compare reports it
		}
		v := f.Verification
		if w.UploadStatus != "uploaded" || w.URL == nil {
			if v != nil {
				add("verification not uploaded", "file %s was never uploaded but shows verification %s", f.FileName, v.State)
			}
			continue
		}
		u, err := url.Parse(*w.URL)
		if err != nil {
			add("verification", "file %s: its URL does not parse: %v", f.FileName, err)
			continue
		}
		exp := st.want(u.Path, w.Size)
		allowed := []string{exp.State}
		if exp.State == "size_mismatch" && late[f.FileName] {
			allowed = append(allowed, "verified")
		}
		if v == nil {
			add("verification missing", "file %s has no verification, want %s", f.FileName, exp.State)
			continue
		}
		states[v.State]++
		if v.State == "pending" {
			pending++
			add("verification pending", "file %s is still pending verification (%s)", f.FileName, v.Error)
			continue
		}
		if !slices.Contains(allowed, v.State) {
			add("verification state", "file %s verification is %s (%s), want %s", f.FileName, v.State, v.Error, exp.State)
			continue
		}
		diff := func(attr string, w, g any) {
			if fmt.Sprint(w) != fmt.Sprint(g) {
				add("verification "+attr, "file %s verification %s is %v, want %v", f.FileName, attr, g, w)
			}
		}
		diff("httpStatus", exp.HTTPStatus, deref(v.HTTPStatus))
		if v.CheckedAt == nil {
			add("verification checkedAt", "file %s verification %s has no checkedAt", f.FileName, v.State)
		}
		if exp.State == "missing" {
			continue
		}
		diff("size", exp.Size, deref(v.Size))
		diff("contentType", exp.ContentType, v.ContentType)
		diff("etag", exp.ETag, v.ETag)
	}
	return out, pending
}

// sizeAfterUpload returns the files whose first successful upload was
// acknowledged before the first callback giving their size (acked is in
// the order acknowledged).
func sizeAfterUpload(acked []Callback) map[string]bool {
	uploaded, sized, late := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, c := range acked {
		cb, err := rc.Parse(c.Body)
		if err != nil {
			continue // Expect reports it
		}
		name := cb.Output.FileName
		switch {
		case cb.Type == rc.TypeUpload && (cb.Code == rc.StatusOK || cb.Code == 0):
			uploaded[name] = true
		case (cb.Type == rc.TypeSegment || cb.Type == rc.TypeEnd) && cb.Output.FileSize != nil:
			if !sized[name] && uploaded[name] {
				late[name] = true
			}
			sized[name] = true
		}
	}
	return late
}
