package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/simulator"
	"github.com/recledger/recledger/rc"
)

const seedRecordID = "8329208b99410743dcfeb80548e2c0ec" // RC's seed examples' recordId

// TestOpsBackupAndRestoreSQLite follows the guide's SQLite backup: the
// backup script beside a running server (pruning old backups), its cron
// line, and the restore into a new store that a server then serves.
func TestOpsBackupAndRestoreSQLite(t *testing.T) {
	dir := t.TempDir()
	live := "sqlite:" + filepath.Join(dir, "data", "recledger.db")
	srv := startServer(t, dir, "--app", testApp+"="+testSecret)
	srv.postSeeds(t, "type1-start.json", "type3-end.json", "type4-upload.json")

	backups := filepath.Join(dir, "backups")
	if err := os.MkdirAll(backups, 0o750); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(backups, "recledger-20200101T000000Z.db")
	os.WriteFile(old, []byte("old"), 0o600)
	os.WriteFile(strings.TrimSuffix(old, ".db")+".ledger.db", []byte("old"), 0o600)
	longAgo := time.Now().Add(-30 * 24 * time.Hour)
	os.Chtimes(old, longAgo, longAgo)
	os.Chtimes(strings.TrimSuffix(old, ".db")+".ledger.db", longAgo, longAgo)
	runOpsScript(t, "backup-sqlite", dir, 2*time.Minute, "RECLEDGER_DB="+live, "BACKUP_DIR="+backups)
	made, _ := filepath.Glob(filepath.Join(backups, "recledger-*.db"))
	if len(made) != 2 || !strings.HasSuffix(made[0], ".ledger.db") && !strings.HasSuffix(made[1], ".ledger.db") {
		t.Fatalf("the backup script left %v; want one backup's two files, the old one pruned", made)
	}
	backup := made[0]
	if strings.HasSuffix(backup, ".ledger.db") {
		backup = made[1]
	}

	// The cron line runs the script the backup block says it is, with the
	// two variables the script and recledger read.
	script := opsBlock(t, "backup-sqlite")
	cron := opsBlock(t, "backup-cron")
	var line string
	for l := range strings.SplitSeq(cron, "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			line = l
		}
	}
	f := strings.Fields(line)
	if len(f) < 9 || f[5] != "recledger" || !strings.HasPrefix(f[6], "RECLEDGER_DB=sqlite:") || !strings.HasPrefix(f[7], "BACKUP_DIR=/") ||
		!strings.Contains(script, "# "+f[8]+"\n") {
		t.Errorf("the cron line %q: want 5 time fields, the user, RECLEDGER_DB=, BACKUP_DIR= and the script the backup block names", line)
	}
	// The script's mkdir -p runs as the cron line's user, who cannot
	// create a directory in root's /var/backups: the guide must have root
	// create it for that user.
	if len(f) >= 9 {
		dir := strings.TrimPrefix(f[7], "BACKUP_DIR=")
		guide, err := os.ReadFile(opsGuide)
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`install -d [^\n]*-o ` + regexp.QuoteMeta(f[5]) + `\b[^\n]*` + regexp.QuoteMeta(dir)).Match(guide) {
			t.Errorf("the guide does not create the cron line's BACKUP_DIR %s for its user %s (install -d -o %s ... %s)", dir, f[5], f[5], dir)
		}
	}

	if _, stderr, code := runBinary(t, "", "backup", "--db", "postgres://postgres@127.0.0.1:5432/test", "--to", filepath.Join(dir, "pg.db")); code != 1 || !strings.Contains(stderr, "pg_dump") {
		t.Errorf("backup of a PostgreSQL store: exit %d, %q; want a pointer to pg_dump", code, stderr)
	}
	srv.stop(t)

	restoredDir := t.TempDir()
	restored := "sqlite:" + filepath.Join(restoredDir, "data", "recledger.db")
	runOpsScript(t, "restore-sqlite", restoredDir, time.Minute, "RECLEDGER_DB="+restored, "BACKUP="+backup)
	srv2 := startServer(t, restoredDir, "--app", testApp+"="+testSecret)
	var rec struct {
		Status string `json:"status"`
		Files  []struct {
			FileURL *string `json:"fileUrl"`
		} `json:"files"`
	}
	getAPI(t, srv2.addr, "/v1/recordings/"+seedRecordID, &rec)
	if rec.Status != "complete" || len(rec.Files) != 1 || rec.Files[0].FileURL == nil {
		t.Errorf("the restored recording: %+v", rec)
	}
}

