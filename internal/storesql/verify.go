package storesql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/recledger/recledger/internal/ledger"
)

// Verifications is ledger.Verifications over the tables of the
// verifications migration, the same in both stores (see Outbound for
// Write, Read, Dollar and Timeout).
type Verifications struct {
	Write, Read *sql.DB
	Dollar      bool
	Timeout     time.Duration
	OnTimeout   func()
}

var _ ledger.Verifications = Verifications{}

// Bounds of the free text a check keeps: the storage chose it, and a
// hostile one may answer megabytes of header.
const (
	maxCheckError = 1024
	maxCheckField = 256
)

func (v Verifications) o() Outbound {
	return Outbound{Dollar: v.Dollar, Timeout: v.Timeout, OnTimeout: v.OnTimeout}
}

// storableCheck reports whether every store can hold c's ids: they come
// from stored callbacks, which passed ledger.CheckStorable, so a check
// that breaks it names nothing stored (PostgreSQL would refuse its NUL
// even as a parameter).
func storableCheck(c *ledger.FileCheck) error {
	for _, f := range []struct{ field, v string }{
		{"recordId", c.RecordID}, {"fileName", c.FileName}, {"appKey", c.AppKey}, {"recordId", c.URLHash},
	} {
		if err := ledger.CheckLookup(f.field, f.v); err != nil {
			return err
		}
	}
	return nil
}

// lookupable reports whether ids (recordId, fileName) could name a
// stored check.
func lookupable(recordID, fileName string) bool {
	return ledger.CheckLookup("recordId", recordID) == nil && ledger.CheckLookup("fileName", fileName) == nil
}

// CheckVerificationFilter returns ledger.ErrBadFilter for a verification
// state no store knows ("" selects every recording).
func CheckVerificationFilter(s ledger.VerificationState) error {
	for _, known := range ledger.VerificationStates {
		if s == "" || s == known {
			return nil
		}
	}
	return fmt.Errorf("verification %.40q: %w", s, ledger.ErrBadFilter)
}

// VerificationCursor implements ledger.Verifications.
func (v Verifications) VerificationCursor(ctx context.Context) (int64, error) {
	ctx, done := v.o().bound(ctx)
	defer done()
	var seq int64
	if err := v.Read.QueryRowContext(ctx, `SELECT seq FROM verification_cursor WHERE id = 1`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("verification cursor: %w", err)
	}
	return seq, nil
}

// QueueVerifications implements ledger.Verifications. A check whose ids
// break ledger.CheckStorable's rule refuses the batch
// (ledger.ErrUnstorable), on both backends alike.
func (v Verifications) QueueVerifications(ctx context.Context, checks []ledger.FileCheck, cursor int64) error {
	for i := range checks {
		if err := storableCheck(&checks[i]); err != nil {
			return fmt.Errorf("queue verifications: %w", err)
		}
	}
	ctx, done := v.o().bound(ctx)
	defer done()
	tx, err := v.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("queue verifications: %w", err)
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, v.o().q(`INSERT INTO verifications (record_id, file_name, app_key, url_hash, state,
		http_status, size, content_type, etag, checked_at, attempts, error, next_at, announced)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (record_id, file_name) DO UPDATE SET app_key = excluded.app_key, url_hash = excluded.url_hash,
			state = excluded.state, http_status = excluded.http_status, size = excluded.size,
			content_type = excluded.content_type, etag = excluded.etag, checked_at = excluded.checked_at,
			attempts = excluded.attempts, error = excluded.error, next_at = excluded.next_at, announced = excluded.announced
		WHERE verifications.url_hash <> excluded.url_hash`))
	if err != nil {
		return fmt.Errorf("queue verifications: %w", err)
	}
	defer ins.Close()
	for i := range checks {
		c := &checks[i]
		state := c.State
		if state == "" {
			state = ledger.VerifyPending
		}
		if _, err := ins.ExecContext(ctx, append([]any{c.RecordID, c.FileName, c.AppKey, c.URLHash, string(state)}, results(c)...)...); err != nil {
			return fmt.Errorf("queue verification of %s: %w", ledger.Clip(c.FileName, 200), err)
		}
	}
	if _, err := tx.ExecContext(ctx, v.o().q(`UPDATE verification_cursor SET seq = ? WHERE id = 1`), cursor); err != nil {
		return fmt.Errorf("queue verifications: cursor: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("queue verifications: %w", err)
	}
	return nil
}

