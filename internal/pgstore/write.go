package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storesql"
	"github.com/recledger/recledger/rc"
)

// Remember implements rc.ReplayMemory against the shared table, so a
// signature accepted by one instance is known to all. One statement, on
// connections with synchronous_commit off: the row is flushed to disk, at
// the latest, with the commit of the callback it signed, which is
// synchronous and later in the same WAL.
func (s *Store) Remember(ctx context.Context, key rc.ReplayKey, digest [32]byte, until time.Time) (v rc.ReplayVerdict, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	defer func() {
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			s.dropConnections()
			err = fmt.Errorf("%w (no answer within %s)", err, s.opts.WriteTimeout)
			// A write that failed: readiness says so (a success says
			// nothing: the commits that follow must succeed too).
			s.health.Wrote(err)
		}
	}()
	var (
		inserted bool
		seen     []byte
		expires  *int64
	)
	// The insert's own row is invisible to the subselects (one snapshot):
	// they see the row another request committed before.
	err = s.replay.QueryRow(ctx, `WITH ins AS (
			INSERT INTO replay (app_key, nonce, timestamp, body_digest, until) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (app_key, nonce, timestamp) DO NOTHING RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM ins),
			(SELECT body_digest FROM replay WHERE app_key = $1 AND nonce = $2 AND timestamp = $3),
			(SELECT until FROM replay WHERE app_key = $1 AND nonce = $2 AND timestamp = $3)`,
		key.AppKey, key.Nonce, key.Timestamp, digest[:], until.UnixMilli()).Scan(&inserted, &seen, &expires)
	switch {
	case err != nil:
		return 0, fmt.Errorf("replay memory: %w", err)
	case inserted:
		return rc.ReplayFirst, nil
	case expires == nil:
		// Another request with this signature committed after this
		// statement's snapshot: judge it on a retry (503), not now.
		return 0, errors.New("replay memory: the same signature is being remembered concurrently; retry")
	case *expires <= s.opts.Now().UnixMilli():
		// An expired entry: remember this signing instead, unless another
		// request (or the prune) got there first.
		tag, err := s.replay.Exec(ctx, `UPDATE replay SET body_digest = $4, until = $5
			WHERE app_key = $1 AND nonce = $2 AND timestamp = $3 AND until <= $6`,
			key.AppKey, key.Nonce, key.Timestamp, digest[:], until.UnixMilli(), s.opts.Now().UnixMilli())
		if err != nil {
			return 0, fmt.Errorf("replay memory: %w", err)
		}
		if tag.RowsAffected() != 1 {
			return 0, errors.New("replay memory: the same signature is being remembered concurrently; retry")
		}
		return rc.ReplayFirst, nil
	case string(seen) == string(digest[:]):
		return rc.ReplaySameBody, nil
	}
	return rc.ReplayOtherBody, nil
}

// commitWithin runs commit with a deadline WriteTimeout after the batch's
// oldest op was submitted, so that a callback queued behind a commit that
// hangs is answered (503) within WriteTimeout too. groupcommit runs commits
// without a deadline (it must wait for a commit's true outcome); here the
// deadline makes pgx give up on a silent server: it sets the socket's
// deadline, fails the call and closes that connection.
func (s *Store) commitWithin(ctx context.Context, ops []storesql.Op) ([]ledger.Appended, error) {
	deadline := time.Now().Add(s.opts.WriteTimeout)
	for _, o := range ops {
		if !o.Queued.IsZero() && o.Queued.Add(s.opts.WriteTimeout).Before(deadline) {
			deadline = o.Queued.Add(s.opts.WriteTimeout)
		}
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	results, err := s.commit(ctx, ops)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		s.dropConnections()
		return nil, fmt.Errorf("commit: no answer from the database within %s: %w", s.opts.WriteTimeout, err)
	}
	return results, err
}

// dropConnections closes the pools' idle connections after a call timed
// out: when the network dropped the server silently, they are as dead as
// the one that timed out, and each would cost a caller another timeout
// before the pool found out. Connections in use close when released.
func (s *Store) dropConnections() {
	s.pool.Reset()
	s.replay.Reset()
}

// probeWrite commits a small write (a row inserted and deleted again, on a
// connection with synchronous_commit on), for Ping after a failed commit.
func (s *Store) probeWrite(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO replay (app_key, nonce, timestamp, body_digest, until)
			VALUES ('', 'readiness probe', '', '\x'::bytea, 0) ON CONFLICT DO NOTHING`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM replay WHERE app_key = '' AND nonce = 'readiness probe' AND timestamp = ''`)
		return err
	})
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			s.dropConnections()
		}
		return fmt.Errorf("probe write: %w", err)
	}
	return nil
}

