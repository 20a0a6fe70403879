package sqlitestore_test

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/removal"
	"github.com/recledger/recledger/internal/sqlitestore"
)

// TestEraseLeavesNoBytes: after an erasure, no byte of the user's id or
// of their files' names is left in any file of the data directory (both
// databases, their write-ahead logs and shared memory), while the other
// user's id still is (so the scan can find what is there).
func TestEraseLeavesNoBytes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "recledger.db")
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Announce(true) // outbound events, whose payloads name the user too
	const gone, kept = "leaver-7f3a9c", "keeper-51bd2e"
	at := time.Now().Add(-time.Hour)
	var (
		names [][]byte
		seen  = map[string]bool{}
	)
	for i, id := range []string{"rec-g1", "rec-k1", "rec-g2", "rec-k2"} {
		user := []string{gone, kept}[i%2]
		for j, cb := range ledgertest.UserRecording(t, id, user, 3) {
			if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: at.Add(time.Duration(i*100+j) * time.Millisecond)}); err != nil {
				t.Fatal(err)
			}
			if name := cb.Output.FileName; user == gone && name != "" && name != "tmp.mp4" && !seen[name] {
				seen[name] = true
				names = append(names, []byte(cb.Output.FileName))
			}
		}
	}
	for _, body := range []string{`{"userId":"` + gone + `","type":1}`, `{"userId":"` + kept + `"}`} {
		r := ledger.Rejection{At: time.Now().UnixMilli(), Status: 401, Reason: "bad_signature", Method: "POST",
			Path: "/v1/callbacks/recording", Header: http.Header{"X-User": {gone}}, Body: []byte(body), BodySize: int64(len(body))}
		if body[11] == 'k' {
			r.Header = http.Header{"X-User": {kept}}
		}
		if err := s.Quarantine(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Recording(ctx, "rec-g2"); err != nil { // projected
		t.Fatal(err)
	}
	// Storage checks of every file, some with an outcome: their rows name
	// the files too.
	var checks []ledger.FileCheck
	for _, id := range []string{"rec-g1", "rec-k1", "rec-g2", "rec-k2"} {
		st, err := s.Recording(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for name, f := range st.Files {
			if f.URL != "" {
				checks = append(checks, ledger.FileCheck{RecordID: id, FileName: name, AppKey: st.AppKey, URLHash: ledger.URLHash(f.URL),
					Verification: ledger.Verification{State: ledger.VerifyPending}, NextAt: 1})
			}
		}
	}
	if err := s.QueueVerifications(ctx, checks, 10); err != nil {
		t.Fatal(err)
	}
	for _, c := range checks[:len(checks)/2] {
		c.State, c.Error, c.NextAt = ledger.VerifyMissing, "404 for "+c.FileName, 0
		if _, err := s.SaveVerification(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(1500 * time.Millisecond) // the periodic pass announces what settled

	got, err := removal.Erase(ctx, s, gone, "", time.Now())
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	if got.Recordings != 2 || got.Files != 6 || got.Quarantine != 1 || got.LogRows == 0 {
		t.Errorf("Erase = %+v; want 2 recordings, 6 files, 1 quarantine row, some log rows", got)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d bytes", f.Name(), len(b))
		for _, needle := range append([][]byte{[]byte(gone)}, names...) {
			if i := bytes.Index(b, needle); i >= 0 {
				t.Errorf("%s still holds %q at byte %d", f.Name(), needle, i)
			}
		}
		all = append(all, b...)
	}
	if !bytes.Contains(all, []byte(kept)) {
		t.Errorf("the scan finds the kept user's id nowhere: it cannot find anything")
	}
	if len(names) != 6 {
		t.Errorf("%d file names scanned for, want 6", len(names))
	}
}

// TestEraseFindsUsersByFileName: in the single modes a recording holds
// the files of every user of the room while its userId is the first
// callback's; erasing another of its users removes it too, and no byte
// of that user's id is left in the data directory.
func TestEraseFindsUsersByFileName(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, filepath.Join(dir, "recledger.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const first, gone, kept = "first-0c5e", "second_9d41b7", "keeper-51bd2e"
	at := time.Now().Add(-time.Hour)
	for i, cb := range append(ledgertest.SharedRecording(t, "rec-shared", first, gone), ledgertest.UserRecording(t, "rec-kept", kept, 2)...) {
		if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: at.Add(time.Duration(i) * time.Millisecond)}); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := s.Recording(ctx, "rec-shared"); err != nil || st.UserID != first {
		t.Fatalf("shared recording: %+v, %v; want userId %s", st.UserID, err, first)
	}
	got, err := removal.Erase(ctx, s, gone, "", time.Now())
	if err != nil || got.Recordings != 1 {
		t.Fatalf("Erase = %+v, %v; want the shared recording removed", got, err)
	}
	if _, err := s.Recording(ctx, "rec-kept"); err != nil {
		t.Errorf("another user's recording went: %v", err)
	}
	files, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(b, []byte(gone)); i >= 0 {
			t.Errorf("%s still holds %q at byte %d", f.Name(), gone, i)
		}
	}
}

// TestScrubLeavesWritersFree: an erasure's truncation of the write-ahead
// logs waits for readers (a backup, a long query) while it holds the write
// lock; it must not hold it for the store's busy timeout, or callbacks
// wait that long. With a busy timeout of a minute and a reader held open,
// a callback is stored while the scrub still waits: the reader is let go
// only when the callback is stored, or after a safety wait (far above the
// few milliseconds it takes) that then fails the test.
func TestScrubLeavesWritersFree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recledger.db")
	ctx := context.Background()
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{BusyTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cbs := ledgertest.UserRecording(t, "r1", "u", 2)
	if _, err := s.Append(ctx, ledger.Incoming{Callback: cbs[0], ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	reader, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRow(`SELECT count(*) FROM log`).Scan(&n); err != nil { // a snapshot held
		t.Fatal(err)
	}
	scrubbed := make(chan error, 1)
	go func() { scrubbed <- s.Scrub(ctx) }()
	stored := make(chan error, 1)
	go func() {
		_, err := s.Append(ctx, ledger.Incoming{Callback: cbs[1], ReceivedAt: time.Now()})
		stored <- err
	}()
	waited := false
	select {
	case err := <-stored:
		if err != nil {
			t.Errorf("Append beside a scrub: %v", err)
		}
	case <-time.After(20 * time.Second):
		waited = true
		t.Errorf("a callback waited for the scrub's truncation (held the write lock for the busy timeout)")
	}
	reader.Rollback()
	if err := <-scrubbed; err != nil {
		t.Errorf("Scrub: %v", err)
	}
	if waited {
		<-stored
	}
}