// results returns the columns http_status to announced of c, its free
// text made storable and bounded.
func results(c *ledger.FileCheck) []any {
	return []any{nullInt(c.HTTPStatus), nullInt64(c.Size),
		ledger.TextColumn(ledger.Clip(c.ContentType, maxCheckField)), ledger.TextColumn(ledger.Clip(c.ETag, maxCheckField)),
		nullInt64(c.CheckedAt), int64(c.Attempts), ledger.TextColumn(ledger.Clip(c.Error, maxCheckError)), c.NextAt, c.Announced}
}

func nullInt(p *int) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*p), Valid: true}
}

func nullInt64(p *int64) sql.NullInt64 {
	if p == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: *p, Valid: true}
}

const checkColumns = `record_id, file_name, app_key, url_hash, state, http_status, size, content_type, etag, checked_at, attempts, error, next_at, announced`

func scanCheck(r scanner) (ledger.FileCheck, error) {
	var (
		c                       ledger.FileCheck
		state                   string
		status, size, checkedAt sql.NullInt64
		attempts                int64
		announced               bool
	)
	if err := r.Scan(&c.RecordID, &c.FileName, &c.AppKey, &c.URLHash, &state, &status, &size, &c.ContentType, &c.ETag,
		&checkedAt, &attempts, &c.Error, &c.NextAt, &announced); err != nil {
		return c, err
	}
	c.State, c.Attempts, c.Announced = ledger.VerificationState(state), int(attempts), announced
	if status.Valid {
		n := int(status.Int64)
		c.HTTPStatus = &n
	}
	if size.Valid {
		c.Size = &size.Int64
	}
	if checkedAt.Valid {
		c.CheckedAt = &checkedAt.Int64
	}
	return c, nil
}

// DueVerifications implements ledger.Verifications.
func (v Verifications) DueVerifications(ctx context.Context, now int64, limit int) ([]ledger.FileCheck, error) {
	ctx, done := v.o().bound(ctx)
	defer done()
	out, err := queryAll(ctx, v.Read, scanCheck, v.o().q(`SELECT `+checkColumns+` FROM verifications
		WHERE next_at > 0 AND next_at <= ? ORDER BY next_at, record_id, file_name LIMIT ?`), now, limit)
	if err != nil {
		return nil, fmt.Errorf("due verifications: %w", err)
	}
	return out, nil
}