// TestOpsPostgresBackup follows the guide's pg_dump and pg_restore blocks
// against the machine's PostgreSQL: a server writes into a fresh database,
// it is dumped, restored into another fresh database, and a server on that
// one holds the callbacks.
func TestOpsPostgresBackup(t *testing.T) {
	// The blocks are taken before the test may skip (see TestMain); they
	// are run by runOpsScript below.
	opsBlock(t, "pg-backup")
	opsBlock(t, "pg-restore")
	base := os.Getenv("RECLEDGER_TEST_POSTGRES_URL")
	if base == "" {
		t.Skip("set RECLEDGER_TEST_POSTGRES_URL (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run the PostgreSQL tests")
	}
	for _, tool := range []string{"psql", "pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (Debian: postgresql-client): %v", tool, err)
		}
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	database := func(name string) string {
		v := *u
		v.Path = "/" + name
		return v.String()
	}
	suffix := fmt.Sprintf("%d_%d", os.Getpid(), time.Now().UnixNano())
	source, target := "rl_backup_src_"+suffix, "rl_backup_dst_"+suffix
	for _, name := range []string{source, target} {
		if out, err := exec.Command("psql", base, "-c", "CREATE DATABASE "+name).CombinedOutput(); err != nil {
			t.Fatalf("create database: %v\n%s", err, out)
		}
		t.Cleanup(func() { exec.Command("psql", base, "-c", "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)").Run() })
	}
	dir := t.TempDir()
	srv := startServer(t, dir, "--db", database(source), "--app", testApp+"="+testSecret)
	srv.postSeeds(t, "type1-start.json", "type3-end.json", "type4-upload.json")

	backups := filepath.Join(dir, "backups")
	runOpsScript(t, "pg-backup", dir, 2*time.Minute, "RECLEDGER_DB="+database(source), "BACKUP_DIR="+backups)
	dumps, _ := filepath.Glob(filepath.Join(backups, "recledger-*.dump"))
	if len(dumps) != 1 {
		t.Fatalf("pg-backup left %v; want one dump", dumps)
	}
	srv.stop(t)
	runOpsScript(t, "pg-restore", dir, 2*time.Minute, "RESTORE_URL="+database(target), "DUMP="+dumps[0])
	srv2 := startServer(t, t.TempDir(), "--db", database(target), "--app", testApp+"="+testSecret)
	var rec struct {
		Status string `json:"status"`
	}
	getAPI(t, srv2.addr, "/v1/recordings/"+seedRecordID, &rec)
	if rec.Status != "complete" {
		t.Errorf("the restored recording's status: %q, want complete", rec.Status)
	}
	srv2.stop(t)
}

// litestreamBinary returns Litestream's path, or skips: CI installs it from
// the module proxy and sets RECLEDGER_TEST_LITESTREAM.
func litestreamBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("RECLEDGER_TEST_LITESTREAM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("litestream"); err == nil {
		return p
	}
	t.Skip("set RECLEDGER_TEST_LITESTREAM to a litestream binary (go install github.com/benbjohnson/litestream/cmd/litestream@v0.5.18) to run the Litestream test")
	return ""
}

