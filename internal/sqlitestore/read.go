package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storesql"
)

// Recording implements ledger.Store.
func (s *Store) Recording(ctx context.Context, recordID string) (ledger.State, error) {
	if err := s.proj.wait(ctx); err != nil {
		return ledger.State{}, fmt.Errorf("read recording %s: %w", recordID, err)
	}
	var raw []byte
	err := s.ledgerReader.QueryRowContext(ctx, `SELECT state FROM recordings WHERE record_id = ?`, recordID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return ledger.State{}, fmt.Errorf("recording %s: %w", recordID, ledger.ErrNotFound)
	}
	if err != nil {
		return ledger.State{}, fmt.Errorf("read recording %s: %w", recordID, err)
	}
	var st ledger.State
	if err := json.Unmarshal(raw, &st); err != nil {
		return ledger.State{}, fmt.Errorf("read recording %s: %w", recordID, err)
	}
	return st, nil
}

const eventColumns = storesql.EventColumns

// RecordingEvents implements ledger.Store.
func (s *Store) RecordingEvents(ctx context.Context, recordID string) ([]ledger.Event, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE record_id = ? ORDER BY seq`, recordID)
	if err != nil {
		return nil, fmt.Errorf("read events of %s: %w", recordID, err)
	}
	return scanEvents(rows)
}

// Events implements ledger.Store.
func (s *Store) Events(ctx context.Context, after int64, limit int) ([]ledger.Event, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+eventColumns+` FROM events WHERE seq > ? ORDER BY seq LIMIT ?`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read events after %d: %w", after, err)
	}
	return scanEvents(rows)
}

// LatestEvents implements ledger.Store.
func (s *Store) LatestEvents(ctx context.Context, n int) ([]ledger.Event, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT `+eventColumns+` FROM events ORDER BY seq DESC LIMIT ?`, n)
	if err != nil {
		return nil, fmt.Errorf("read latest events: %w", err)
	}
	events, err := scanEvents(rows)
	slices.Reverse(events)
	return events, err
}

func scanEvents(rows *sql.Rows) ([]ledger.Event, error) {
	defer rows.Close()
	return storesql.ScanEvents(rows)
}

// QuarantineList implements ledger.Store.
func (s *Store) QuarantineList(ctx context.Context, before int64, limit int) ([]ledger.Rejection, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT id, at, status, reason, message, remote, method, path, header, body, body_size
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
		if err := rows.Scan(&r.ID, &r.At, &r.Status, &r.Reason, &r.Message, &r.Remote, &r.Method, &r.Path, &header, &r.Body, &r.BodySize); err != nil {
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