// SaveVerification implements ledger.Verifications.
func (v Verifications) SaveVerification(ctx context.Context, c ledger.FileCheck) (bool, error) {
	if storableCheck(&c) != nil {
		return false, nil // names no stored check
	}
	ctx, done := v.o().bound(ctx)
	defer done()
	args := append([]any{string(c.State)}, results(&c)...)
	res, err := v.Write.ExecContext(ctx, v.o().q(`UPDATE verifications SET state = ?, http_status = ?, size = ?,
		content_type = ?, etag = ?, checked_at = ?, attempts = ?, error = ?, next_at = ?, announced = ?
		WHERE record_id = ? AND file_name = ? AND url_hash = ? AND (CAST(? AS BIGINT) = 0 OR next_at = ?)`),
		append(args, c.RecordID, c.FileName, c.URLHash, c.TakenAt, c.TakenAt)...)
	if err != nil {
		return false, fmt.Errorf("save verification of %s: %w", ledger.Clip(c.FileName, 200), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("save verification of %s: %w", ledger.Clip(c.FileName, 200), err)
	}
	return n > 0, nil
}

// DropVerification implements ledger.Verifications.
func (v Verifications) DropVerification(ctx context.Context, c ledger.FileCheck) error {
	if storableCheck(&c) != nil {
		return nil // names no stored check
	}
	ctx, done := v.o().bound(ctx)
	defer done()
	if _, err := v.Write.ExecContext(ctx, v.o().q(`DELETE FROM verifications WHERE record_id = ? AND file_name = ? AND url_hash = ?`),
		c.RecordID, c.FileName, c.URLHash); err != nil {
		return fmt.Errorf("drop verification of %s: %w", ledger.Clip(c.FileName, 200), err)
	}
	return nil
}

// FileVerifications implements ledger.Verifications.
func (v Verifications) FileVerifications(ctx context.Context, recordID string) (map[string]ledger.Verification, error) {
	out := map[string]ledger.Verification{}
	if !lookupable(recordID, "") {
		return out, nil
	}
	ctx, done := v.o().bound(ctx)
	defer done()
	checks, err := queryAll(ctx, v.Read, scanCheck, v.o().q(`SELECT `+checkColumns+` FROM verifications WHERE record_id = ?`), recordID)
	if err != nil {
		return nil, fmt.Errorf("verifications of %s: %w", recordID, err)
	}
	for _, c := range checks {
		out[c.FileName] = c.Verification
	}
	return out, nil
}

// Recheck implements ledger.Verifications. A check made due again is
// pending (so whoever asked can wait for its outcome), with its attempts
// counted afresh and its outcome to be announced again if it changes;
// its last answer stays until the next check replaces it.
func (v Verifications) Recheck(ctx context.Context, f ledger.RecheckFilter, now int64) (int64, error) {
	if err := CheckVerificationFilter(f.State); err != nil {
		return 0, fmt.Errorf("recheck: %w", err)
	}
	var (
		conds []string
		args  = []any{string(ledger.VerifyPending), now}
	)
	if f.RecordID != "" {
		if !lookupable(f.RecordID, f.FileName) {
			return 0, nil
		}
		conds, args = append(conds, "record_id = ?"), append(args, f.RecordID)
		if f.FileName != "" {
			conds, args = append(conds, "file_name = ?"), append(args, f.FileName)
		}
	} else if f.FileName != "" {
		return 0, nil // a file only within its recording: the zero filter's answer
	}
	if f.State != "" {
		conds, args = append(conds, "state = ?"), append(args, string(f.State))
	}
	if len(conds) == 0 {
		return 0, nil
	}
	ctx, done := v.o().bound(ctx)
	defer done()
	res, err := v.Write.ExecContext(ctx, v.o().q(`UPDATE verifications SET state = ?, next_at = ?, attempts = 0, announced = `+
		v.falseSQL()+` WHERE `+strings.Join(conds, " AND ")), args...)
	if err != nil {
		return 0, fmt.Errorf("recheck: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("recheck: %w", err)
	}
	return n, nil
}

// falseSQL is the announced column's false: SQLite keeps an integer.
func (v Verifications) falseSQL() string {
	if v.Dollar {
		return "false"
	}
	return "0"
}

// Unannounced implements ledger.Verifications.
func (v Verifications) Unannounced(ctx context.Context, limit int) ([]ledger.FileCheck, error) {
	ctx, done := v.o().bound(ctx)
	defer done()
	out, err := queryAll(ctx, v.Read, scanCheck, v.o().q(`SELECT `+checkColumns+` FROM verifications
		WHERE NOT announced AND state <> 'pending' ORDER BY checked_at, record_id, file_name LIMIT ?`), limit)
	if err != nil {
		return nil, fmt.Errorf("unannounced verifications: %w", err)
	}
	return out, nil
}

// MarkAnnounced implements ledger.Verifications.
func (v Verifications) MarkAnnounced(ctx context.Context, c ledger.FileCheck) error {
	if storableCheck(&c) != nil {
		return nil // names no stored check
	}
	ctx, done := v.o().bound(ctx)
	defer done()
	_, err := v.Write.ExecContext(ctx, v.o().q(`UPDATE verifications SET announced = ?
		WHERE record_id = ? AND file_name = ? AND url_hash = ? AND state = ?`), true, c.RecordID, c.FileName, c.URLHash, string(c.State))
	if err != nil {
		return fmt.Errorf("mark verification of %s announced: %w", ledger.Clip(c.FileName, 200), err)
	}
	return nil
}

// VerificationCounts implements ledger.Verifications.
func (v Verifications) VerificationCounts(ctx context.Context, states ...ledger.VerificationState) (map[ledger.VerificationState]int64, error) {
	q, args := `SELECT state, COUNT(*) FROM verifications GROUP BY state`, []any(nil)
	if len(states) > 0 {
		for _, st := range states {
			if err := CheckVerificationFilter(st); err != nil || st == "" {
				return nil, fmt.Errorf("verification counts: %w", ledger.ErrBadFilter)
			}
			args = append(args, string(st))
		}
		// One range of verifications_by_state per state.
		q = v.o().q(`SELECT state, COUNT(*) FROM verifications WHERE state IN (?` + strings.Repeat(", ?", len(states)-1) + `) GROUP BY state`)
	}
	ctx, done := v.o().bound(ctx)
	defer done()
	type count struct {
		state string
		n     int64
	}
	rows, err := queryAll(ctx, v.Read, func(r scanner) (count, error) {
		var c count
		return c, r.Scan(&c.state, &c.n)
	}, q, args...)
	if err != nil {
		return nil, fmt.Errorf("verification counts: %w", err)
	}
	out := map[ledger.VerificationState]int64{}
	for _, c := range rows {
		out[ledger.VerificationState(c.state)] = c.n
	}
	return out, nil
}
