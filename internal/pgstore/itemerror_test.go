package pgstore

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestItemError: only errors a value can cause make the group commit
// bisect; a database that is down, full or slow fails the batch once.
func TestItemError(t *testing.T) {
	for _, tt := range []struct {
		err  error
		item bool
	}{
		{&pgconn.PgError{Code: "22021"}, true}, // invalid byte sequence (a NUL in a text)
		{&pgconn.PgError{Code: "23514"}, true}, // check violation
		{&pgconn.PgError{Code: "54000"}, true}, // program limit (index row too large)
		{fmt.Errorf("append callbacks: %w", &pgconn.PgError{Code: "22P05"}), true},
		{&pgconn.PgError{Code: "53100"}, false}, // disk full
		{&pgconn.PgError{Code: "57014"}, false}, // query canceled (a deadline)
		{&pgconn.PgError{Code: "40P01"}, false}, // deadlock: retry it whole
		{&pgconn.PgError{Code: "08006"}, false}, // connection failure
		{context.DeadlineExceeded, false},
		{errors.New("dial tcp 127.0.0.1:5432: connect: connection refused"), false},
	} {
		if got := itemError(tt.err); got != tt.item {
			t.Errorf("itemError(%v) = %v, want %v", tt.err, got, tt.item)
		}
	}
}
