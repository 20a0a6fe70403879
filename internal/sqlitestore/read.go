package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
)

// Reads first wait for the engine (engine.Fresh): a read issued after a
// callback's 200 sees it.

// Recording implements ledger.Store.
func (s *Store) Recording(ctx context.Context, recordID string) (ledger.State, error) {
	rec, err := s.record(ctx, recordID)
	return rec.State, err
}

func (s *Store) record(ctx context.Context, recordID string) (engine.Record, error) {
	if err := s.eng.Fresh(ctx); err != nil {
		return engine.Record{}, fmt.Errorf("read recording %s: %w", recordID, err)
	}
	var blob []byte
	err := s.ledgerReader.QueryRowContext(ctx, `SELECT state FROM recordings WHERE record_id = ?`, recordID).Scan(&blob)
	if errors.Is(err, sql.ErrNoRows) {
		return engine.Record{}, fmt.Errorf("recording %s: %w", recordID, ledger.ErrNotFound)
	}
	if err != nil {
		return engine.Record{}, fmt.Errorf("read recording %s: %w", recordID, err)
	}
	rec, err := engine.DecodeRecord(blob)
	if err != nil {
		return engine.Record{}, fmt.Errorf("read recording %s: %w", recordID, err)
	}
	return rec, nil
}

// RecordingEvents implements ledger.Store: the recording's event index
// names its rows of the log.
func (s *Store) RecordingEvents(ctx context.Context, recordID string) ([]ledger.Event, error) {
	rec, err := s.record(ctx, recordID)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dup := make(map[int64]bool, len(rec.Events))
	seqs := make([]int64, len(rec.Events))
	for i, e := range rec.Events {
		seqs[i], dup[e.Seq] = e.Seq, e.Duplicate
	}
	var out []ledger.Event
	for chunk := range chunks(seqs, 500) {
		evs, err := s.logEvents(ctx, `SELECT seq, received_at, body FROM log WHERE seq IN (`+marks(len(chunk))+`) ORDER BY seq`,
			func(seq int64) bool { return dup[seq] }, anys(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("read events of %s: %w", recordID, err)
		}
		out = append(out, evs...)
	}
	return out, nil
}

// Events implements ledger.Store: the log up to what is projected (so
// each event's duplicate mark is known).
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]ledger.Event, error) {
	if err := s.eng.FreshFeed(ctx, after, limit); err != nil {
		return nil, fmt.Errorf("read events after %d: %w", after, err)
	}
	upTo := s.eng.Projected().Seq
	dups, err := s.duplicatesIn(ctx, after, upTo)
	if err != nil {
		return nil, fmt.Errorf("read events after %d: %w", after, err)
	}
	evs, err := s.logEvents(ctx, `SELECT seq, received_at, body FROM log WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
		func(seq int64) bool { return dups[seq] }, after, upTo, limit)
	if err != nil {
		return nil, fmt.Errorf("read events after %d: %w", after, err)
	}
	return evs, nil
}

// LatestEvents implements ledger.Store.
func (s *Store) LatestEvents(ctx context.Context, n int) ([]ledger.Event, error) {
	if err := s.eng.Fresh(ctx); err != nil {
		return nil, fmt.Errorf("read latest events: %w", err)
	}
	upTo := s.eng.Projected().Seq
	dups, err := s.duplicatesIn(ctx, max(0, upTo-int64(n)), upTo)
	if err != nil {
		return nil, fmt.Errorf("read latest events: %w", err)
	}
	evs, err := s.logEvents(ctx, `SELECT seq, received_at, body FROM log WHERE seq <= ? ORDER BY seq DESC LIMIT ?`,
		func(seq int64) bool { return dups[seq] }, upTo, n)
	if err != nil {
		return nil, fmt.Errorf("read latest events: %w", err)
	}
	slices.Reverse(evs)
	return evs, nil
}

// duplicatesIn returns the duplicates among the seqs after from up to to.
func (s *Store) duplicatesIn(ctx context.Context, from, to int64) (map[int64]bool, error) {
	rows, err := s.ledgerReader.QueryContext(ctx, `SELECT seq FROM duplicates WHERE seq > ? AND seq <= ?`, from, to)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var seq int64
		if err := rows.Scan(&seq); err != nil {
			return nil, err
		}
		out[seq] = true
	}
	return out, rows.Err()
}

// logEvents reads rows of (seq, received_at, body) from the log as events.
func (s *Store) logEvents(ctx context.Context, q string, duplicate func(int64) bool, args ...any) ([]ledger.Event, error) {
	rows, err := s.reader.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ledger.Event
	for rows.Next() {
		var (
			seq, at int64
			body    []byte
		)
		if err := rows.Scan(&seq, &at, &body); err != nil {
			return nil, err
		}
		out = append(out, engine.Event(seq, at, body, duplicate(seq)))
	}
	return out, rows.Err()
}

// QuarantineList implements ledger.Store.
func (s *Store) QuarantineList(ctx context.Context, before int64, limit int) ([]ledger.Rejection, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT id, at, status, reason, app_key, message, remote, method, path, header, body, body_size
		FROM quarantine WHERE id < ? ORDER BY id DESC LIMIT ?`, before, limit)
	if err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	defer rows.Close()
	var out []ledger.Rejection
	for rows.Next() {
		var (
			r      ledger.Rejection
			header string
		)
		if err := rows.Scan(&r.ID, &r.At, &r.Status, &r.Reason, &r.AppKey, &r.Message, &r.Remote, &r.Method, &r.Path, &header, &r.Body, &r.BodySize); err != nil {
			return nil, fmt.Errorf("read quarantine: %w", err)
		}
		if err := json.Unmarshal([]byte(header), &r.Header); err != nil {
			return nil, fmt.Errorf("read quarantine %d: %w", r.ID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read quarantine: %w", err)
	}
	return out, nil
}
