package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storesql"
	"github.com/recledger/recledger/rc"
)

type replayRow struct {
	key    rc.ReplayKey
	digest [32]byte
	until  int64
}

type writeStmts struct {
	insertEvent, saveState, saveFile, insertRejection, countMinute, addTotals *sql.Stmt
}

func (s *Store) prepare(ctx context.Context) error {
	var err error
	prepOn := func(db *sql.DB, q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = db.PrepareContext(ctx, q)
		return st
	}
	prep := func(q string) *sql.Stmt { return prepOn(s.writer, q) }
	s.stmts = writeStmts{
		// An original unless the identity is already logged as one. The
		// single writer makes the check and the insert atomic.
		insertEvent: prep(`INSERT INTO events (received_at, app_key, record_id, type, timestamp, file_name, code, error_message, duplicate, dedupe_key, body)
			SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,
				EXISTS (SELECT 1 FROM events WHERE record_id = ?3 AND dedupe_key = ?9 AND duplicate = 0), ?9, ?10
			RETURNING seq, duplicate`),
		saveState: prepOn(s.ledgerWriter, `INSERT INTO recordings (record_id, app_key, room_id, session_id, user_id, mode, status, upload_state,
				started_at, end_received_at, first_seen_at, last_event_at, state, first_seq, file_count, uploaded_count)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (record_id) DO UPDATE SET app_key = excluded.app_key, room_id = excluded.room_id,
				session_id = excluded.session_id, user_id = excluded.user_id, mode = excluded.mode, status = excluded.status,
				upload_state = excluded.upload_state, started_at = excluded.started_at, end_received_at = excluded.end_received_at,
				first_seen_at = excluded.first_seen_at, last_event_at = excluded.last_event_at, state = excluded.state,
				file_count = excluded.file_count, uploaded_count = excluded.uploaded_count`),
		saveFile: prepOn(s.ledgerWriter, `INSERT INTO files (file_name, record_id, first_seen_at) VALUES (?, ?, ?)
			ON CONFLICT (file_name, record_id) DO UPDATE SET first_seen_at = excluded.first_seen_at`),
		insertRejection: prep(`INSERT INTO quarantine (at, status, reason, message, remote, method, path, header, body, body_size, stored_size)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		addTotals: prepOn(s.ledgerWriter, fmt.Sprintf(storesql.AddTotals, "?", "?", "?", "?")),
		countMinute: prep(`INSERT INTO activity (minute, callbacks, duplicates, rejected) VALUES (?, ?, ?, ?)
			ON CONFLICT (minute) DO UPDATE SET callbacks = callbacks + excluded.callbacks,
				duplicates = duplicates + excluded.duplicates, rejected = rejected + excluded.rejected`),
	}
	if err != nil {
		return fmt.Errorf("prepare statements: %w", err)
	}
	return nil
}

// Remember implements rc.ReplayMemory: the memory answers, and a new
// signature is written with the next commit, which is the one of its own
// callback or an earlier one, so no acknowledged callback's signature is
// forgotten by a restart.
func (s *Store) Remember(ctx context.Context, key rc.ReplayKey, digest [32]byte, until time.Time) (rc.ReplayVerdict, error) {
	// One lock over both steps: a redelivery that finds the signature in
	// memory must also find its row queued, or its commit could be
	// acknowledged without it.
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.replay.Remember(ctx, key, digest, until)
	if err != nil || v != rc.ReplayFirst {
		return v, err
	}
	s.pendingReplay = append(s.pendingReplay, replayRow{key: key, digest: digest, until: until.UnixMilli()})
	return v, nil
}

// commit is the group-commit function: one transaction for the batch.
func (s *Store) commit(ctx context.Context, ops []storesql.Op) (results []ledger.Appended, err error) {
	report := storesql.ReportCommit(s.opts.OnCommit, ops)
	defer func() { report(err) }()
	s.mu.Lock()
	pending := s.pendingReplay
	s.pendingReplay = nil
	s.commits++
	prune := s.commits%1000 == 1
	s.mu.Unlock()
	defer func() {
		if err != nil { // written with the next commit instead
			s.mu.Lock()
			s.pendingReplay = append(pending, s.pendingReplay...)
			s.mu.Unlock()
		}
	}()

	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := saveReplay(ctx, tx, pending); err != nil {
		return nil, err
	}
	if prune {
		if _, err := tx.ExecContext(ctx, `DELETE FROM replay WHERE until <= ?`, s.opts.Now().UnixMilli()); err != nil {
			return nil, fmt.Errorf("prune replay memory: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM activity WHERE minute < ?`, s.opts.Now().Add(-ledger.ActivityKept).UnixMilli()); err != nil {
			return nil, fmt.Errorf("prune activity: %w", err)
		}
	}

	results = make([]ledger.Appended, len(ops))
	logged := make([]loggedEvent, 0, len(ops))
	var (
		rejected, rejectedBytes int64
		minutes                 ledger.MinuteCounter
	)
	for i, o := range ops {
		if o.Rej != nil {
			if err := insertRejection(ctx, tx, s.stmts.insertRejection, o.Rej); err != nil {
				return nil, err
			}
			rejected++
			rejectedBytes += o.Rej.Size
			minutes.Rejected(o.Rej.At)
			continue
		}
		a, err := appendEvent(ctx, tx, &s.stmts, o.In)
		if err != nil {
			return nil, err
		}
		results[i] = a
		logged = append(logged, loggedEvent{seq: a.Seq, receivedAt: o.In.ReceivedAt.UnixMilli(), duplicate: a.Duplicate, cb: o.In.Callback})
		minutes.Stored(o.In.ReceivedAt.UnixMilli(), a.Duplicate)
	}
	for _, m := range minutes.Minutes() {
		if _, err := tx.StmtContext(ctx, s.stmts.countMinute).ExecContext(ctx, m.Start, m.Callbacks, m.Duplicates, m.Rejected); err != nil {
			return nil, fmt.Errorf("count activity: %w", err)
		}
	}
	var qCount, qBytes int64
	if rejected > 0 {
		if qCount, qBytes, err = s.capQuarantine(ctx, tx, rejected, rejectedBytes); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	if rejected > 0 {
		s.mu.Lock()
		s.quarantine.count, s.quarantine.bytes = qCount, qBytes
		s.mu.Unlock()
	}
	if len(logged) > 0 {
		s.proj.handOver(logged)
		s.proj.appended(logged[len(logged)-1].seq)
	}
	return results, nil
}

// appendEvent logs one callback, as an original or, when its identity is
// already logged, as a duplicate.
// saveReplay writes remembered signatures, many rows per statement: one
// statement per row cost as much as the callbacks' own inserts.
func saveReplay(ctx context.Context, tx *sql.Tx, rows []replayRow) error {
	const perStatement = 200
	for len(rows) > 0 {
		chunk := rows[:min(len(rows), perStatement)]
		rows = rows[len(chunk):]
		var q strings.Builder
		q.WriteString(`INSERT INTO replay (app_key, nonce, timestamp, body_digest, until) VALUES `)
		args := make([]any, 0, 5*len(chunk))
		for i, r := range chunk {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString("(?, ?, ?, ?, ?)")
			args = append(args, r.key.AppKey, r.key.Nonce, r.key.Timestamp, r.digest[:], r.until)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("save replay memory: %w", err)
		}
	}
	return nil
}

func appendEvent(ctx context.Context, tx *sql.Tx, st *writeStmts, in *ledger.Incoming) (ledger.Appended, error) {
	cb := &in.Callback
	var a ledger.Appended
	err := tx.StmtContext(ctx, st.insertEvent).QueryRowContext(ctx, in.ReceivedAt.UnixMilli(), cb.AppKey, cb.RecordID,
		int64(cb.Type), cb.Timestamp, cb.Output.FileName, cb.Code, ledger.TextColumn(cb.ErrorMessage), ledger.IdentityHash(cb.Key()), cb.Raw).Scan(&a.Seq, &a.Duplicate)
	if err != nil {
		return ledger.Appended{}, fmt.Errorf("append callback %s: %w", cb.RecordID, err)
	}
	return a, nil
}

func insertRejection(ctx context.Context, tx *sql.Tx, st *sql.Stmt, r *ledger.StoredRejection) error {
	_, err := tx.StmtContext(ctx, st).ExecContext(ctx, r.At, r.Status, r.Reason, r.Message, r.Remote, r.Method, r.Path,
		string(r.HeaderJSON), r.Body, r.BodySize, r.Size)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

// vacuumPagesPerCap bounds the pages one cap returns to the file system
// (8 MiB of 4 KiB pages, more than a default cap frees): the work stays bounded inside a commit, and
// pages left over are reused by later inserts or returned by the next cap.
const vacuumPagesPerCap = 2048

// capQuarantine drops the oldest rejections once the caps are passed, a
// tenth below them so that it runs rarely. The byte cap counts each row's
// stored size (body, headers and the rest: ledger.PrepareRejection), and
// the pages the deletion frees go back to the file system
// (auto_vacuum=incremental), a bounded number per batch: disk use follows
// the cap.
func (s *Store) capQuarantine(ctx context.Context, tx *sql.Tx, added, addedBytes int64) (count, bytes int64, err error) {
	s.mu.Lock()
	count, bytes = s.quarantine.count+added, s.quarantine.bytes+addedBytes
	s.mu.Unlock()
	maxCount, maxBytes := int64(s.opts.QuarantineMaxCount), s.opts.QuarantineMaxBytes
	if count > maxCount || bytes > maxBytes {
		keepCount := maxCount - maxCount/10
		// Keep the newest rows whose bodies fit in nine tenths of the byte cap.
		_, err := tx.ExecContext(ctx, `DELETE FROM quarantine WHERE id NOT IN (
			SELECT id FROM (SELECT id, SUM(stored_size) OVER (ORDER BY id DESC) AS total FROM quarantine ORDER BY id DESC LIMIT ?)
			WHERE total <= ?)`, keepCount, maxBytes-maxBytes/10)
		if err != nil {
			return 0, 0, fmt.Errorf("cap quarantine: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(stored_size), 0) FROM quarantine`).Scan(&count, &bytes); err != nil {
			return 0, 0, fmt.Errorf("cap quarantine: %w", err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA incremental_vacuum(%d)`, vacuumPagesPerCap)); err != nil {
			return 0, 0, fmt.Errorf("cap quarantine: reclaim free pages: %w", err)
		}
	}
	return count, bytes, nil
}
