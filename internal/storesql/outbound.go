package storesql

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/recledger/recledger/internal/delivery"
)

// Outbound is delivery.Store over the tables of the outbound migration,
// the same in both stores: Write takes the writes, Read the reads (SQLite
// keeps a connection for each; PostgreSQL gives one pool for both), and
// Dollar says the database numbers its parameters ($1) instead of "?".
type Outbound struct {
	Write, Read *sql.DB
	Dollar      bool
	// Timeout, when set, bounds each call, and OnTimeout is called after
	// one ran out: PostgreSQL's pool then drops its connections, which a
	// network that stopped answering left dead (their health checks would
	// otherwise hang, and the pool's Close with them).
	Timeout   time.Duration
	OnTimeout func()
}

func (o Outbound) bound(ctx context.Context) (context.Context, func()) {
	if o.Timeout <= 0 {
		return ctx, func() {}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	return ctx, func() {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) && o.OnTimeout != nil {
			o.OnTimeout()
		}
		cancel()
	}
}

var _ delivery.Store = Outbound{}

// q rewrites a query's "?" to the database's placeholders.
func (o Outbound) q(query string) string {
	if !o.Dollar {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// spec is what a destination's spec column holds: everything a user sets.
type spec struct {
	Kind        delivery.Kind   `json:"type"`
	URL         string          `json:"url"`
	Description string          `json:"description,omitempty"`
	Filter      delivery.Filter `json:"filter"`
	Stream      string          `json:"stream,omitempty"`
	Prefix      string          `json:"prefix,omitempty"`
	MaxAge      time.Duration   `json:"maxAge,omitempty"` // nanoseconds
	Keys        []delivery.Key  `json:"keys,omitempty"`
}

func specOf(d *delivery.Destination) ([]byte, error) {
	return json.Marshal(spec{Kind: d.Kind, URL: d.URL, Description: d.Description, Filter: d.Filter,
		Stream: d.Stream, Prefix: d.Prefix, MaxAge: d.MaxAge, Keys: d.Keys})
}

// AnyDestination reports whether a destination is stored: a store sets
// its engine's outbox on from it before the engine's first step, so what
// the catch-up at start announces is not lost.
func (o Outbound) AnyDestination(ctx context.Context) (bool, error) {
	ctx, done := o.bound(ctx)
	defer done()
	var any bool
	if err := o.Read.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM destinations)`).Scan(&any); err != nil {
		return false, fmt.Errorf("any destination: %w", err)
	}
	return any, nil
}

// AddDestination implements delivery.Store.
func (o Outbound) AddDestination(ctx context.Context, d *delivery.Destination) error {
	ctx, done := o.bound(ctx)
	defer done()
	sp, err := specOf(d)
	if err != nil {
		return fmt.Errorf("add destination: %w", err)
	}
	err = o.Write.QueryRowContext(ctx, o.q(`INSERT INTO destinations (id, spec, enabled, created_at, cursor)
		VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) FROM outbound)) RETURNING cursor`),
		d.ID, string(sp), d.Enabled, d.CreatedAt).Scan(&d.Cursor)
	if err != nil {
		return fmt.Errorf("add destination %s: %w", d.ID, err)
	}
	return nil
}

const destinationColumns = `id, spec, enabled, disabled_reason, failing_since, created_at, cursor`

// scanner is a row to scan: *sql.Row or *sql.Rows.
type scanner interface{ Scan(...any) error }

// queryAll runs a query and scans every row; the slice is empty, not nil,
// when there is none (the API answers [] for it).
func queryAll[T any](ctx context.Context, db *sql.DB, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func scanDestination(r scanner) (delivery.Destination, error) {
	var (
		d  delivery.Destination
		sp string
	)
	if err := r.Scan(&d.ID, &sp, &d.Enabled, &d.DisabledReason, &d.FailingSince, &d.CreatedAt, &d.Cursor); err != nil {
		return d, err
	}
	var s spec
	if err := json.Unmarshal([]byte(sp), &s); err != nil {
		return d, fmt.Errorf("destination %s: %w", d.ID, err)
	}
	d.Kind, d.URL, d.Description, d.Filter, d.Stream, d.Prefix, d.MaxAge, d.Keys = s.Kind, s.URL, s.Description, s.Filter, s.Stream, s.Prefix, s.MaxAge, s.Keys
	return d, nil
}

// Destinations implements delivery.Store.
func (o Outbound) Destinations(ctx context.Context) ([]delivery.Destination, error) {
	ctx, done := o.bound(ctx)
	defer done()
	out, err := queryAll(ctx, o.Read, scanDestination, `SELECT `+destinationColumns+` FROM destinations ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list destinations: %w", err)
	}
	return out, nil
}

