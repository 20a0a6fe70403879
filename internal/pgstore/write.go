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

// Remember implements rc.ReplayMemory from this instance's memory, with no
// database call: a signature it has seen, unexpired, is judged at once;
// any other is ReplayFirst here, and the commit of its callback checks it
// against the signatures the other instances logged (see commit).
func (s *Store) Remember(ctx context.Context, key rc.ReplayKey, digest [32]byte, until time.Time) (rc.ReplayVerdict, error) {
	return s.sigs.Remember(ctx, key, digest, until)
}

// loadSignatures fills the memory with the unexpired signatures of the
// shared table, so that a restarted instance knows the signatures it (and
// the others) logged before.
func (s *Store) loadSignatures(ctx context.Context) error {
	rows, err := s.pool.Query(ctx, `SELECT app_key, nonce, timestamp, body_digest, until FROM replay WHERE until > $1`,
		s.opts.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("load replay memory: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			sig    storesql.Signature
			digest []byte
			until  int64
		)
		if err := rows.Scan(&sig.Key.AppKey, &sig.Key.Nonce, &sig.Key.Timestamp, &digest, &until); err != nil {
			return fmt.Errorf("load replay memory: %w", err)
		}
		copy(sig.Digest[:], digest)
		s.sigs.Restore(sig.Compact(), time.UnixMilli(until))
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load replay memory: %w", err)
	}
	return nil
}

