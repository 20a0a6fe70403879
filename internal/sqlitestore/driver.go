package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storesql"
)

// driver is the engine's access to the store: it reads the log file and
// writes the ledger file, whose own write lock lets the projections commit
// beside the log's commits (on the other core) instead of taking turns.
type driver struct {
	s     *Store
	stmts struct {
		// A recording is written by the narrowest statement that covers
		// what changed: SQLite rewrites the entries of every index on a
		// column an UPDATE sets, changed or not, and most callbacks change
		// only the state and its times (see write).
		insertRecording, updateAll, updateProgress, updateState *sql.Stmt
		saveFile, addTotals, countMinute, markDuplicate         *sql.Stmt
		setDue, setFindings, announce                           *sql.Stmt
	}
	saves int
}

var _ engine.Driver = (*driver)(nil)

func (d *driver) prepare(ctx context.Context) error {
	var err error
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var st *sql.Stmt
		st, err = d.s.ledgerWriter.PrepareContext(ctx, q)
		return st
	}
	d.stmts.insertRecording = prep(`INSERT INTO recordings (record_id, app_key, room_id, session_id, user_id, mode, status, upload_state,
			end_received_at, file_count, uploaded_count, started_at, first_seen_at, last_event_at, state, first_seq)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) RETURNING id`)
	d.stmts.updateAll = prep(`UPDATE recordings SET app_key = ?2, room_id = ?3, session_id = ?4, user_id = ?5, mode = ?6,
			status = ?7, upload_state = ?8, end_received_at = ?9, file_count = ?10, uploaded_count = ?11,
			started_at = ?12, first_seen_at = ?13, last_event_at = ?14, state = ?15 WHERE record_id = ?1 RETURNING id`)
	d.stmts.updateProgress = prep(`UPDATE recordings SET
			status = ?7, upload_state = ?8, end_received_at = ?9, file_count = ?10, uploaded_count = ?11,
			started_at = ?12, first_seen_at = ?13, last_event_at = ?14, state = ?15 WHERE record_id = ?1 RETURNING id`)
	d.stmts.updateState = prep(`UPDATE recordings SET started_at = ?12, first_seen_at = ?13, last_event_at = ?14, state = ?15
			WHERE record_id = ?1 RETURNING id`)
	d.stmts.saveFile = prep(`INSERT INTO files (name_hash, recording) VALUES (?, ?) ON CONFLICT DO NOTHING`)
	d.stmts.addTotals = prep(fmt.Sprintf(storesql.AddTotals, "?", "?", "?", "?"))
	d.stmts.countMinute = prep(`INSERT INTO activity (minute, callbacks, duplicates) VALUES (?, ?, ?)
		ON CONFLICT (minute) DO UPDATE SET callbacks = callbacks + excluded.callbacks, duplicates = duplicates + excluded.duplicates`)
	d.stmts.markDuplicate = prep(`INSERT INTO duplicates (seq) VALUES (?) ON CONFLICT DO NOTHING`)
	d.stmts.setDue = prep(`UPDATE recordings SET due_at = ? WHERE id = ?`)
	d.stmts.setFindings = prep(`UPDATE recordings SET findings = ? WHERE id = ?`)
	d.stmts.announce = prep(`INSERT INTO outbound (event_id, type, record_id, app_key, room_id, at, committed_at, payload)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("prepare statements: %w", err)
	}
	return nil
}

// ReadLog implements engine.Driver. One writer appends, so rowids follow
// commit order and a committed row never appears behind a read one.
func (d *driver) ReadLog(ctx context.Context, after engine.LogPos, limit int) ([]engine.Row, error) {
	rows, err := d.s.reader.QueryContext(ctx, `SELECT seq, received_at, body FROM log WHERE seq > ? ORDER BY seq LIMIT ?`, after.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	defer rows.Close()
	var out []engine.Row
	for rows.Next() {
		var r engine.Row
		if err := rows.Scan(&r.Seq, &r.ReceivedAt, &r.Body); err != nil {
			return nil, fmt.Errorf("read log: %w", err)
		}
		r.Log.ID = r.Seq
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read log: %w", err)
	}
	return out, nil
}

// LoadRecords implements engine.Driver.
func (d *driver) LoadRecords(ctx context.Context, ids []string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(ids))
	for chunk := range chunks(ids, 500) {
		rows, err := d.s.ledgerReader.QueryContext(ctx, `SELECT record_id, state FROM recordings WHERE record_id IN (`+marks(len(chunk))+`)`, anys(chunk)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var (
				id   string
				blob []byte
			)
			if err := rows.Scan(&id, &blob); err != nil {
				rows.Close()
				return nil, err
			}
			out[id] = blob
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Save implements engine.Driver.
func (d *driver) Save(ctx context.Context, b *engine.Batch) error {
	tx, err := d.s.ledgerWriter.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save projections: %w", err)
	}
	defer tx.Rollback()
	var stored int64
	if err := tx.QueryRowContext(ctx, `SELECT seq FROM projection WHERE id = 1`).Scan(&stored); err != nil {
		return fmt.Errorf("save projections: %w", err)
	}
	if stored != b.From.Seq {
		return fmt.Errorf("stored %d, batch from %d: %w", stored, b.From.Seq, engine.ErrMoved)
	}
	saveFile := tx.StmtContext(ctx, d.stmts.saveFile)
	for _, sv := range b.Records {
		st := &sv.Record.State
		id, err := d.write(ctx, tx, &sv)
		if err != nil {
			return fmt.Errorf("save recording %s: %w", st.RecordID, err)
		}
		for _, name := range sv.NewFiles {
			if _, err := saveFile.ExecContext(ctx, engine.NameHash(name), id); err != nil {
				return fmt.Errorf("save file %s: %w", name, err)
			}
		}
		if sv.DueAt != sv.DueBefore || sv.New && sv.DueAt != 0 {
			if _, err := tx.StmtContext(ctx, d.stmts.setDue).ExecContext(ctx, nullZero(sv.DueAt), id); err != nil {
				return fmt.Errorf("save recording %s: when due: %w", st.RecordID, err)
			}
		}
		if sv.FindingsChanged { // rarely: most saves leave the findings column alone
			if _, err := tx.StmtContext(ctx, d.stmts.setFindings).ExecContext(ctx, int64(sv.Findings), id); err != nil {
				return fmt.Errorf("save recording %s: findings: %w", st.RecordID, err)
			}
		}
	}
	if len(b.Outbound) > 0 {
		announce, now := tx.StmtContext(ctx, d.stmts.announce), d.s.opts.Now().UnixMilli()
		for _, o := range b.Outbound {
			if _, err := announce.ExecContext(ctx, o.ID, o.Type, o.RecordID, o.AppKey, o.RoomID, o.At, now, o.Payload); err != nil {
				return fmt.Errorf("save outbound event %s: %w", o.ID, err)
			}
		}
	}
	for _, e := range b.Events {
		if e.Duplicate {
			if _, err := tx.StmtContext(ctx, d.stmts.markDuplicate).ExecContext(ctx, e.Seq); err != nil {
				return fmt.Errorf("mark duplicate %d: %w", e.Seq, err)
			}
		}
	}
	for _, k := range b.Totals.Cells() {
		t := b.Totals[k]
		if _, err := tx.StmtContext(ctx, d.stmts.addTotals).ExecContext(ctx, string(k.Status), string(k.Upload), t.Recordings, t.PendingFiles); err != nil {
			return fmt.Errorf("save totals: %w", err)
		}
	}
	for _, m := range b.Minutes {
		if _, err := tx.StmtContext(ctx, d.stmts.countMinute).ExecContext(ctx, m.Start, m.Callbacks, m.Duplicates); err != nil {
			return fmt.Errorf("count activity: %w", err)
		}
	}
	if d.saves++; d.saves%1000 == 1 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM activity WHERE minute < ?`, d.s.opts.Now().Add(-ledger.ActivityKept).UnixMilli()); err != nil {
			return fmt.Errorf("prune activity: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE projection SET seq = ? WHERE id = 1`, b.To.Seq); err != nil {
		return fmt.Errorf("save watermark: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save projections: %w", err)
	}
	return nil
}

