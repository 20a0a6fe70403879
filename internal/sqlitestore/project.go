package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// projector applies a batch's callbacks to the recordings they concern, in
// the batch's transaction, loading each recording once and saving it once.
type projector struct {
	tx     *sql.Tx
	stmts  *writeStmts
	states map[string]*projected
}

type projected struct {
	state ledger.State
	files map[string]bool // files the batch touched
}

func (p *projector) apply(ctx context.Context, cb rc.Callback, receivedAt int64) error {
	pr, ok := p.states[cb.RecordID]
	if !ok {
		pr = &projected{files: map[string]bool{}}
		var raw []byte
		err := p.tx.StmtContext(ctx, p.stmts.loadState).QueryRowContext(ctx, cb.RecordID).Scan(&raw)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return fmt.Errorf("load recording %s: %w", cb.RecordID, err)
		default:
			if err := json.Unmarshal(raw, &pr.state); err != nil {
				return fmt.Errorf("load recording %s: %w", cb.RecordID, err)
			}
		}
		p.states[cb.RecordID] = pr
	}
	pr.state = ledger.Apply(pr.state, cb, receivedAt)
	if cb.Output.FileName != "" {
		if _, ok := pr.state.Files[cb.Output.FileName]; ok {
			pr.files[cb.Output.FileName] = true
		}
	}
	return nil
}

// save writes every recording the batch changed, in a fixed order.
func (p *projector) save(ctx context.Context) error {
	ids := make([]string, 0, len(p.states))
	for id := range p.states {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		pr := p.states[id]
		if err := saveState(ctx, p.tx, p.stmts, &pr.state, pr.files); err != nil {
			return err
		}
	}
	return nil
}

func saveState(ctx context.Context, tx *sql.Tx, st *writeStmts, s *ledger.State, files map[string]bool) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("save recording %s: %w", s.RecordID, err)
	}
	var startedAt *int64
	if s.StartFrom != nil {
		startedAt = &s.StartFrom.Timestamp
	}
	_, err = tx.StmtContext(ctx, st.saveState).ExecContext(ctx, s.RecordID, s.AppKey, s.RoomID, s.SessionID, s.UserID,
		int64(s.Mode), string(s.Status()), string(s.BaseUploadState()), startedAt, s.EndReceivedAt, s.FirstSeenAt, s.LastEventAt, raw)
	if err != nil {
		return fmt.Errorf("save recording %s: %w", s.RecordID, err)
	}
	for name := range files {
		f := s.FileView(name)
		if _, err := tx.StmtContext(ctx, st.saveFile).ExecContext(ctx, name, s.RecordID, string(f.UploadStatus), f.FirstSeenAt); err != nil {
			return fmt.Errorf("save file %s: %w", name, err)
		}
	}
	return nil
}
