//go:build unix

package sqlitestore_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/rc"
)

// TestRestoreAsRootOwnsLikeTheDir: root restoring (sudo, after systemctl
// stop) into a data directory the service's user owns leaves files that
// user can open: the log, the ledger and the lock are the directory
// owner's, not root's with mode 0600, which would keep the server from
// starting. CI runs as root (internal/skipcheck fails it if it skips).
func TestRestoreAsRootOwnsLikeTheDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to restore into a directory another user owns; CI runs as root")
	}
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "src", "recledger.db")
	s, err := sqlitestore.Open(ctx, src, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, ledger.Incoming{Callback: ledgertest.Callback(t, "kept", rc.TypeStart, 0, "", 200), ReceivedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	const uid, gid = 65532, 65532
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, uid, gid); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(data, "recledger.db")
	if _, err := sqlitestore.Restore(ctx, src, target, false); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{target, sqlitestore.LedgerPath(target), target + ".lock"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != uid || st.Gid != gid {
			t.Errorf("%s is %d:%d after the restore, want the directory owner's %d:%d", filepath.Base(p), st.Uid, st.Gid, uid, gid)
		}
	}
}