// commit is the group-commit function: one transaction for the batch,
// holding only what RC's 200 promises: the callbacks' bytes in the log
// (one statement for all), plus the batch's rejections and their counts.
// No lock beyond the rows it inserts, no duplicate check, no projection:
// instances append side by side, and the engine projects after the commit.
func (s *Store) commit(ctx context.Context, ops []storesql.Op) (results []ledger.Appended, err error) {
	report := storesql.ReportCommit(s.opts.OnCommit, ops)
	defer func() { report(err) }()
	s.mu.Lock()
	s.commits++
	prune := s.commits%1000 == 1
	s.mu.Unlock()

	// Seq is 0: the feed seq is given when the engine projects the row;
	// Duplicate is false: the engine marks redeliveries in the feed.
	results = make([]ledger.Appended, len(ops))
	var (
		rejected bool
		logged   []engine.Row
		at       []int64
		bodies   [][]byte
	)
	for _, o := range ops {
		if o.In != nil {
			at, bodies = append(at, o.In.ReceivedAt.UnixMilli()), append(bodies, o.Body)
		}
	}
	// One batch, one round trip: pgx sends it as one implicit transaction
	// (all or nothing), committed when the batch's results are in.
	batch := &pgx.Batch{}
	var minutes ledger.MinuteCounter
	for _, o := range ops {
		if o.Rej != nil {
			queueRejection(batch, o.Rej)
			rejected = true
			minutes.Rejected(o.Rej.At)
		}
	}
	if len(bodies) > 0 {
		batch.Queue(`INSERT INTO log (received_at, body) SELECT * FROM unnest($1::bigint[], $2::bytea[])
			RETURNING tx::text, id`, at, bodies).Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var (
					txt string
					id  int64
				)
				if err := rows.Scan(&txt, &id); err != nil {
					return fmt.Errorf("append callbacks: %w", err)
				}
				pos, err := logPos(txt, id)
				if err != nil {
					return fmt.Errorf("append callbacks: %w", err)
				}
				logged = append(logged, engine.Row{Log: pos})
			}
			return nil
		})
	}
	queueMinutes(batch, minutes.Minutes())
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	// Reads on this instance now wait for these rows (engine.Fresh); the
	// projecting instance, when it is another, is told they are there.
	s.eng.Committed(logged, nil)
	if len(logged) > 0 {
		s.signals.appended(logged)
	}
	// Housekeeping runs after the commit, in statements of its own: inside
	// the batch it would hold locks that other instances' requests wait on.
	if rejected {
		if err := s.capQuarantine(ctx); err != nil {
			s.opts.Logger.Warn("cap quarantine", "err", err)
		}
	}
	if prune {
		if _, err := s.replay.Exec(ctx, `DELETE FROM replay WHERE until <= $1`, s.opts.Now().UnixMilli()); err != nil {
			s.opts.Logger.Warn("prune replay memory", "err", err)
		}
		if _, err := s.pool.Exec(ctx, `DELETE FROM activity WHERE minute < $1`, s.opts.Now().Add(-ledger.ActivityKept).UnixMilli()); err != nil {
			s.opts.Logger.Warn("prune activity", "err", err)
		}
	}
	return results, nil
}

// logPos reads a log position from its transaction id as text (pgx has
// no xid8 codec) and row id.
func logPos(tx string, id int64) (engine.LogPos, error) {
	n, err := strconv.ParseUint(tx, 10, 64)
	if err != nil {
		return engine.LogPos{}, fmt.Errorf("log position: transaction id %q: %w", tx, err)
	}
	return engine.LogPos{Tx: n, ID: id}, nil
}

// queueMinutes adds per-minute counts (a batch's rejections, or a
// projection's callbacks) to b, to run last in its transaction: a minute's
// row is shared by every instance, so its lock is held for as short a time
// as the commit allows.
func queueMinutes(b *pgx.Batch, ms []ledger.Minute) {
	if len(ms) == 0 {
		return
	}
	starts, callbacks, dups, rejected := make([]int64, len(ms)), make([]int64, len(ms)), make([]int64, len(ms)), make([]int64, len(ms))
	for i, m := range ms {
		starts[i], callbacks[i], dups[i], rejected[i] = m.Start, m.Callbacks, m.Duplicates, m.Rejected
	}
	b.Queue(`INSERT INTO activity AS a (minute, callbacks, duplicates, rejected)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])
		ON CONFLICT (minute) DO UPDATE SET callbacks = a.callbacks + excluded.callbacks,
			duplicates = a.duplicates + excluded.duplicates, rejected = a.rejected + excluded.rejected`,
		starts, callbacks, dups, rejected)
}

func queueRejection(b *pgx.Batch, r *ledger.StoredRejection) {
	b.Queue(`INSERT INTO quarantine (at, status, reason, message, remote, method, path, header, body, body_size, stored_size)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, r.At, r.Status, r.Reason, r.Message, r.Remote, r.Method, r.Path,
		r.HeaderJSON, r.Body, r.BodySize, r.Size)
}

// capQuarantine keeps the newest rejections within the caps, counting each
// row's stored size (ledger.PrepareRejection), headers and all. Deleted
// rows' space is reused by later rows once autovacuum has passed. Two
// instances capping at once may delete the same rows; a lost race is
// harmless (the next batch caps again), so errors are only logged.
func (s *Store) capQuarantine(ctx context.Context) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM quarantine WHERE id IN (
		SELECT id FROM (SELECT id, row_number() OVER w AS n, SUM(stored_size) OVER w AS total FROM quarantine
			WINDOW w AS (ORDER BY id DESC)) t
		WHERE n > $1 OR total > $2)`, s.opts.QuarantineMaxCount, s.opts.QuarantineMaxBytes)
	if err != nil {
		return fmt.Errorf("cap quarantine: %w", err)
	}
	return nil
}
