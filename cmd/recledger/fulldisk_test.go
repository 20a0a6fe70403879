//go:build linux

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory and unmounts
// it when the test ends: a real filesystem that really fills up. It skips
// where it cannot mount (not root).
func mountTmpfs(t *testing.T, size int64) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("needs root (CAP_SYS_ADMIN) to mount a size-limited tmpfs for a real full disk; CI runs as root: mount: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillDisk writes a file at path until the filesystem is full but for
// leave bytes, and returns its path.
func fillDisk(t *testing.T, path string, leave int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		t.Fatal(err)
	}
	free := int64(st.Bavail) * st.Bsize
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for n := int64(0); n < free-leave; n += int64(len(chunk)) {
		if _, err := f.Write(chunk[:min(int64(len(chunk)), free-leave-n)]); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return
			}
			t.Fatal(err)
		}
	}
}

// paddedStart is a signed-able start callback with pad bytes in a field RC
// may add later (stored in the log as received).
func paddedStart(id string, pad int) []byte {
	return fmt.Appendf(nil, `{"timestamp":%d,"type":1,"appKey":%q,"recordId":%q,"roomId":"r","sessionId":"s","userId":"u","mode":0,"code":200,"pad":%q}`,
		time.Now().UnixMilli(), testApp, id, strings.Repeat("p", pad))
}

// TestFullDiskSQLite runs the real server with its SQLite files on a 8 MiB
// tmpfs and fills it: callbacks must be answered 503 and /readyz fail with
// the cause while the disk is full, even with the database answering; once
// space is freed /readyz recovers by itself, callbacks are answered 200
// again, and every callback ever answered 200 is in the ledger.
func TestFullDiskSQLite(t *testing.T) {
	mnt := mountTmpfs(t, 8<<20)
	srv := startServer(t, mnt, "--app", testApp+"="+testSecret)
	if code, cause := readyz(t, srv.addr); code != 200 {
		t.Fatalf("/readyz before the disk filled: %d %s", code, cause)
	}
	filler := filepath.Join(mnt, "filler")
	fillDisk(t, filler, 1<<20)

	var acked []string
	post := func(id string) int {
		t.Helper()
		status, err := postSigned(srv.addr, paddedStart(id, 8<<10))
		if err != nil {
			t.Fatalf("post %s: %v", id, err)
		}
		if status == 200 {
			acked = append(acked, id)
		}
		return status
	}
	// 1 MiB left and 8 KiB a callback: the disk is full within a few
	// hundred callbacks (the bound only stops a test that never fills it).
	full := false
	for i := 0; i < 2000 && !full; i++ {
		switch status := post(fmt.Sprintf("full-%d", i)); status {
		case 200:
		case 503:
			full = true
		default:
			t.Fatalf("callback %d answered %d while the disk filled", i, status)
		}
	}
	if !full {
		t.Fatalf("no 503 after 2000 callbacks of 8 KiB on a disk with 1 MiB free")
	}
	code, cause := readyz(t, srv.addr)
	t.Logf("after a failed commit: %d %s", code, cause)
	if code != 503 || !strings.Contains(cause, "full") {
		t.Errorf("/readyz on a full disk right after a failed commit: %d %q; want 503 and the cause", code, cause)
	}
	// Idle: /readyz writes a probe of its own, which fails too, unless
	// SQLite finds room for it in free pages or the WAL; the projection
	// (a bigger write) still fails then, and says so.
	time.Sleep(1500 * time.Millisecond)
	code, cause = readyz(t, srv.addr)
	t.Logf("idle: %d %s", code, cause)
	if code != 503 || !strings.Contains(cause, "database or disk is full") {
		t.Errorf("/readyz on a full disk when idle: %d %q; want 503 and the cause", code, cause)
	}
	if m := metricsText(t, srv.addr); !strings.Contains(m, "recledger_store_errors_total") ||
		strings.Contains(m, "recledger_store_errors_total 0\n") || !strings.Contains(m, "recledger_projection_failures_total") {
		t.Errorf("/metrics does not count the failures:\n%s", grepLines(m, "recledger_store_errors_total", "recledger_projection_failures_total"))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, cause := readyz(t, srv.addr)
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %q 30 s after space was freed\n%s", code, cause, srv.logs)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i := range 20 {
		if status := post(fmt.Sprintf("after-%d", i)); status != 200 {
			t.Fatalf("callback %d after space was freed answered %d", i, status)
		}
	}
	for _, id := range acked {
		resp, err := testClient.Get("http://" + srv.addr + "/v1/recordings/" + id)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("recording %s was answered 200 but GET answers %d", id, resp.StatusCode)
		}
	}
	t.Logf("%d callbacks acknowledged, all in the ledger; failures counted:\n%s", len(acked),
		grepLines(metricsText(t, srv.addr), "recledger_store_errors_total", "recledger_projection_failures_total"))
	srv.stop(t)
}
