//go:build unix

package sqlitestore

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// ErrInUse is returned by Open when another process has the store open.
var ErrInUse = errors.New("the store is in use by another process (is recledger serve running?)")

// lockFile takes an exclusive lock on path+".lock" for the life of the
// store. The store's writer, projector and caches assume they are alone:
// a second process writing (a replay beside a running server, two servers
// on one file) would undo their work.
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock store: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", path, ErrInUse)
		}
		return nil, fmt.Errorf("lock store: %w", err)
	}
	return f, nil
}

// ownLikeDir gives files to the owner of dir when run as root: a restore
// run by root (with sudo, after systemctl stop) into a directory the
// service's user owns must leave files that user can open, not root's
// with mode 0600. Run as anyone else, the files are already the caller's.
func ownLikeDir(dir string, files ...string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	for _, f := range files {
		if err := os.Lchown(f, int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("give %s to the owner of %s: %w", f, dir, err)
		}
	}
	return nil
}
