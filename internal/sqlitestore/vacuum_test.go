package sqlitestore_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/sqlitestore"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func autoVacuum(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode int
	if err := db.QueryRow(`PRAGMA auto_vacuum`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	return mode
}

func quarantineBig(t *testing.T, s *sqlitestore.Store, n int) {
	t.Helper()
	for range n {
		r := ledger.Rejection{Status: 401, Reason: "bad_signature", Header: http.Header{}, Body: bytes.Repeat([]byte("b"), 60<<10)}
		if err := s.Quarantine(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
}

// TestQuarantineCapGivesSpaceBack fills the quarantine to 4 MiB, reopens
// the store with a 512 KiB cap and adds one rejection: the cap's deletions
// go back to the file system (auto_vacuum=incremental), so the file
// follows the cap down instead of keeping its largest size.
func TestQuarantineCapGivesSpaceBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recledger.db")
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{QuarantineMaxBytes: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	quarantineBig(t, s, 64)
	s.Close()
	full := fileSize(t, path)
	if mode := autoVacuum(t, path); mode != 2 {
		t.Errorf("auto_vacuum = %d on a new log file, want 2 (incremental)", mode)
	}
	s, err = sqlitestore.Open(context.Background(), path, sqlitestore.Options{QuarantineMaxBytes: 512 << 10})
	if err != nil {
		t.Fatal(err)
	}
	quarantineBig(t, s, 1)
	st, err := s.Stats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	after := fileSize(t, path)
	t.Logf("file %d bytes at a 4 MiB cap, %d after capping to 512 KiB (%d bytes kept)", full, after, st.QuarantineBytes)
	if st.QuarantineBytes > 512<<10 || after > 512<<10+256<<10 {
		t.Errorf("after capping to 512 KiB: %d bytes kept, file %d bytes (was %d); want both near the cap", st.QuarantineBytes, after, full)
	}
}

// TestOldLogFileIsVacuumedOnce: a log file made before auto_vacuum was set
// (with free pages in it) is rebuilt once when opened, and says so in the
// log; it then shrinks when its quarantine does.
func TestOldLogFileIsVacuumedOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "recledger.db")
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{QuarantineMaxBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	quarantineBig(t, s, 32)
	s.Close()
	// Make it an old file: no auto_vacuum, and 2 MB of free pages.
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`PRAGMA auto_vacuum = NONE`, `VACUUM`, `DELETE FROM quarantine`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	db.Close()
	if mode := autoVacuum(t, path); mode != 0 {
		t.Fatalf("auto_vacuum = %d, want the old file's 0", mode)
	}
	old := fileSize(t, path)
	var logs bytes.Buffer
	s, err = sqlitestore.Open(context.Background(), path, sqlitestore.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if mode := autoVacuum(t, path); mode != 2 {
		t.Errorf("auto_vacuum = %d after opening an old file, want 2 (incremental)", mode)
	}
	if now := fileSize(t, path); now > old/4 {
		t.Errorf("the old file held %d bytes, %d after the VACUUM; want its free pages gone", old, now)
	}
	if !strings.Contains(logs.String(), "VACUUM") {
		t.Errorf("the rebuild was not logged:\n%s", logs.String())
	}
	logs.Reset()
	s, err = sqlitestore.Open(context.Background(), path, sqlitestore.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if strings.Contains(logs.String(), "VACUUM") {
		t.Errorf("rebuilt again at the next open:\n%s", logs.String())
	}
}

// TestQuarantineSizeMigration: rows quarantined before log migration 3
// are measured by it, headers and all, so the cap counts them too.
func TestQuarantineSizeMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "recledger.db")
	if err := sqlitestore.MigrateTo(ctx, path, sqlitestore.LogFile, 2); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO quarantine (at, status, reason, message, remote, method, path, header, body, body_size)
		VALUES (1, 401, 'bad_signature', '', '', 'POST', '/', ?, '{}', 2)`, `{"X-Big":["`+strings.Repeat("h", 1000)+`"]}`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Stats(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st.QuarantineBytes < 1000 {
		t.Errorf("after migrating, the old row counts %d bytes; want its headers counted", st.QuarantineBytes)
	}
}
