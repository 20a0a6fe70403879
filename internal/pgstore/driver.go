package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
)

var _ engine.Driver = (*driver)(nil)

// driver is the engine's view of the database.
//
// One instance projects at a time: the one whose dedicated connection
// (lock) holds a session-level advisory lock on the schema. The lock goes
// with the session, so when the projecting instance dies (or its
// connection does) another one takes it on its next try; the engine tries
// every second. Save is fenced on the stored watermark besides, so even two
// instances that both believe they project never apply a row twice.
type driver struct {
	pool   *pgxpool.Pool
	cfg    *pgx.ConnConfig // for the lock connection
	schema string
	// timeout bounds each call (Save and Reset four times it): the engine
	// runs without a deadline, and a database that stopped answering
	// (a blackholed network) would hold a step, its pool connection and
	// every read waiting for fresh projections, for good.
	timeout time.Duration

	mu      sync.Mutex // one user of lock at a time
	lock    *pgx.Conn  // nil until connected, and after it failed
	leading bool       // lock holds the projector's lock
	held    session    // the session that took the lock
	// zombie is the session this instance held the lock with before its
	// connection failed: when a network drops silently, the server keeps
	// the session, and the lock, until it notices (TCP keepalives), and
	// nobody would project meanwhile. This instance knows it is dead, so
	// it ends it (see lead).
	zombie session

	crashed atomic.Bool // tests: the instance is dead (export_test.go)

	// removals is the count of removals (projection.removals) the
	// engine's cache is known to reflect: Save is fenced on it. It moves
	// only when a Save finds it stale, the cache being dropped then.
	removals     atomic.Int64
	removalsRead atomic.Bool
}

// bound returns ctx bounded by n times the timeout, and what to call when
// the call is done: after a deadline it also drops the pool's idle
// connections, as dead as the one that timed out.
func (d *driver) bound(ctx context.Context, n int) (context.Context, func(err error) error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(n)*d.timeout)
	return ctx, func(err error) error {
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			d.pool.Reset()
			err = fmt.Errorf("%w (no answer within %s)", err, time.Duration(n)*d.timeout)
		}
		cancel()
		return err
	}
}

// errCrashed is what a crashed driver answers (tests only).
var errCrashed = errors.New("the instance crashed")

// session names a server session: a pid alone may be reused.
type session struct {
	pid   int32
	start time.Time
}

// leadSQL takes the projector's lock of this schema, without waiting, and
// names the session. The two-key form keeps it apart from the migration
// lock's one-key space.
const leadSQL = `SELECT pg_try_advisory_lock(hashtext('recledger_projector'), hashtext($1)), pg_backend_pid(),
	(SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())`

// endZombieSQL ends the session $2 (started at $3) if it holds the
// projector's lock of schema $1.
const endZombieSQL = `SELECT COALESCE(bool_or(pg_terminate_backend(l.pid)), false)
	FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
	WHERE l.locktype = 'advisory' AND l.granted AND l.classid = hashtext('recledger_projector')::oid
		AND l.objid = hashtext($1)::oid AND l.objsubid = 2 AND l.pid = $2 AND a.backend_start = $3`

// lead makes sure this instance holds the projector's lock, or returns
// engine.ErrNotLeader. The caller holds d.mu.
func (d *driver) lead(ctx context.Context) error {
	if d.crashed.Load() {
		return errCrashed
	}
	if d.lock != nil && d.lock.IsClosed() {
		d.drop()
	}
	if d.leading {
		return nil
	}
	if d.lock == nil {
		conn, err := pgx.ConnectConfig(ctx, d.cfg)
		if err != nil {
			return fmt.Errorf("projector connection: %w", err)
		}
		d.lock = conn
	}
	var (
		ok bool
		s  session
	)
	if err := d.lock.QueryRow(ctx, leadSQL, d.schema).Scan(&ok, &s.pid, &s.start); err != nil {
		d.drop()
		return fmt.Errorf("projector lock: %w", err)
	}
	if !ok {
		if d.zombie != (session{}) {
			var ended bool
			if err := d.lock.QueryRow(ctx, endZombieSQL, d.schema, d.zombie.pid, d.zombie.start).Scan(&ended); err != nil {
				d.drop()
				return fmt.Errorf("end this instance's previous projector session: %w", err)
			}
			if !ended { // gone, or another instance holds the lock
				d.zombie = session{}
			}
			// Ended: the lock is free once the session has exited; the
			// next try takes it.
		}
		return engine.ErrNotLeader
	}
	// Leading again after losing the lock is safe as it is: if another
	// instance projected meanwhile, the engine learnt it either from a
	// notification (Advance drops its cached records) or from Save's fence
	// (ErrMoved does).
	d.leading, d.held, d.zombie = true, s, session{}
	return nil
}

