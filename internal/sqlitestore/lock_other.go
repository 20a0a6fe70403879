//go:build !unix

package sqlitestore

import (
	"errors"
	"os"
)

// ErrInUse is returned by Open when another process has the store open.
var ErrInUse = errors.New("the store is in use by another process (is recledger serve running?)")

// lockFile is a no-op where flock is unavailable: run one process per store.
func lockFile(string) (*os.File, error) { return nil, nil }

// ownLikeDir is a no-op where files have no Unix owner.
func ownLikeDir(string, ...string) error { return nil }
