package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

type op struct {
	in  *ledger.Incoming
	rej *ledger.Rejection
}

// Append implements ledger.Store: it waits for the group commit that
// includes the callback, projections and feed seq included.
func (s *Store) Append(ctx context.Context, in ledger.Incoming) (ledger.Appended, error) {
	a, err := s.batcher.Submit(ctx, op{in: &in})
	if err != nil {
		return ledger.Appended{}, fmt.Errorf("append callback %s: %w", in.Callback.RecordID, err)
	}
	return a, nil
}

// Quarantine implements ledger.Store.
func (s *Store) Quarantine(ctx context.Context, r ledger.Rejection) error {
	if len(r.Body) > ledger.MaxQuarantineBody {
		r.Body = r.Body[:ledger.MaxQuarantineBody]
	}
	if _, err := s.batcher.Submit(ctx, op{rej: &r}); err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

// Remember implements rc.ReplayMemory against the shared table, so a
// signature accepted by one instance is known to all. The insert commits
// asynchronously: it is flushed to disk, at the latest, with the commit of
// the callback it signed, which is synchronous and later in the same WAL.
func (s *Store) Remember(ctx context.Context, key rc.ReplayKey, digest [32]byte, until time.Time) (rc.ReplayVerdict, error) {
	verdict := rc.ReplayFirst
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO replay (app_key, nonce, timestamp, body_digest, until) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (app_key, nonce, timestamp) DO NOTHING`, key.AppKey, key.Nonce, key.Timestamp, digest[:], until.UnixMilli())
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		var (
			seen    []byte
			expires int64
		)
		if err := tx.QueryRow(ctx, `SELECT body_digest, until FROM replay WHERE app_key = $1 AND nonce = $2 AND timestamp = $3 FOR UPDATE`,
			key.AppKey, key.Nonce, key.Timestamp).Scan(&seen, &expires); err != nil {
			return err
		}
		if expires <= s.opts.Now().UnixMilli() { // an expired entry: remember this one instead
			_, err := tx.Exec(ctx, `UPDATE replay SET body_digest = $4, until = $5 WHERE app_key = $1 AND nonce = $2 AND timestamp = $3`,
				key.AppKey, key.Nonce, key.Timestamp, digest[:], until.UnixMilli())
			return err
		}
		if string(seen) == string(digest[:]) {
			verdict = rc.ReplaySameBody
		} else {
			verdict = rc.ReplayOtherBody
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("replay memory: %w", err)
	}
	return verdict, nil
}

// commit is the group-commit function: one transaction for the batch.
func (s *Store) commit(ctx context.Context, ops []op) (results []ledger.Appended, err error) {
	if s.opts.OnCommit != nil {
		start := time.Now()
		defer func() {
			rej := 0
			for _, o := range ops {
				if o.rej != nil {
					rej++
				}
			}
			s.opts.OnCommit(len(ops)-rej, rej, time.Since(start), err)
		}()
	}
	s.mu.Lock()
	s.commits++
	prune := s.commits%1000 == 1
	s.mu.Unlock()

	results = make([]ledger.Appended, len(ops))
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var (
			ids       = make([]int64, 0, len(ops))
			idIndex   = map[int64]int{}
			byRecord  = map[string][]*ledger.Incoming{}
			rejected  bool
			recordIDs []string
		)
		for i, o := range ops {
			if o.rej != nil {
				if err := insertRejection(ctx, tx, o.rej); err != nil {
					return err
				}
				rejected = true
				continue
			}
			id, dup, err := insertEvent(ctx, tx, o.in)
			if err != nil {
				return err
			}
			ids = append(ids, id)
			idIndex[id] = i
			results[i].Duplicate = dup
			if !dup {
				if _, ok := byRecord[o.in.Callback.RecordID]; !ok {
					recordIDs = append(recordIDs, o.in.Callback.RecordID)
				}
				byRecord[o.in.Callback.RecordID] = append(byRecord[o.in.Callback.RecordID], o.in)
			}
		}
		// Row locks in one order everywhere: two instances cannot deadlock.
		sort.Strings(recordIDs)
		for _, id := range recordIDs {
			if err := project(ctx, tx, id, byRecord[id]); err != nil {
				return err
			}
		}
		if rejected {
			if err := s.capQuarantine(ctx, tx); err != nil {
				return err
			}
		}
		if prune {
			if _, err := tx.Exec(ctx, `DELETE FROM replay WHERE until <= $1`, s.opts.Now().UnixMilli()); err != nil {
				return fmt.Errorf("prune replay memory: %w", err)
			}
		}
		if len(ids) == 0 {
			return nil
		}
		// Last, the feed seq: under a lock held until commit, so seqs follow
		// commit order across instances and a rolled-back batch leaves no gap.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('recledger_feed'))`); err != nil {
			return fmt.Errorf("feed lock: %w", err)
		}
		var last int64
		if err := tx.QueryRow(ctx, `UPDATE feed SET last = last + $1 WHERE id = 1 RETURNING last`, len(ids)).Scan(&last); err != nil {
			return fmt.Errorf("feed seq: %w", err)
		}
		first := last - int64(len(ids)) + 1
		if _, err := tx.Exec(ctx, `UPDATE events e SET seq = $1 + v.n - 1 FROM unnest($2::bigint[]) WITH ORDINALITY AS v(id, n) WHERE e.id = v.id`,
			first, ids); err != nil {
			return fmt.Errorf("feed seq: %w", err)
		}
		for n, id := range ids {
			results[idIndex[id]].Seq = first + int64(n)
		}
		if len(recordIDs) > 0 {
			if _, err := tx.Exec(ctx, `UPDATE recordings r SET first_seq = (SELECT MIN(seq) FROM events e WHERE e.record_id = r.record_id AND NOT e.duplicate)
				WHERE r.record_id = ANY($1) AND r.first_seq IS NULL`, recordIDs); err != nil {
				return fmt.Errorf("first seq: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// insertEvent logs one callback, as an original or, when its identity is
// logged (by any instance, committed or in this transaction), as a
// duplicate.
func insertEvent(ctx context.Context, tx pgx.Tx, in *ledger.Incoming) (id int64, dup bool, err error) {
	cb := &in.Callback
	args := []any{in.ReceivedAt.UnixMilli(), cb.AppKey, cb.RecordID, int(cb.Type), cb.Timestamp, cb.Output.FileName, cb.Code,
		cb.ErrorMessage, ledger.IdentityHash(cb.Key()), cb.Raw}
	const insert = `INSERT INTO events (received_at, app_key, record_id, type, timestamp, file_name, code, error_message, dedupe_key, body, duplicate)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, `
	err = tx.QueryRow(ctx, insert+`false) ON CONFLICT (dedupe_key) WHERE NOT duplicate DO NOTHING RETURNING id`, args...).Scan(&id)
	if err == nil {
		return id, false, nil
	}
	if !isNoRows(err) {
		return 0, false, fmt.Errorf("append callback %s: %w", cb.RecordID, err)
	}
	if err := tx.QueryRow(ctx, insert+`true) RETURNING id`, args...).Scan(&id); err != nil {
		return 0, false, fmt.Errorf("append duplicate callback %s: %w", cb.RecordID, err)
	}
	return id, true, nil
}

// project applies a batch's callbacks to one recording under its row lock.
func project(ctx context.Context, tx pgx.Tx, recordID string, ins []*ledger.Incoming) error {
	// The row exists before it is locked, so that two instances creating
	// the same recording wait for each other instead of failing.
	if _, err := tx.Exec(ctx, `INSERT INTO recordings (record_id, app_key, room_id, session_id, user_id, mode, status, upload_state,
		first_seen_at, last_event_at, state) VALUES ($1, '', '', '', '', 0, 'recording', 'none', 0, 0, '{}') ON CONFLICT DO NOTHING`, recordID); err != nil {
		return fmt.Errorf("project %s: %w", recordID, err)
	}
	var raw []byte
	if err := tx.QueryRow(ctx, `SELECT state FROM recordings WHERE record_id = $1 FOR UPDATE`, recordID).Scan(&raw); err != nil {
		return fmt.Errorf("project %s: %w", recordID, err)
	}
	var st ledger.State
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("project %s: %w", recordID, err)
	}
	had := make(map[string]int64, len(st.Files))
	for name, f := range st.Files {
		had[name] = f.FirstSeenAt
	}
	for _, in := range ins {
		st = ledger.Apply(st, in.Callback, in.ReceivedAt.UnixMilli())
	}
	return saveState(ctx, tx, &st, had)
}

// saveState writes a recording and the file rows that changed.
func saveState(ctx context.Context, tx pgx.Tx, st *ledger.State, had map[string]int64) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("save recording %s: %w", st.RecordID, err)
	}
	var startedAt *int64
	if st.StartFrom != nil {
		startedAt = &st.StartFrom.Timestamp
	}
	_, err = tx.Exec(ctx, `UPDATE recordings SET app_key = $2, room_id = $3, session_id = $4, user_id = $5, mode = $6, status = $7,
		upload_state = $8, started_at = $9, end_received_at = $10, first_seen_at = $11, last_event_at = $12, file_count = $13,
		uploaded_count = $14, state = $15 WHERE record_id = $1`,
		st.RecordID, st.AppKey, st.RoomID, st.SessionID, st.UserID, int(st.Mode), string(st.Status()), string(st.BaseUploadState()),
		startedAt, st.EndReceivedAt, st.FirstSeenAt, st.LastEventAt, len(st.Files), st.UploadedCount(), raw)
	if err != nil {
		return fmt.Errorf("save recording %s: %w", st.RecordID, err)
	}
	for name, f := range st.Files {
		if seen, ok := had[name]; ok && seen == f.FirstSeenAt {
			continue
		}
		if _, err := tx.Exec(ctx, `INSERT INTO files (file_name, record_id, first_seen_at) VALUES ($1, $2, $3)
			ON CONFLICT (file_name, record_id) DO UPDATE SET first_seen_at = excluded.first_seen_at`, name, st.RecordID, f.FirstSeenAt); err != nil {
			return fmt.Errorf("save file %s: %w", name, err)
		}
	}
	return nil
}

func insertRejection(ctx context.Context, tx pgx.Tx, r *ledger.Rejection) error {
	header, err := json.Marshal(r.Header)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	body := r.Body
	if body == nil {
		body = []byte{}
	}
	_, err = tx.Exec(ctx, `INSERT INTO quarantine (at, status, reason, message, remote, method, path, header, body, body_size)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, r.At, r.Status, r.Reason, r.Message, r.Remote, r.Method, r.Path, header, body, r.BodySize)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	return nil
}

// capQuarantine keeps the newest rejections within the caps.
func (s *Store) capQuarantine(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `DELETE FROM quarantine WHERE id IN (
		SELECT id FROM (SELECT id, row_number() OVER w AS n, SUM(length(body)) OVER w AS total FROM quarantine
			WINDOW w AS (ORDER BY id DESC)) t
		WHERE n > $1 OR total > $2)`, s.opts.QuarantineMaxCount, s.opts.QuarantineMaxBytes)
	if err != nil {
		return fmt.Errorf("cap quarantine: %w", err)
	}
	return nil
}