// columns are a recording's columns beside its record, by the index groups
// they belong to.
type columns struct {
	identity struct {
		app, room, session, user string
		mode                     int64
	}
	progress struct { // the status, upload and not-uploaded indexes
		status, upload  string
		endReceivedAt   *int64
		files, uploaded int
	}
}

func columnsOf(st *ledger.State) columns {
	var c columns
	c.identity.app, c.identity.room, c.identity.session, c.identity.user = st.AppKey, st.RoomID, st.SessionID, st.UserID
	c.identity.mode = int64(st.Mode)
	c.progress.status, c.progress.upload = string(st.Status()), string(st.BaseUploadState())
	c.progress.endReceivedAt = st.EndReceivedAt
	c.progress.files, c.progress.uploaded = len(st.Files), st.UploadedCount()
	return c
}

// write stores one recording with the narrowest statement that covers its
// change and returns its rowid.
func (d *driver) write(ctx context.Context, tx *sql.Tx, sv *engine.Saved) (int64, error) {
	st := &sv.Record.State
	now := columnsOf(st)
	stmt := d.stmts.insertRecording
	if !sv.New {
		was := columnsOf(&sv.Before)
		switch {
		case was.identity != now.identity:
			stmt = d.stmts.updateAll
		case was.progress.status != now.progress.status || was.progress.upload != now.progress.upload ||
			was.progress.files != now.progress.files || was.progress.uploaded != now.progress.uploaded ||
			!equalPtr(was.progress.endReceivedAt, now.progress.endReceivedAt):
			stmt = d.stmts.updateProgress
		default:
			stmt = d.stmts.updateState
		}
	}
	var startedAt *int64
	if st.StartFrom != nil {
		startedAt = &st.StartFrom.Timestamp
	}
	var id int64
	err := tx.StmtContext(ctx, stmt).QueryRowContext(ctx, st.RecordID, now.identity.app, now.identity.room, now.identity.session,
		now.identity.user, now.identity.mode, now.progress.status, now.progress.upload, now.progress.endReceivedAt,
		now.progress.files, now.progress.uploaded, startedAt, st.FirstSeenAt, st.LastEventAt, sv.Blob, sv.Record.FirstSeq).Scan(&id)
	return id, err
}

