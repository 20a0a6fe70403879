package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

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

// commit is the group-commit function: one transaction for the batch, in
// a handful of round trips whatever its size (each statement takes arrays).
func (s *Store) commit(ctx context.Context, ops []storesql.Op) (results []ledger.Appended, err error) {
	report := storesql.ReportCommit(s.opts.OnCommit, ops)
	defer func() { report(err) }()
	s.mu.Lock()
	s.commits++
	prune := s.commits%1000 == 1
	s.mu.Unlock()

	results = make([]ledger.Appended, len(ops))
	dup := make([]bool, len(ops))
	rejected := false
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			incoming []int // indexes of callbacks in ops
			minutes  ledger.MinuteCounter
		)
		for i, o := range ops {
			if o.Rej != nil {
				if err := insertRejection(ctx, tx, o.Rej); err != nil {
					return err
				}
				rejected = true
				minutes.Rejected(o.Rej.At)
				continue
			}
			incoming = append(incoming, i)
		}
		if len(incoming) == 0 {
			return countMinutes(ctx, tx, &minutes)
		}
		// The feed seqs first, under a lock held until commit: seqs follow
		// commit order across instances, and a rolled-back batch gives its
		// seqs back. (Batches of several instances take turns here; on one
		// machine the database's CPU is the limit, not this lock.)
		var last int64
		batch := &pgx.Batch{}
		batch.Queue(`SELECT pg_advisory_xact_lock(hashtext('recledger_feed'))`)
		batch.Queue(`UPDATE feed SET last = last + $1 WHERE id = 1 RETURNING last`, len(incoming)).
			QueryRow(func(row pgx.Row) error { return row.Scan(&last) })
		if err := tx.SendBatch(ctx, batch).Close(); err != nil {
			return fmt.Errorf("feed seq: %w", err)
		}
		first := last - int64(len(incoming)) + 1
		for n, i := range incoming {
			results[i].Seq = first + int64(n)
		}
		if err := insertEvents(ctx, tx, ops, incoming, results, dup); err != nil {
			return err
		}
		byRecord := map[string][]*ledger.Incoming{}
		var recordIDs []string
		for _, i := range incoming {
			if dup[i] {
				continue
			}
			in := ops[i].In
			if _, ok := byRecord[in.Callback.RecordID]; !ok {
				recordIDs = append(recordIDs, in.Callback.RecordID)
			}
			byRecord[in.Callback.RecordID] = append(byRecord[in.Callback.RecordID], in)
		}
		if err := project(ctx, tx, recordIDs, byRecord); err != nil {
			return err
		}
		if len(recordIDs) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE recordings r SET first_seq = (SELECT MIN(seq) FROM events e WHERE e.record_id = r.record_id AND NOT e.duplicate)
				WHERE r.record_id = ANY($1) AND r.first_seq IS NULL`, recordIDs); err != nil {
				return fmt.Errorf("first seq: %w", err)
			}
		}
		for _, i := range incoming {
			minutes.Stored(ops[i].In.ReceivedAt.UnixMilli(), dup[i])
		}
		return countMinutes(ctx, tx, &minutes)
	})
	if err != nil {
		return nil, err
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

// countMinutes adds a batch's per-minute counts, last in its transaction:
// the minute's row is shared by every instance, so its lock is held for as
// short a time as the commit allows.
func countMinutes(ctx context.Context, tx pgx.Tx, c *ledger.MinuteCounter) error {
	ms := c.Minutes()
	if len(ms) == 0 {
		return nil
	}
	starts, callbacks, dups, rejected := make([]int64, len(ms)), make([]int64, len(ms)), make([]int64, len(ms)), make([]int64, len(ms))
	for i, m := range ms {
		starts[i], callbacks[i], dups[i], rejected[i] = m.Start, m.Callbacks, m.Duplicates, m.Rejected
	}
	_, err := tx.Exec(ctx, `INSERT INTO activity AS a (minute, callbacks, duplicates, rejected)
		SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[])
		ON CONFLICT (minute) DO UPDATE SET callbacks = a.callbacks + excluded.callbacks,
			duplicates = a.duplicates + excluded.duplicates, rejected = a.rejected + excluded.rejected`,
		starts, callbacks, dups, rejected)
	if err != nil {
		return fmt.Errorf("count activity: %w", err)
	}
	return nil
}

// insertEvents logs the batch's callbacks (ops[idx]) with the seqs in
// results, marking results' duplicates: a callback whose identity is logged
// already (by any instance, or earlier in the batch) is logged marked
// duplicate.
func insertEvents(ctx context.Context, tx pgx.Tx, ops []storesql.Op, idx []int, results []ledger.Appended, dup []bool) error {
	type row struct {
		i   int
		key []byte
	}
	var candidates, dups []row
	first := map[string]bool{}
	for _, i := range idx {
		key := ledger.IdentityHash(ops[i].In.Callback.Key())
		if first[string(key)] {
			dups = append(dups, row{i, key})
			continue
		}
		first[string(key)] = true
		candidates = append(candidates, row{i, key})
	}
	columns := func(rows []row) []any {
		var (
			seqs, at, ts            []int64
			apps, recs, files, errs []string
			types, codes            []int32
			keys, bodies            [][]byte
		)
		for _, r := range rows {
			in := ops[r.i].In
			cb := &in.Callback
			seqs, at, ts = append(seqs, results[r.i].Seq), append(at, in.ReceivedAt.UnixMilli()), append(ts, cb.Timestamp)
			apps, recs, files, errs = append(apps, cb.AppKey), append(recs, cb.RecordID), append(files, cb.Output.FileName), append(errs, ledger.TextColumn(cb.ErrorMessage))
			types, codes = append(types, int32(cb.Type)), append(codes, int32(cb.Code))
			keys, bodies = append(keys, r.key), append(bodies, cb.Raw)
		}
		return []any{seqs, at, apps, recs, types, ts, files, codes, errs, keys, bodies}
	}
	const insert = `INSERT INTO events (seq, received_at, app_key, record_id, type, timestamp, file_name, code, error_message, dedupe_key, body, duplicate)
		SELECT *, %s FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::int[], $6::bigint[], $7::text[],
			$8::int[], $9::text[], $10::bytea[], $11::bytea[])`
	rows, err := tx.Query(ctx, fmt.Sprintf(insert, "false")+` ON CONFLICT (dedupe_key) WHERE NOT duplicate DO NOTHING RETURNING seq`, columns(candidates)...)
	if err != nil {
		return fmt.Errorf("append callbacks: %w", err)
	}
	inserted := map[int64]bool{}
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			rows.Close()
			return fmt.Errorf("append callbacks: %w", err)
		}
		inserted[seq] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("append callbacks: %w", err)
	}
	for _, r := range candidates {
		if !inserted[results[r.i].Seq] {
			dups = append(dups, r) // logged before, by this instance or another
		}
	}
	if len(dups) > 0 {
		if _, err := tx.Exec(ctx, fmt.Sprintf(insert, "true"), columns(dups)...); err != nil {
			return fmt.Errorf("append duplicate callbacks: %w", err)
		}
		for _, r := range dups {
			dup[r.i] = true
		}
	}
	return nil
}

// project applies a batch's callbacks to their recordings under row locks,
// taken in record-id order so that two instances never deadlock.
func project(ctx context.Context, tx pgx.Tx, recordIDs []string, byRecord map[string][]*ledger.Incoming) error {
	if len(recordIDs) == 0 {
		return nil
	}
	sort.Strings(recordIDs)
	// The rows exist before they are locked, so that two instances creating
	// one recording wait for each other instead of failing.
	if _, err := tx.Exec(ctx, `INSERT INTO recordings (record_id, app_key, room_id, session_id, user_id, mode, status, upload_state,
		first_seen_at, last_event_at, state) SELECT id, '', '', '', '', 0, 'recording', 'none', 0, 0, '\x7b7d'::bytea FROM unnest($1::text[]) AS id
		ORDER BY id ON CONFLICT DO NOTHING`, recordIDs); err != nil {
		return fmt.Errorf("project: %w", err)
	}
	rows, err := tx.Query(ctx, `SELECT record_id, state FROM recordings WHERE record_id = ANY($1) ORDER BY record_id FOR UPDATE`, recordIDs)
	if err != nil {
		return fmt.Errorf("project: %w", err)
	}
	states := map[string][]byte{}
	for rows.Next() {
		var (
			id  string
			raw []byte
		)
		if err := rows.Scan(&id, &raw); err != nil {
			rows.Close()
			return fmt.Errorf("project: %w", err)
		}
		states[id] = raw
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("project: %w", err)
	}
	saved := make([]ledger.State, 0, len(recordIDs))
	hads := make([]map[string]int64, 0, len(recordIDs))
	totals := ledger.TotalsChange{}
	for _, id := range recordIDs {
		var st ledger.State
		if err := json.Unmarshal(states[id], &st); err != nil {
			return fmt.Errorf("project %s: %w", id, err)
		}
		before := st // a new recording's placeholder unmarshals to the zero state
		had := make(map[string]int64, len(st.Files))
		for name, f := range st.Files {
			had[name] = f.FirstSeenAt
		}
		for _, in := range byRecord[id] {
			st = ledger.Apply(st, in.Callback, in.ReceivedAt.UnixMilli())
		}
		saved, hads = append(saved, st), append(hads, had)
		totals.Move(before, st)
	}
	if err := saveStates(ctx, tx, saved, hads); err != nil {
		return err
	}
	return addTotals(ctx, tx, totals)
}

// addTotals adds a batch's change of the totals, one statement for all
// cells, in the cells' fixed order (instances lock the rows alike).
func addTotals(ctx context.Context, tx pgx.Tx, c ledger.TotalsChange) error {
	cells := c.Cells()
	if len(cells) == 0 {
		return nil
	}
	statuses, uploads := make([]string, len(cells)), make([]string, len(cells))
	recordings, pending := make([]int64, len(cells)), make([]int64, len(cells))
	for i, k := range cells {
		statuses[i], uploads[i], recordings[i], pending[i] = string(k.Status), string(k.Upload), c[k].Recordings, c[k].PendingFiles
	}
	_, err := tx.Exec(ctx, `INSERT INTO totals AS t (status, upload_state, recordings, pending_files)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
		ON CONFLICT (status, upload_state) DO UPDATE SET recordings = t.recordings + excluded.recordings,
			pending_files = t.pending_files + excluded.pending_files`, statuses, uploads, recordings, pending)
	if err != nil {
		return fmt.Errorf("project totals: %w", err)
	}
	return nil
}

// saveState writes one recording and the file rows that changed.
func saveState(ctx context.Context, tx pgx.Tx, st *ledger.State, had map[string]int64) error {
	return saveStates(ctx, tx, []ledger.State{*st}, []map[string]int64{had})
}

// saveStates writes recordings and the file rows that changed (files new
// since had, or seen earlier than had says), two statements for all.
func saveStates(ctx context.Context, tx pgx.Tx, states []ledger.State, hads []map[string]int64) error {
	n := len(states)
	var (
		ids, apps, rooms, sessions, users, statuses, uploads = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		modes, fileCounts, uploaded                          = make([]int32, n), make([]int32, n), make([]int32, n)
		started, ended                                       = make([]*int64, n), make([]*int64, n)
		firstSeen, lastEvent                                 = make([]int64, n), make([]int64, n)
		raws                                                 = make([][]byte, n)
		fileNames, fileRecs                                  []string
		fileSeen                                             []int64
	)
	for i := range states {
		st := &states[i]
		raw, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("save recording %s: %w", st.RecordID, err)
		}
		ids[i], apps[i], rooms[i], sessions[i], users[i] = st.RecordID, st.AppKey, st.RoomID, st.SessionID, st.UserID
		statuses[i], uploads[i] = string(st.Status()), string(st.BaseUploadState())
		modes[i], fileCounts[i], uploaded[i] = int32(st.Mode), int32(len(st.Files)), int32(st.UploadedCount())
		if st.StartFrom != nil {
			started[i] = &st.StartFrom.Timestamp
		}
		ended[i], firstSeen[i], lastEvent[i], raws[i] = st.EndReceivedAt, st.FirstSeenAt, st.LastEventAt, raw
		names := make([]string, 0, len(st.Files))
		for name := range st.Files {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			f := st.Files[name]
			if seen, ok := hads[i][name]; ok && seen == f.FirstSeenAt {
				continue
			}
			fileNames, fileRecs, fileSeen = append(fileNames, name), append(fileRecs, st.RecordID), append(fileSeen, f.FirstSeenAt)
		}
	}
	_, err := tx.Exec(ctx, `UPDATE recordings r SET app_key = v.app, room_id = v.room, session_id = v.sess, user_id = v.usr, mode = v.mode,
		status = v.status, upload_state = v.up, started_at = v.started, end_received_at = v.ended, first_seen_at = v.first_seen,
		last_event_at = v.last_event, file_count = v.files, uploaded_count = v.uploaded, state = v.state
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int[], $7::text[], $8::text[], $9::bigint[],
			$10::bigint[], $11::bigint[], $12::bigint[], $13::int[], $14::int[], $15::bytea[])
			AS v(id, app, room, sess, usr, mode, status, up, started, ended, first_seen, last_event, files, uploaded, state)
		WHERE r.record_id = v.id`,
		ids, apps, rooms, sessions, users, modes, statuses, uploads, started, ended, firstSeen, lastEvent, fileCounts, uploaded, raws)
	if err != nil {
		return fmt.Errorf("save recordings: %w", err)
	}
	if len(fileNames) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO files (file_name, record_id, first_seen_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])
			ON CONFLICT (file_name, record_id) DO UPDATE SET first_seen_at = excluded.first_seen_at`, fileNames, fileRecs, fileSeen); err != nil {
			return fmt.Errorf("save files: %w", err)
		}
	}
	return nil
}

func insertRejection(ctx context.Context, tx pgx.Tx, r *ledger.StoredRejection) error {
	_, err := tx.Exec(ctx, `INSERT INTO quarantine (at, status, reason, message, remote, method, path, header, body, body_size, stored_size)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`, r.At, r.Status, r.Reason, r.Message, r.Remote, r.Method, r.Path,
		r.HeaderJSON, r.Body, r.BodySize, r.Size)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
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
