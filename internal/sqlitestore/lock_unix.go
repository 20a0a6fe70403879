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