func equalPtr(a, b *int64) bool { return a == b || a != nil && b != nil && *a == *b }

// Watermark implements engine.Driver.
func (d *driver) Watermark(ctx context.Context) (engine.Position, error) {
	var seq int64
	if err := d.s.ledgerWriter.QueryRowContext(ctx, `SELECT seq FROM projection WHERE id = 1`).Scan(&seq); err != nil {
		return engine.Position{}, fmt.Errorf("read watermark: %w", err)
	}
	return engine.Position{Seq: seq, Log: engine.LogPos{ID: seq}}, nil
}

// DueRecords implements engine.Driver.
func (d *driver) DueRecords(ctx context.Context, now int64, limit int) ([]string, error) {
	rows, err := d.s.ledgerWriter.QueryContext(ctx, `SELECT record_id FROM recordings WHERE due_at <= ? ORDER BY due_at LIMIT ?`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("recordings due: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("recordings due: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// nullZero is v, or NULL for 0.
func nullZero(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// Reset implements engine.Driver.
func (d *driver) Reset(ctx context.Context) error {
	tx, err := d.s.ledgerWriter.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("reset projections: %w", err)
	}
	defer tx.Rollback()
	for _, q := range []string{`DELETE FROM recordings`, `DELETE FROM files`, `DELETE FROM totals`, `DELETE FROM duplicates`,
		`DELETE FROM activity`, `UPDATE projection SET seq = 0 WHERE id = 1`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("reset projections: %w", err)
		}
	}
	return tx.Commit()
}

// chunks splits s into slices of at most n (SQLite bounds a statement's
// parameters).
func chunks[T any](s []T, n int) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			c := s[:min(n, len(s))]
			s = s[len(c):]
			if !yield(c) {
				return
			}
		}
	}
}

func marks(n int) string { return strings.TrimSuffix(strings.Repeat("?,", n), ",") }

func anys[T any](s []T) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}
