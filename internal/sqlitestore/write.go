package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storesql"
	"github.com/recledger/recledger/rc"
)

type writeStmts struct {
	insertLog, insertRejection, countRejected *sql.Stmt
}

func (s *Store) prepare(ctx context.Context) error {
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = s.writer.PrepareContext(ctx, q)
		return st
	}
	s.stmts = writeStmts{
		insertLog: prep(`INSERT INTO log (received_at, body, sig) VALUES (?, ?, ?)`),
		insertRejection: prep(`INSERT INTO quarantine (at, status, reason, app_key, message, remote, method, path, header, body, body_size, stored_size)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		countRejected: prep(`INSERT INTO activity (minute, rejected) VALUES (?, ?)
			ON CONFLICT (minute) DO UPDATE SET rejected = rejected + excluded.rejected`),
	}
	if err != nil {
		return fmt.Errorf("prepare statements: %w", err)
	}
	return s.driver.prepare(ctx)
}

// Remember implements rc.ReplayMemory (see storesql.ReplayMemory).
func (s *Store) Remember(ctx context.Context, key rc.ReplayKey, digest [32]byte, until time.Time) (rc.ReplayVerdict, error) {
	return s.sigs.Remember(ctx, key, digest, until)
}

// commit is the group-commit function: one transaction for the batch, in
// which each callback is one appended row and each rejection one
// quarantine row. Nothing else: the engine derives the rest afterwards.
func (s *Store) commit(ctx context.Context, ops []storesql.Op) (results []storesql.Result, err error) {
	report := storesql.ReportCommit(s.opts.OnCommit, ops)
	defer func() { report(results, err) }()
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	results = make([]storesql.Result, len(ops))
	var (
		rows                    = make([]engine.Row, 0, len(ops))
		cbs                     = make([]rc.Callback, 0, len(ops))
		rejected, rejectedBytes int64
		minutes                 ledger.MinuteCounter
	)
	insertLog := tx.StmtContext(ctx, s.stmts.insertLog)
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
		at := o.In.ReceivedAt.UnixMilli()
		var sig []byte
		if o.Sig != nil {
			sig = o.Sig.Compact()
		}
		res, err := insertLog.ExecContext(ctx, at, o.Body, sig)
		if err != nil {
			return nil, fmt.Errorf("append callback %s: %w", ledger.Clip(o.In.Callback.RecordID, 64), err)
		}
		seq, err := res.LastInsertId()
		if err != nil {
			return nil, fmt.Errorf("append callback: %w", err)
		}
		results[i].Seq = seq
		rows = append(rows, engine.Row{Log: engine.LogPos{ID: seq}, Seq: seq, ReceivedAt: at})
		cbs = append(cbs, o.In.Callback)
	}
	var qCount, qBytes int64
	if rejected > 0 {
		for _, m := range minutes.Minutes() {
			if _, err := tx.StmtContext(ctx, s.stmts.countRejected).ExecContext(ctx, m.Start, m.Rejected); err != nil {
				return nil, fmt.Errorf("count rejected: %w", err)
			}
		}
		// Only rejections write here now; a range seek on the key when
		// nothing is old enough.
		if _, err := tx.ExecContext(ctx, `DELETE FROM activity WHERE minute < ?`, s.opts.Now().Add(-ledger.ActivityKept).UnixMilli()); err != nil {
			return nil, fmt.Errorf("prune activity: %w", err)
		}
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
	s.eng.Committed(rows, cbs)
	return results, nil
}

func insertRejection(ctx context.Context, tx *sql.Tx, st *sql.Stmt, r *ledger.StoredRejection) error {
	_, err := tx.StmtContext(ctx, st).ExecContext(ctx, r.At, r.Status, r.Reason, r.AppKey, r.Message, r.Remote, r.Method, r.Path,
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