// Destination implements delivery.Store.
func (o Outbound) Destination(ctx context.Context, id string) (delivery.Destination, error) {
	ctx, done := o.bound(ctx)
	defer done()
	d, err := scanDestination(o.Read.QueryRowContext(ctx, o.q(`SELECT `+destinationColumns+` FROM destinations WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, fmt.Errorf("destination %s: %w", id, delivery.ErrNoDestination)
	}
	if err != nil {
		return d, fmt.Errorf("destination %s: %w", id, err)
	}
	return d, nil
}

// UpdateDestination implements delivery.Store.
func (o Outbound) UpdateDestination(ctx context.Context, d *delivery.Destination) error {
	ctx, done := o.bound(ctx)
	defer done()
	sp, err := specOf(d)
	if err != nil {
		return fmt.Errorf("update destination: %w", err)
	}
	res, err := o.Write.ExecContext(ctx, o.q(`UPDATE destinations SET spec = ?, enabled = ?,
		disabled_reason = CASE WHEN ? THEN '' ELSE ? END,
		failing_since = CASE WHEN ? AND NOT enabled THEN 0 ELSE failing_since END WHERE id = ?`),
		string(sp), d.Enabled, d.Enabled, d.DisabledReason, d.Enabled, d.ID)
	if err != nil {
		return fmt.Errorf("update destination %s: %w", d.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("destination %s: %w", d.ID, delivery.ErrNoDestination)
	}
	return nil
}

// RemoveDestination implements delivery.Store.
func (o Outbound) RemoveDestination(ctx context.Context, id string) error {
	ctx, done := o.bound(ctx)
	defer done()
	tx, err := o.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("remove destination %s: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, o.q(`DELETE FROM destinations WHERE id = ?`), id)
	if err != nil {
		return fmt.Errorf("remove destination %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("destination %s: %w", id, delivery.ErrNoDestination)
	}
	for _, t := range []string{"delivery_held", "dead_letters", "delivery_attempts"} {
		if _, err := tx.ExecContext(ctx, o.q(`DELETE FROM `+t+` WHERE destination = ?`), id); err != nil {
			return fmt.Errorf("remove destination %s: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("remove destination %s: %w", id, err)
	}
	return nil
}

// Lease implements delivery.Store.
func (o Outbound) Lease(ctx context.Context, id, owner string, now, until int64) (bool, error) {
	ctx, done := o.bound(ctx)
	defer done()
	res, err := o.Write.ExecContext(ctx, o.q(`UPDATE destinations SET lease_owner = ?, lease_until = ?
		WHERE id = ? AND (lease_owner IN ('', ?) OR lease_until < ?)`), owner, until, id, owner, now)
	if err != nil {
		return false, fmt.Errorf("lease destination %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("lease destination %s: %w", id, err)
	}
	return n == 1, nil
}

const storedColumns = `seq, event_id, type, record_id, app_key, room_id, at, committed_at, payload`

func scanStored(rows scanner) (delivery.Stored, error) {
	var s delivery.Stored
	err := rows.Scan(&s.Seq, &s.ID, &s.Type, &s.RecordID, &s.AppKey, &s.RoomID, &s.At, &s.CommittedAt, &s.Payload)
	return s, err
}

// Outbox implements delivery.Store.
func (o Outbound) Outbox(ctx context.Context, after int64, limit int) ([]delivery.Stored, error) {
	ctx, done := o.bound(ctx)
	defer done()
	out, err := queryAll(ctx, o.Read, scanStored, o.q(`SELECT `+storedColumns+` FROM outbound WHERE seq > ? ORDER BY seq LIMIT ?`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	return out, nil
}

// OutboxEnd implements delivery.Store.
func (o Outbound) OutboxEnd(ctx context.Context) (int64, error) {
	ctx, done := o.bound(ctx)
	defer done()
	var end int64
	if err := o.Read.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM outbound`).Scan(&end); err != nil {
		return 0, fmt.Errorf("read outbox end: %w", err)
	}
	return end, nil
}

// OutboxEvents implements delivery.Store.
func (o Outbound) OutboxEvents(ctx context.Context, seqs []int64) (map[int64]delivery.Stored, error) {
	ctx, done := o.bound(ctx)
	defer done()
	out := make(map[int64]delivery.Stored, len(seqs))
	for len(seqs) > 0 {
		chunk := seqs[:min(len(seqs), 500)] // SQLite bounds a statement's parameters
		seqs = seqs[len(chunk):]
		args := make([]any, len(chunk))
		for i, s := range chunk {
			args[i] = s
		}
		events, err := queryAll(ctx, o.Read, scanStored, o.q(`SELECT `+storedColumns+` FROM outbound WHERE seq IN (`+
			strings.TrimSuffix(strings.Repeat("?,", len(chunk)), ",")+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		for _, e := range events {
			out[e.Seq] = e
		}
	}
	return out, nil
}

// Commit implements delivery.Store.
func (o Outbound) Commit(ctx context.Context, p *delivery.Progress) error {
	ctx, done := o.bound(ctx)
	defer done()
	tx, err := o.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("commit delivery progress: %w", err)
	}
	defer tx.Rollback()
	// The fence first: its row lock also keeps a new lease holder's commit
	// behind this one.
	res, err := tx.ExecContext(ctx, o.q(`UPDATE destinations SET cursor = CASE WHEN ? > cursor THEN ? ELSE cursor END
		WHERE id = ? AND lease_owner = ? AND lease_owner <> ''`), p.Cursor, p.Cursor, p.Destination, p.Owner)
	if err != nil {
		return fmt.Errorf("commit delivery progress: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("destination %s: %w", p.Destination, delivery.ErrLeaseLost)
	}
	exec := func(query string, args ...any) {
		if err == nil {
			_, err = tx.ExecContext(ctx, o.q(query), args...)
		}
	}
	for _, h := range p.Hold {
		exec(`INSERT INTO delivery_held (destination, seq, record_id, attempts, next_at, last_status, last_error) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (destination, seq) DO UPDATE SET attempts = excluded.attempts, next_at = excluded.next_at,
				last_status = excluded.last_status, last_error = excluded.last_error`,
			p.Destination, h.Seq, h.RecordID, h.Attempts, h.NextAt, h.LastStatus, h.LastError)
	}
	for _, seq := range p.Release {
		exec(`DELETE FROM delivery_held WHERE destination = ? AND seq = ?`, p.Destination, seq)
	}
	for _, d := range p.Dead {
		exec(`DELETE FROM delivery_held WHERE destination = ? AND seq = ?`, p.Destination, d.Seq)
		exec(`INSERT INTO dead_letters (destination, seq, event_id, type, record_id, attempts, last_status, last_error, dead_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (destination, seq) DO NOTHING`,
			p.Destination, d.Seq, d.EventID, string(d.Type), d.RecordID, d.Attempts, d.LastStatus, d.LastError, d.DeadAt)
	}
	for _, a := range p.Attempts {
		exec(`INSERT INTO delivery_attempts (destination, at, seq, event_id, type, outcome, status, latency_ms, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, p.Destination, a.At, a.Seq, a.EventID, string(a.Type), a.Outcome, a.Status, a.LatencyMs, a.Error)
	}
	if len(p.Attempts) > 0 {
		exec(`DELETE FROM delivery_attempts WHERE destination = ? AND id <= (SELECT id FROM delivery_attempts
			WHERE destination = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`, p.Destination, p.Destination, AttemptsKept)
	}
	if p.FailingSince != nil {
		exec(`UPDATE destinations SET failing_since = ? WHERE id = ?`, *p.FailingSince, p.Destination)
	}
	if p.Disable != "" {
		exec(`UPDATE destinations SET enabled = ?, disabled_reason = ? WHERE id = ?`, false, p.Disable, p.Destination)
	}
	if a := p.Announce; a != nil && err == nil {
		if o.Dollar {
			// The projector's row lock, as its commits take it: outbox seqs
			// are drawn by one transaction at a time, so they commit in
			// order and no reader's cursor passes one still to commit.
			exec(`SELECT 1 FROM projection WHERE id = 1 FOR UPDATE`)
		}
		exec(`INSERT INTO outbound (event_id, type, record_id, app_key, room_id, at, committed_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, string(a.Type), a.RecordID, a.AppKey, a.RoomID, a.At, a.CommittedAt, a.Payload)
	}
	if err != nil {
		return fmt.Errorf("commit delivery progress: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit delivery progress: %w", err)
	}
	return nil
}

// AttemptsKept is how many attempts the log keeps per destination.
const AttemptsKept = 200

// Held implements delivery.Store.
func (o Outbound) Held(ctx context.Context, id string) ([]delivery.Held, error) {
	ctx, done := o.bound(ctx)
	defer done()
	out, err := queryAll(ctx, o.Read, func(r scanner) (h delivery.Held, err error) {
		err = r.Scan(&h.Seq, &h.RecordID, &h.Attempts, &h.NextAt, &h.LastStatus, &h.LastError)
		return h, err
	}, o.q(`SELECT seq, record_id, attempts, next_at, last_status, last_error FROM delivery_held WHERE destination = ? ORDER BY seq`), id)
	if err != nil {
		return nil, fmt.Errorf("held events of %s: %w", id, err)
	}
	return out, nil
}

// DeadLetters implements delivery.Store.
func (o Outbound) DeadLetters(ctx context.Context, id string, limit int) ([]delivery.DeadLetter, error) {
	ctx, done := o.bound(ctx)
	defer done()
	out, err := queryAll(ctx, o.Read, func(r scanner) (d delivery.DeadLetter, err error) {
		err = r.Scan(&d.Seq, &d.EventID, &d.Type, &d.RecordID, &d.Attempts, &d.LastStatus, &d.LastError, &d.DeadAt)
		return d, err
	}, o.q(`SELECT seq, event_id, type, record_id, attempts, last_status, last_error, dead_at
		FROM dead_letters WHERE destination = ? ORDER BY seq LIMIT ?`), id, limit)
	if err != nil {
		return nil, fmt.Errorf("dead letters of %s: %w", id, err)
	}
	return out, nil
}

// Redeliver implements delivery.Store.
func (o Outbound) Redeliver(ctx context.Context, id string, seqs []int64, now int64) (int, error) {
	ctx, done := o.bound(ctx)
	defer done()
	tx, err := o.Write.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("redeliver: %w", err)
	}
	defer tx.Rollback()
	where, args := `destination = ?`, []any{id}
	if len(seqs) > 0 {
		where += ` AND seq IN (` + strings.TrimSuffix(strings.Repeat("?,", len(seqs)), ",") + `)`
		for _, s := range seqs {
			args = append(args, s)
		}
	}
	// Held again with no attempt counted: due now, or behind what the
	// recording already holds (its order is kept).
	if _, err := tx.ExecContext(ctx, o.q(`INSERT INTO delivery_held (destination, seq, record_id, attempts, next_at, last_status, last_error)
		SELECT destination, seq, record_id, 0, ?, 0, '' FROM dead_letters WHERE `+where+` ON CONFLICT (destination, seq) DO NOTHING`),
		append([]any{now}, args...)...); err != nil {
		return 0, fmt.Errorf("redeliver: %w", err)
	}
	res, err := tx.ExecContext(ctx, o.q(`DELETE FROM dead_letters WHERE `+where), args...)
	if err != nil {
		return 0, fmt.Errorf("redeliver: %w", err)
	}
	n, _ := res.RowsAffected()
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("redeliver: %w", err)
	}
	return int(n), nil
}

// Attempts implements delivery.Store.
func (o Outbound) Attempts(ctx context.Context, id string, limit int) ([]delivery.AttemptRecord, error) {
	ctx, done := o.bound(ctx)
	defer done()
	out, err := queryAll(ctx, o.Read, func(r scanner) (a delivery.AttemptRecord, err error) {
		err = r.Scan(&a.At, &a.Seq, &a.EventID, &a.Type, &a.Outcome, &a.Status, &a.LatencyMs, &a.Error)
		return a, err
	}, o.q(`SELECT at, seq, event_id, type, outcome, status, latency_ms, error
		FROM delivery_attempts WHERE destination = ? ORDER BY id DESC LIMIT ?`), id, limit)
	if err != nil {
		return nil, fmt.Errorf("attempts of %s: %w", id, err)
	}
	return out, nil
}

// PruneOutbox implements delivery.Store.
func (o Outbound) PruneOutbox(ctx context.Context, before int64) (int64, error) {
	ctx, done := o.bound(ctx)
	defer done()
	res, err := o.Write.ExecContext(ctx, o.q(`DELETE FROM outbound WHERE committed_at < ?
		AND seq NOT IN (SELECT seq FROM delivery_held) AND seq NOT IN (SELECT seq FROM dead_letters)
		AND seq <= (SELECT COALESCE(MIN(cursor), (SELECT MAX(seq) FROM outbound)) FROM destinations WHERE enabled = ?)`), before, true)
	if err != nil {
		return 0, fmt.Errorf("prune outbox: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