// drop closes the lock connection, which releases the lock with the
// session. The caller holds d.mu.
func (d *driver) drop() {
	if d.lock != nil {
		d.lock.Close(context.Background())
		d.lock = nil
	}
	if d.leading {
		d.leading, d.zombie = false, d.held
	}
}

// close releases the lock for good (Close).
func (d *driver) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.drop()
}

// claim takes the projector's lock for a rebuild, or says who has it.
func (d *driver) claim(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.lead(ctx); err != nil && !(errors.Is(err, engine.ErrNotLeader) && d.leading) {
		return err
	}
	return nil
}

// ReadLog implements engine.Driver: up to limit rows after pos in (tx, id)
// order, only rows of transactions older than every transaction still
// running anywhere in the cluster (pg_snapshot_xmin of the statement's
// snapshot), so that no transaction can still commit a row behind them.
// The query runs on the lock connection: its success also says that the
// session, and with it the lock, is alive.
func (d *driver) ReadLog(ctx context.Context, after engine.LogPos, limit int) (_ []engine.Row, err error) {
	ctx, done := d.bound(ctx, 1)
	defer func() { err = done(err) }()
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.lead(ctx); err != nil {
		return nil, err
	}
	// Qualified names: "ORDER BY tx" would sort by the output column
	// tx::text ("10" < "9"), and by a sort instead of the (tx, id) index.
	rows, err := d.lock.Query(ctx, `SELECT l.tx::text, l.id, l.received_at, l.body FROM log l
		WHERE l.tx < pg_snapshot_xmin(pg_current_snapshot()) AND (l.tx, l.id) > ($1::text::xid8, $2)
		ORDER BY l.tx, l.id LIMIT $3`, strconv.FormatUint(after.Tx, 10), after.ID, limit)
	if err != nil {
		d.drop()
		return nil, fmt.Errorf("read log: %w", err)
	}
	defer rows.Close()
	var out []engine.Row
	for rows.Next() {
		var (
			r  engine.Row
			tx string
		)
		if err := rows.Scan(&tx, &r.Log.ID, &r.ReceivedAt, &r.Body); err != nil {
			d.drop()
			return nil, fmt.Errorf("read log: %w", err)
		}
		if r.Log, err = logPos(tx, r.Log.ID); err != nil {
			return nil, fmt.Errorf("read log: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		d.drop()
		return nil, fmt.Errorf("read log: %w", err)
	}
	return out, nil
}

// LoadRecords implements engine.Driver.
func (d *driver) LoadRecords(ctx context.Context, ids []string) (_ map[string][]byte, err error) {
	if d.crashed.Load() {
		return nil, errCrashed
	}
	ctx, done := d.bound(ctx, 1)
	defer func() { err = done(err) }()
	rows, err := d.pool.Query(ctx, `SELECT record_id, state FROM recordings WHERE record_id = ANY($1)`, ids)
	if err != nil {
		return nil, fmt.Errorf("load records: %w", err)
	}
	defer rows.Close()
	out := make(map[string][]byte, len(ids))
	for rows.Next() {
		var (
			id   string
			blob []byte
		)
		if err := rows.Scan(&id, &blob); err != nil {
			return nil, fmt.Errorf("load records: %w", err)
		}
		out[id] = blob
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load records: %w", err)
	}
	return out, nil
}

// Watermark implements engine.Driver.
func (d *driver) Watermark(ctx context.Context) (_ engine.Position, err error) {
	if d.crashed.Load() {
		return engine.Position{}, errCrashed
	}
	ctx, done := d.bound(ctx, 1)
	defer func() { err = done(err) }()
	var (
		p  engine.Position
		tx string
	)
	var removals int64
	if err := d.pool.QueryRow(ctx, `SELECT seq, tx::text, log_id, removals FROM projection WHERE id = 1`).Scan(&p.Seq, &tx, &p.Log.ID, &removals); err != nil {
		return engine.Position{}, fmt.Errorf("read watermark: %w", err)
	}
	// Only the first reading (at start, the cache empty) is taken: later
	// ones would let a stale cache pass the fence (see removals).
	if !d.removalsRead.Swap(true) {
		d.removals.Store(removals)
	}
	p.Log, err = logPos(tx, p.Log.ID)
	return p, err
}

// DueRecords implements engine.Driver.
func (d *driver) DueRecords(ctx context.Context, now int64, limit int) (_ []string, err error) {
	if d.crashed.Load() {
		return nil, errCrashed
	}
	ctx, done := d.bound(ctx, 1)
	defer func() { err = done(err) }()
	rows, err := d.pool.Query(ctx, `SELECT record_id FROM recordings WHERE due_at <= $1 ORDER BY due_at LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("recordings due: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("recordings due: %w", err)
	}
	return ids, nil
}

// Reset implements engine.Driver. Activity keeps its rejected counts; its
// callback counts start over with the feed, which counts them again.
func (d *driver) Reset(ctx context.Context) (err error) {
	if d.crashed.Load() {
		return errCrashed
	}
	ctx, done := d.bound(ctx, 4)
	defer func() { err = done(err) }()
	b := &pgx.Batch{}
	b.Queue(`TRUNCATE feed, recordings, files, totals`)
	b.Queue(`UPDATE activity SET callbacks = 0, duplicates = 0`)
	b.Queue(`UPDATE projection SET seq = 0, tx = '0', log_id = 0 WHERE id = 1`)
	if err := d.pool.SendBatch(ctx, b).Close(); err != nil { // one implicit transaction
		return fmt.Errorf("reset projections: %w", err)
	}
	return nil
}

// Save implements engine.Driver: one transaction whose first statement
// moves the watermark from b.From to b.To, and finds nothing to move (so
// the step is rolled back: engine.ErrMoved) when another projector moved
// it. Its row lock then keeps a concurrent projector waiting until this
// one commits, after which the other's condition fails in turn.
func (d *driver) Save(ctx context.Context, b *engine.Batch) (err error) {
	if d.crashed.Load() {
		return errCrashed
	}
	ctx, done := d.bound(ctx, 4)
	defer func() { err = done(err) }()
	moved := false
	err = pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		batch := &pgx.Batch{}
		batch.Queue(`UPDATE projection SET seq = $1, tx = $2::text::xid8, log_id = $3
			WHERE id = 1 AND seq = $4 AND tx = $5::text::xid8 AND log_id = $6 AND removals = $7`,
			b.To.Seq, strconv.FormatUint(b.To.Log.Tx, 10), b.To.Log.ID,
			b.From.Seq, strconv.FormatUint(b.From.Log.Tx, 10), b.From.Log.ID, d.removals.Load()).Exec(func(ct pgconn.CommandTag) error {
			if ct.RowsAffected() != 1 {
				moved = true
				return engine.ErrMoved
			}
			return nil
		})
		queueFeed(batch, b.Events)
		queueRecords(batch, b.Records)
		queueOutbound(batch, b.Outbound)
		queueTotals(batch, b.Totals)
		queueMinutes(batch, b.Minutes)
		batch.Queue(`SELECT pg_notify($1, $2)`, channel, projectedPayload(d.schema, b.To))
		return tx.SendBatch(ctx, batch).Close()
	})
	if moved {
		return d.whyMoved(ctx, b.From)
	}
	if err != nil {
		return fmt.Errorf("save projections: %w", err)
	}
	return nil
}

// whyMoved tells a fence that failed because recordings were removed
// (the position is still from: engine.ErrRemoved, and the count of
// removals is taken) from one another projector moved (engine.ErrMoved).
func (d *driver) whyMoved(ctx context.Context, from engine.Position) error {
	var (
		p        engine.Position
		tx       string
		removals int64
	)
	err := d.pool.QueryRow(ctx, `SELECT seq, tx::text, log_id, removals FROM projection WHERE id = 1`).Scan(&p.Seq, &tx, &p.Log.ID, &removals)
	if err == nil {
		p.Log, err = logPos(tx, p.Log.ID)
	}
	if err != nil || p != from {
		return engine.ErrMoved
	}
	d.removals.Store(removals)
	return engine.ErrRemoved
}

func queueFeed(batch *pgx.Batch, events []engine.Logged) {
	seqs, ids, dups := make([]int64, len(events)), make([]int64, len(events)), make([]bool, len(events))
	for i, e := range events {
		seqs[i], ids[i], dups[i] = e.Seq, e.Log.ID, e.Duplicate
	}
	batch.Queue(`INSERT INTO feed (seq, log_id, duplicate) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::boolean[])`, seqs, ids, dups)
}

// queueRecords writes the records (their filter columns and encoding) and
// the file rows that changed, two statements for all.
func queueRecords(batch *pgx.Batch, saved []engine.Saved) {
	n := len(saved)
	if n == 0 {
		return
	}
	var (
		ids, apps, rooms, sessions, users, statuses, uploads = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		modes, fileCounts, uploaded                          = make([]int32, n), make([]int32, n), make([]int32, n)
		started, ended                                       = make([]*int64, n), make([]*int64, n)
		firstSeq, firstSeen, lastEvent                       = make([]int64, n), make([]int64, n), make([]int64, n)
		due                                                  = make([]*int64, n)
		blobs                                                = make([][]byte, n)
		fileNames, fileRecs                                  []string
	)
	for i := range saved {
		st := &saved[i].Record.State
		ids[i], apps[i], rooms[i], sessions[i], users[i] = st.RecordID, st.AppKey, st.RoomID, st.SessionID, st.UserID
		statuses[i], uploads[i] = string(st.Status()), string(st.BaseUploadState())
		modes[i], fileCounts[i], uploaded[i] = int32(st.Mode), int32(len(st.Files)), int32(st.UploadedCount())
		if st.StartFrom != nil {
			started[i] = &st.StartFrom.Timestamp
		}
		ended[i], firstSeen[i], lastEvent[i] = st.EndReceivedAt, st.FirstSeenAt, st.LastEventAt
		firstSeq[i], blobs[i] = saved[i].Record.FirstSeq, saved[i].Blob
		if saved[i].DueAt != 0 {
			due[i] = &saved[i].DueAt
		}
		for _, name := range saved[i].NewFiles {
			fileNames, fileRecs = append(fileNames, name), append(fileRecs, st.RecordID)
		}
	}
	batch.Queue(`INSERT INTO recordings AS r (record_id, first_seq, app_key, room_id, session_id, user_id, mode, status, upload_state,
			started_at, end_received_at, first_seen_at, last_event_at, file_count, uploaded_count, state, due_at)
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::text[], $9::text[],
			$10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[], $14::int[], $15::int[], $16::bytea[], $17::bigint[])
		ON CONFLICT (record_id) DO UPDATE SET app_key = excluded.app_key, room_id = excluded.room_id, session_id = excluded.session_id,
			user_id = excluded.user_id, mode = excluded.mode, status = excluded.status, upload_state = excluded.upload_state,
			started_at = excluded.started_at, end_received_at = excluded.end_received_at, first_seen_at = excluded.first_seen_at,
			last_event_at = excluded.last_event_at, file_count = excluded.file_count, uploaded_count = excluded.uploaded_count,
			state = excluded.state, due_at = excluded.due_at`,
		ids, firstSeq, apps, rooms, sessions, users, modes, statuses, uploads, started, ended, firstSeen, lastEvent, fileCounts, uploaded, blobs, due)
	var changedIDs []string
	var changed []int64
	for i := range saved {
		if saved[i].FindingsChanged {
			changedIDs, changed = append(changedIDs, ids[i]), append(changed, int64(saved[i].Findings))
		}
	}
	if len(changedIDs) > 0 { // rarely: most saves leave the findings column alone
		batch.Queue(`UPDATE recordings AS r SET findings = u.f FROM unnest($1::text[], $2::bigint[]) AS u(id, f) WHERE r.record_id = u.id`,
			changedIDs, changed)
	}
	if len(fileNames) > 0 {
		hashes := make([]int64, len(fileNames))
		for i, name := range fileNames {
			hashes[i] = engine.NameHash(name)
		}
		batch.Queue(`INSERT INTO files (name_hash, record_id) SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT DO NOTHING`,
			hashes, fileRecs)
	}
}

// queueOutbound adds the step's events to the outbox, in order: their seqs
// are drawn after the watermark's row lock is taken, so one projector at a
// time draws them and they commit in seq order.
func queueOutbound(batch *pgx.Batch, out []engine.Outbound) {
	if len(out) == 0 {
		return
	}
	n := len(out)
	ids, types, recs, apps, rooms := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	at, payloads := make([]int64, n), make([][]byte, n)
	for i, o := range out {
		ids[i], types[i], recs[i], apps[i], rooms[i], at[i], payloads[i] = o.ID, o.Type, o.RecordID, o.AppKey, o.RoomID, o.At, o.Payload
	}
	batch.Queue(`INSERT INTO outbound (event_id, type, record_id, app_key, room_id, at, committed_at, payload)
		SELECT e, t, r, a, m, w, $8::bigint, p
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bytea[]) WITH ORDINALITY AS u(e, t, r, a, m, w, p, o)
		ORDER BY o`, ids, types, recs, apps, rooms, at, payloads, time.Now().UnixMilli())
}

// queueTotals adds a batch's change of the totals, one statement for all
// cells, in the cells' fixed order.
func queueTotals(batch *pgx.Batch, c ledger.TotalsChange) {
	cells := c.Cells()
	if len(cells) == 0 {
		return
	}
	statuses, uploads := make([]string, len(cells)), make([]string, len(cells))
	recordings, pending := make([]int64, len(cells)), make([]int64, len(cells))
	for i, k := range cells {
		statuses[i], uploads[i], recordings[i], pending[i] = string(k.Status), string(k.Upload), c[k].Recordings, c[k].PendingFiles
	}
	batch.Queue(`INSERT INTO totals AS t (status, upload_state, recordings, pending_files)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
		ON CONFLICT (status, upload_state) DO UPDATE SET recordings = t.recordings + excluded.recordings,
			pending_files = t.pending_files + excluded.pending_files`, statuses, uploads, recordings, pending)
}
