package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/recledger/recledger/internal/storesql"
)

// The verifier's replay memory is a storesql.ReplayMemory. What makes it
// survive a restart is the sig column of the log: a callback's row carries
// the signature that admitted it (storesql.Signature.Compact), and Open
// reads the rows still inside the window back. So the acknowledged commit
// writes no second table: the signature rides in the row it commits anyway.

// loadSignatures remembers the signatures of the rows logged within
// window: read newest first, it stops at the first row older than the
// window and a minute (the server's clock may have stepped back a little).
func loadSignatures(ctx context.Context, db *sql.DB, m *storesql.ReplayMemory, now time.Time, window time.Duration) error {
	oldest := now.Add(-window - time.Minute).UnixMilli()
	rows, err := db.QueryContext(ctx, `SELECT received_at, sig FROM log ORDER BY seq DESC`)
	if err != nil {
		return fmt.Errorf("load replay memory: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			at  int64
			sig []byte
		)
		if err := rows.Scan(&at, &sig); err != nil {
			return fmt.Errorf("load replay memory: %w", err)
		}
		if at < oldest {
			break
		}
		m.Restore(sig, time.UnixMilli(at).Add(window))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load replay memory: %w", err)
	}
	return nil
}