// TestOpsLitestream follows the guide's Litestream section: the server runs
// with checkpoints left to Litestream, Litestream replicates both files
// (its configuration as the guide gives it) to a directory while a
// simulation is delivered, stops, and the files restored from the replica
// into a new data directory serve every acknowledged recording as it was.
func TestOpsLitestream(t *testing.T) {
	// The blocks are taken before the test may skip: a run without
	// Litestream skips this test, it does not leave the guide unfollowed
	// (TestMain would fail go test ./... on a machine without it).
	configBlock, serveBlock, replicateBlock := opsBlock(t, "litestream-config"), opsBlock(t, "litestream-serve"), opsBlock(t, "litestream-replicate")
	opsBlock(t, "litestream-restore") // run by runOpsScript below
	litestream := litestreamBinary(t)
	dir, restoredDir := t.TempDir(), t.TempDir()
	config := filepath.Join(dir, "litestream.yml")
	if err := os.WriteFile(config, []byte(configBlock), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"LITESTREAM_CONFIG=" + config, "LITESTREAM_REPLICA=file://" + filepath.Join(dir, "replica")}

	words := strings.Fields(serveBlock)
	if len(words) < 2 || words[0] != "recledger" || words[1] != "serve" {
		t.Fatalf("litestream-serve is not a recledger serve command: %q", words)
	}
	srv := startServer(t, dir, append(words[2:], "--app", testApp+"="+testSecret)...)

	replicate := exec.Command("bash", "-euo", "pipefail", "-c", replicateBlock)
	replicate.Env = append(os.Environ(), env...)
	replicate.Env = append(replicate.Env, "RECLEDGER_DATA="+filepath.Join(dir, "data"),
		"PATH="+filepath.Dir(litestream)+string(os.PathListSeparator)+os.Getenv("PATH"))
	replicate.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	logs := &syncBuffer{}
	replicate.Stdout, replicate.Stderr = logs, logs
	if err := replicate.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() { err := replicate.Wait(); close(exited); done <- err }()
	t.Cleanup(func() {
		// Wait's goroutine owns ProcessState; exited says it has returned.
		select {
		case <-exited:
		default:
			syscall.Kill(-replicate.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})

	// Litestream snapshots each file first; what follows goes in its WAL
	// replication.
	for _, f := range []string{"log", "ledger"} {
		waitUntil(t, func() bool {
			snaps, _ := filepath.Glob(filepath.Join(dir, "replica", f, "ltx", "*", "*.ltx"))
			return len(snaps) > 0
		})
	}
	ctx := context.Background()
	recs := simulator.Generate(simulator.Options{AppKey: testApp, Recordings: 40, Seed: 16, End: seededEnd,
		UploadFailures: 0.2, NeverUploaded: 0.05, FailedRecordings: 0.05})
	d := &simulator.Deliverer{URL: "http://" + srv.addr + "/v1/callbacks/recording", Signer: rc.Signer{AppKey: testApp, Secret: testSecret}}
	sim := simulator.Run(ctx, d, testApp, recs, simulator.RunOptions{Concurrency: 8})
	if sim.Failed > 0 {
		t.Fatalf("simulation: %d of %d callbacks failed", sim.Failed, sim.Callbacks)
	}
	// Litestream syncs every second and once more when it stops.
	syscall.Kill(-replicate.Process.Pid, syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("litestream replicate: %v\n%s", err, logs)
		}
	case <-time.After(time.Minute):
		t.Fatalf("litestream did not stop within a minute of SIGTERM\n%s", logs)
	}
	srv.stop(t)
	if strings.Contains(srv.logs.String(), "WAL checkpoint") {
		t.Errorf("the server logged about checkpoints beside Litestream:\n%s", srv.logs)
	}

	restoreEnv := append(env, "RECLEDGER_DATA="+filepath.Join(restoredDir, "data"),
		"PATH="+filepath.Dir(litestream)+string(os.PathListSeparator)+os.Getenv("PATH"))
	os.MkdirAll(filepath.Join(restoredDir, "data"), 0o750)
	runOpsScript(t, "litestream-restore", restoredDir, 2*time.Minute, restoreEnv...)
	srv2 := startServer(t, restoredDir, "--app", testApp+"="+testSecret)
	requireVerified(t, ctx, srv2.addr, recs, sim.Acked, "the server restored from Litestream")
}
