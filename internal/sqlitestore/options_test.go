package sqlitestore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/rc"
)

func open(t *testing.T, o Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "recledger.db")
	s, err := Open(context.Background(), path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestDurabilitySettings(t *testing.T) {
	for _, tt := range []struct {
		setting string
		want    int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{{"", 2}, {"full", 2}, {"FULL", 2}, {"normal", 1}} {
		s, _ := open(t, Options{Synchronous: tt.setting})
		var sync int
		var mode string
		if err := s.writer.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil {
			t.Fatal(err)
		}
		if err := s.writer.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if sync != tt.want || mode != "wal" {
			t.Errorf("synchronous %q: PRAGMA synchronous = %d, journal_mode = %s; want %d, wal", tt.setting, sync, mode, tt.want)
		}
	}
	if _, err := Open(context.Background(), filepath.Join(t.TempDir(), "x.db"), Options{Synchronous: "off"}); err == nil {
		t.Error("synchronous=off accepted")
	}
}

func TestQuarantineCaps(t *testing.T) {
	s, _ := open(t, Options{QuarantineMaxCount: 20, QuarantineMaxBytes: 1000})
	ctx := context.Background()
	for i := range 100 {
		body := make([]byte, 10+i%7)
		if err := s.Quarantine(ctx, ledger.Rejection{At: int64(i), Status: 400, Reason: "invalid_json", Message: fmt.Sprint(i),
			Header: http.Header{}, Body: body, BodySize: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.QuarantineList(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) > 20 || len(all) < 10 || all[0].Message != "99" {
		t.Errorf("kept %d rejections (newest %q), want between 10 and 20 ending with the newest", len(all), all[0].Message)
	}
	for i := range 30 { // bodies of 100 bytes: the byte cap binds first
		body := make([]byte, 100)
		if err := s.Quarantine(ctx, ledger.Rejection{Message: fmt.Sprint("big", i), Header: http.Header{}, Body: body, BodySize: 100}); err != nil {
			t.Fatal(err)
		}
	}
	var n, bytes int64
	if err := s.writer.QueryRow(`SELECT COUNT(*), SUM(length(body)) FROM quarantine`).Scan(&n, &bytes); err != nil {
		t.Fatal(err)
	}
	if bytes > 1000 || n == 0 {
		t.Errorf("quarantine holds %d rows, %d bytes; want at most 1000 bytes", n, bytes)
	}
}

// TestBusyTimeoutBelowRCsWait: a commit that waits for SQLite's write lock
// gives up (and its callbacks are answered 503) before RC stops waiting
// for the answer, 5 s after sending.
func TestBusyTimeoutBelowRCsWait(t *testing.T) {
	s, _ := open(t, Options{})
	var ms int64
	if err := s.writer.QueryRow(`PRAGMA busy_timeout`).Scan(&ms); err != nil {
		t.Fatal(err)
	}
	if ms <= 0 || ms >= 5000 {
		t.Errorf("busy_timeout %d ms by default; want under RC's 5000", ms)
	}
}

// TestLockedDatabaseFailsThenRecovers holds SQLite's write lock from
// another connection, as a stuck backup or a second process would: appends
// fail (ingest answers 503) and succeed again once the lock is released.
func TestLockedDatabaseFailsThenRecovers(t *testing.T) {
	s, path := open(t, Options{BusyTimeout: 100 * time.Millisecond})
	other, err := sql.Open("sqlite", dsn(path, Options{BusyTimeout: time.Second}, SyncFull, false))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	lock, err := other.Begin() // BEGIN IMMEDIATE: the write lock
	if err != nil {
		t.Fatal(err)
	}
	cb := ledgertest.Callback(t, "rec-lock", rc.TypeStart, 0, "", 200)
	if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: time.Now()}); err == nil {
		t.Fatal("Append succeeded while another connection held the write lock")
	}
	if err := s.Ping(context.Background()); err == nil {
		t.Error("Ping succeeded while the database was locked")
	}
	lock.Rollback()
	a, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: time.Now()})
	if err != nil || a.Seq != 1 {
		t.Fatalf("Append after the lock was released = %+v, %v; want seq 1", a, err)
	}
}

// TestReplayMemorySurvivesRestart: the signature that admitted a logged
// callback is known again after a restart within the window (its row
// carries it), not after the window, and a signature whose callback was
// never logged is not kept.
func TestReplayMemorySurvivesRestart(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	dir := t.TempDir()
	path := filepath.Join(dir, "replay.db")
	ctx := context.Background()
	s, err := Open(ctx, path, Options{Now: clock, ReplayWindow: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cb := ledgertest.Callback(t, "signed", rc.TypeStart, 0, "", 200)
	logged := rc.ReplayKey{AppKey: "app", Nonce: "logged", Timestamp: "1"}
	refused := rc.ReplayKey{AppKey: "app", Nonce: "refused", Timestamp: "1"}
	for k, body := range map[rc.ReplayKey][]byte{logged: cb.Raw, refused: []byte(`{"refused":true}`)} {
		if v, err := s.Remember(ctx, k, sha256.Sum256(body), now.Add(5*time.Minute)); err != nil || v != rc.ReplayFirst {
			t.Fatalf("Remember(%s) = %v, %v", k.Nonce, v, err)
		}
	}
	if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	for _, step := range []struct {
		after  time.Duration
		key    rc.ReplayKey
		digest [32]byte
		want   rc.ReplayVerdict
	}{
		{time.Minute, logged, [32]byte{9}, rc.ReplayOtherBody},
		{time.Minute, logged, sha256.Sum256(cb.Raw), rc.ReplaySameBody},
		{time.Minute, refused, [32]byte{9}, rc.ReplayFirst},
		{12 * time.Minute, logged, [32]byte{9}, rc.ReplayFirst},
	} {
		now = time.Now().Add(step.after)
		s, err := Open(ctx, path, Options{Now: clock, ReplayWindow: 10 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := s.Remember(ctx, step.key, step.digest, now.Add(time.Minute)); err != nil || v != step.want {
			t.Errorf("%s after %s: Remember = %v, %v; want %v", step.key.Nonce, step.after, v, err, step.want)
		}
		s.Close()
	}
}

// TestLedgerAheadOfLogIsRebuilt loses the log's last commits, as a power
// loss with synchronous=normal can while the ledger kept its projections of
// them: on open the ledger must describe the log again.
func TestLedgerAheadOfLogIsRebuilt(t *testing.T) {
	s, path := open(t, Options{})
	ctx := context.Background()
	for _, id := range []string{"kept", "lost"} {
		cb := ledgertest.Callback(t, id, rc.TypeStart, 0, "", 200)
		if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Recording(ctx, "lost"); err != nil { // projected
		t.Fatal(err)
	}
	s.Close()
	loseLogRow(t, path, 2)

	s2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if _, err := s2.Recording(ctx, "lost"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("a recording the log lost is still in the ledger: %v", err)
	}
	if _, err := s2.Recording(ctx, "kept"); err != nil {
		t.Errorf("kept recording after the rebuild: %v", err)
	}
	a, err := s2.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, "after", rc.TypeStart, 0, "", 200), ReceivedAt: time.Now()})
	if err != nil || a.Seq != 2 {
		t.Fatalf("append after the rebuild = %+v, %v; want seq 2", a, err)
	}
	if _, err := s2.Recording(ctx, "after"); err != nil {
		t.Errorf("a callback logged after the rebuild is not projected: %v", err)
	}
}

func TestOneProcessPerStore(t *testing.T) {
	s, path := open(t, Options{})
	if _, err := Open(context.Background(), path, Options{}); !errors.Is(err, ErrInUse) {
		t.Fatalf("second Open of a store in use = %v, want ErrInUse", err)
	}
	if _, _, err := MigrateFile(context.Background(), path, Options{}); !errors.Is(err, ErrInUse) {
		t.Errorf("MigrateFile of a store in use = %v, want ErrInUse", err)
	}
	s.Close()
	s2, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func TestPathWithURISpecialCharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "odd dir #1")
	path := filepath.Join(dir, "rec?ledger%20.db")
	s, err := Open(context.Background(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mode string
	if err := s.writer.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v: the options after the path were lost", mode, err)
	}
	s.Close()
	for _, p := range []string{path, LedgerPath(path)} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("no file at %q: %v", p, err)
		}
	}
}

// TestVerificationCursorBehindLostLog: when the log lost commits the
// verifier had queued past, its cursor comes back to the log's end, so
// the uploads logged under the seqs given again are not skipped; and the
// checks of a recording the log lost go with it.
func TestVerificationCursorBehindLostLog(t *testing.T) {
	s, path := open(t, Options{})
	ctx := context.Background()
	for _, id := range []string{"kept", "lost"} {
		cb := ledgertest.Callback(t, id, rc.TypeStart, 0, "", 200)
		if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Recording(ctx, "lost"); err != nil { // projected
		t.Fatal(err)
	}
	check := func(id string) ledger.FileCheck {
		return ledger.FileCheck{RecordID: id, FileName: id + ".mp4", AppKey: "app", URLHash: ledger.URLHash("http://oss/" + id),
			Verification: ledger.Verification{State: ledger.VerifyPending}, NextAt: 1}
	}
	if err := s.QueueVerifications(ctx, []ledger.FileCheck{check("kept"), check("lost")}, 2); err != nil {
		t.Fatal(err)
	}
	s.Close()
	loseLogRow(t, path, 2)

	s2, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got, err := s2.VerificationCursor(ctx); err != nil || got != 1 {
		t.Errorf("verification cursor after the log lost seq 2 = %d, %v; want 1 (seq 2 is given again)", got, err)
	}
	if got, err := s2.FileVerifications(ctx, "lost"); err != nil || len(got) != 0 {
		t.Errorf("checks of a recording the log lost = %v, %v; want none", got, err)
	}
	if got, err := s2.FileVerifications(ctx, "kept"); err != nil || len(got) != 1 {
		t.Errorf("checks of a kept recording = %v, %v; want its one", got, err)
	}
}

// loseLogRow deletes the log row of seq from the closed store at path, as
// a power loss with the log at synchronous=normal could lose its commit.
func loseLogRow(t *testing.T, path string, seq int64) {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path, Options{BusyTimeout: time.Second}, SyncFull, false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM log WHERE seq = ?`, seq); err != nil {
		t.Fatal(err)
	}
}