// commitWithin runs commit with a deadline WriteTimeout after the batch's
// oldest op was submitted, so that a callback queued behind a commit that
// hangs is answered (503) within WriteTimeout too. groupcommit runs commits
// without a deadline (it must wait for a commit's true outcome); here the
// deadline makes pgx give up on a silent server: it sets the socket's
// deadline, fails the call and closes that connection.
func (s *Store) commitWithin(ctx context.Context, ops []storesql.Op) ([]storesql.Result, error) {
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

// dropConnections closes the pool's idle connections after a call timed
// out: when the network dropped the server silently, they are as dead as
// the one that timed out, and each would cost a caller another timeout
// before the pool found out. Connections in use close when released.
func (s *Store) dropConnections() {
	s.pool.Reset()
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
// (one statement for all) with the signatures that admitted them in the
// shared replay table (the same statement), plus the batch's rejections
// and their counts. No lock beyond the rows it inserts, no duplicate
// check, no projection: instances append side by side, and the engine
// projects after the commit.
func (s *Store) commit(ctx context.Context, ops []storesql.Op) (results []storesql.Result, err error) {
	report := storesql.ReportCommit(s.opts.OnCommit, ops)
	defer func() { report(results, err) }()
	s.mu.Lock()
	s.commits++
	prune := s.commits%1000 == 1
	s.mu.Unlock()

	// Seq is 0: the feed seq is given when the engine projects the row;
	// Duplicate is false: the engine marks redeliveries in the feed.
	results = make([]storesql.Result, len(ops))
	var (
		rejected bool
		logged   []engine.Row
		cbs      callbackColumns
		refused  []refusal
	)
	for i, o := range ops {
		if o.In != nil {
			cbs.add(i, o)
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
	scan := func(rows pgx.Rows) error {
		for rows.Next() {
			var (
				txt            *string
				id, n, untilAt *int64
				digest         []byte
			)
			if err := rows.Scan(&txt, &id, &n, &digest, &untilAt); err != nil {
				return fmt.Errorf("append callbacks: %w", err)
			}
			if n != nil { // refused: its signature is remembered with another body
				r := refusal{op: cbs.ops[*n-1], digest: digest}
				if untilAt != nil {
					r.until = *untilAt
				}
				refused = append(refused, r)
				continue
			}
			pos, err := logPos(*txt, *id)
			if err != nil {
				return fmt.Errorf("append callbacks: %w", err)
			}
			logged = append(logged, engine.Row{Log: pos})
		}
		return nil
	}
	switch {
	case cbs.signed:
		batch.Queue(appendSigned, cbs.at, cbs.bodies, cbs.isSigned, cbs.appKeys, cbs.nonces, cbs.timestamps,
			cbs.digests, cbs.until, s.opts.Now().UnixMilli()).Query(scan)
	case len(cbs.ops) > 0:
		batch.Queue(`INSERT INTO log (received_at, body) SELECT * FROM unnest($1::bigint[], $2::bytea[])
			RETURNING tx::text, id, NULL::bigint, NULL::bytea, NULL::bigint`, cbs.at, cbs.bodies).Query(scan)
	}
	queueMinutes(batch, minutes.Minutes())
	if err := s.pool.SendBatch(ctx, batch).Close(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	for _, r := range refused {
		sig := *ops[r.op].Sig
		if r.digest == nil { // not judged (cannot happen: every signature is inserted or updated)
			results[r.op].Err = errors.New("replay memory: the signature was not judged; retry")
			continue
		}
		results[r.op].Err = &rc.SignatureError{Err: rc.ErrReplayed, Detail: "remembered by another instance"}
		// Judge the next use of this signature here as the table did.
		copy(sig.Digest[:], r.digest)
		s.sigs.Restore(sig.Compact(), time.UnixMilli(r.until))
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
		if _, err := s.pool.Exec(ctx, `DELETE FROM replay WHERE until <= $1`, s.opts.Now().UnixMilli()); err != nil {
			s.opts.Logger.Warn("prune replay memory", "err", err)
		}
		if _, err := s.pool.Exec(ctx, `DELETE FROM activity WHERE minute < $1`, s.opts.Now().Add(-ledger.ActivityKept).UnixMilli()); err != nil {
			s.opts.Logger.Warn("prune activity", "err", err)
		}
	}
	return results, nil
}

// appendSigned appends a batch's callbacks ($1, $2) with the signatures
// that admitted them ($3 tells which are signed; $4..$8 the signatures) in
// one statement, the cross-instance check of the replay memory included.
// Each signature goes into the shared table, or, when it is there already,
// locks its row: unexpired (until > $9), the row keeps the body it was
// first logged with; expired, this signing takes it over. The RETURNING of
// that insert-or-update gives the row's latest version even when another
// instance committed it after this statement's snapshot (a plain read
// would miss it), and it waits for one not yet committed. A callback is
// logged when unsigned or when its signature's row names its body (its
// first delivery, or a redelivery of the same request); one whose
// signature is remembered with another body is not, and comes back with
// its ordinal, the body digest and until of the remembered one. The
// signatures are taken in key order, so that two instances' batches lock
// shared rows in the same order.
const appendSigned = `WITH input AS (
		SELECT * FROM unnest($1::bigint[], $2::bytea[], $3::bool[], $4::text[], $5::text[], $6::text[], $7::bytea[], $8::bigint[])
			WITH ORDINALITY AS i(received_at, body, signed, app_key, nonce, ts, digest, until, n)
	), sigs AS (
		INSERT INTO replay AS r (app_key, nonce, timestamp, body_digest, until)
		SELECT DISTINCT ON (app_key, nonce, ts) app_key, nonce, ts, digest, until FROM input
			WHERE signed ORDER BY app_key, nonce, ts, n
		ON CONFLICT (app_key, nonce, timestamp) DO UPDATE
			SET body_digest = CASE WHEN r.until <= $9 THEN excluded.body_digest ELSE r.body_digest END,
				until = CASE WHEN r.until <= $9 THEN excluded.until ELSE r.until END
		RETURNING app_key, nonce, timestamp, body_digest, until
	), verdict AS (
		SELECT i.n, i.received_at, i.body, s.body_digest AS remembered, s.until AS remembered_until,
			COALESCE(NOT i.signed OR s.body_digest = i.digest, false) AS ok
		FROM input i LEFT JOIN sigs s ON i.signed AND s.app_key = i.app_key AND s.nonce = i.nonce AND s.timestamp = i.ts
	), logged AS (
		INSERT INTO log (received_at, body) SELECT received_at, body FROM verdict WHERE ok ORDER BY n
		RETURNING tx::text, id
	)
	SELECT tx, id, NULL::bigint, NULL::bytea, NULL::bigint FROM logged
	UNION ALL SELECT NULL, NULL, n, remembered, remembered_until FROM verdict WHERE NOT ok`

// callbackColumns are a batch's callbacks as appendSigned's arrays.
type callbackColumns struct {
	ops                         []int // each callback's index in the batch
	at                          []int64
	bodies                      [][]byte
	signed                      bool // some callback is
	isSigned                    []bool
	appKeys, nonces, timestamps []string
	digests                     [][]byte
	until                       []int64
}

func (c *callbackColumns) add(i int, o storesql.Op) {
	c.ops = append(c.ops, i)
	c.at, c.bodies = append(c.at, o.In.ReceivedAt.UnixMilli()), append(c.bodies, o.Body)
	var (
		key    rc.ReplayKey
		digest []byte
		until  int64
	)
	if o.Sig != nil {
		c.signed = true
		key, digest, until = o.Sig.Key, o.Sig.Digest[:], o.Sig.Until.UnixMilli()
	}
	c.isSigned = append(c.isSigned, o.Sig != nil)
	c.appKeys, c.nonces, c.timestamps = append(c.appKeys, key.AppKey), append(c.nonces, key.Nonce), append(c.timestamps, key.Timestamp)
	c.digests, c.until = append(c.digests, digest), append(c.until, until)
}

// refusal is a callback appendSigned did not log: its signature is
// remembered, until then, with the body whose SHA-256 is digest.
type refusal struct {
	op     int
	digest []byte
	until  int64
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
	b.Queue(`INSERT INTO quarantine (at, status, reason, app_key, message, remote, method, path, header, body, body_size, stored_size)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, r.At, r.Status, r.Reason, r.AppKey, r.Message, r.Remote, r.Method, r.Path,
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
