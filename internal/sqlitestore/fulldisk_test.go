//go:build linux

package sqlitestore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/rc"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestFullDiskProjection keeps the log on a roomy disk and the ledger file
// (through a symlink) on a 2 MiB tmpfs that it fills: callbacks are still
// stored, but the projection fails, and Ping must say so (with the cause)
// until the projector, retrying by itself, succeeds once space is freed.
// Each failure is counted; the log says it once, not once per retry.
func TestFullDiskProjection(t *testing.T) {
	small := t.TempDir()
	if err := syscall.Mount("tmpfs", small, "tmpfs", 0, "size=2097152"); err != nil {
		t.Skipf("needs root (CAP_SYS_ADMIN) to mount a size-limited tmpfs for a real full disk; CI runs as root: mount: %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(small, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	path := filepath.Join(t.TempDir(), "recledger.db")
	if err := os.Symlink(filepath.Join(small, "ledger.db"), sqlitestore.LedgerPath(path)); err != nil {
		t.Fatal(err)
	}
	var (
		logs     lockedBuffer
		failures atomic.Int64
	)
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{
		Logger:              slog.New(slog.NewTextHandler(&logs, nil)),
		OnProjectionFailure: func(error) { failures.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := os.Stat(filepath.Join(small, "ledger.db-wal")); err != nil {
		t.Fatalf("the ledger's WAL is not on the small disk: %v", err)
	}

	filler := filepath.Join(small, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()

	ctx := context.Background()
	var ids []string
	for i := range 300 {
		id := fmt.Sprintf("rec-full-%03d-%s", i, strings.Repeat("x", 200))
		cb := ledgertest.Callback(t, id, rc.TypeStart, 0, "", 200)
		if _, err := s.Append(ctx, ledger.Incoming{Callback: cb, ReceivedAt: time.Now()}); err != nil {
			t.Fatalf("append %d with the log's disk free: %v", i, err)
		}
		ids = append(ids, id)
	}
	// The projector runs within 200 ms of an append, and retries every
	// second; 30 s only bounds a test that never sees it fail.
	deadline := time.Now().Add(30 * time.Second)
	for failures.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("the projection did not fail 3 times on a full disk in 30 s (failed %d)", failures.Load())
		}
		time.Sleep(100 * time.Millisecond)
	}
	err = s.Ping(ctx)
	if err == nil || !strings.Contains(err.Error(), "projection failed") || !strings.Contains(err.Error(), "full") {
		t.Errorf("Ping with the ledger's disk full: %v; want the projection's failure", err)
	}
	if n := strings.Count(logs.String(), "projection failed"); n != 1 {
		t.Errorf("%d projection failures logged %d times; want once:\n%s", failures.Load(), n, logs.String())
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("Ping still fails after space was freed: %v", s.Ping(ctx))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "projection recovered") {
		t.Errorf("the recovery is not logged:\n%s", logs.String())
	}
	for _, id := range ids {
		if _, err := s.Recording(ctx, id); err != nil {
			t.Fatalf("recording %s after the projection recovered: %v", id[:12], err)
		}
	}
}
