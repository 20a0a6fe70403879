package dashboard

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/recledger/recledger/internal/ledger"
)

// Verifications is what the dashboard reads and asks of storage
// verification (ledger.Verifications): a store that offers it has each
// file's check shown, the overview counts the files missing in storage,
// and, with Options.VerifyStorage, a recording's files can be checked
// again.
type Verifications interface {
	FileVerifications(ctx context.Context, recordID string) (map[string]ledger.Verification, error)
	VerificationCounts(ctx context.Context, states ...ledger.VerificationState) (map[ledger.VerificationState]int64, error)
	Recheck(ctx context.Context, f ledger.RecheckFilter, now int64) (int64, error)
}

// verificationOptions are the recordings filter's storage choices.
var verificationOptions = func() []option {
	out := []option{{"", "any"}}
	for _, s := range ledger.VerificationStates {
		out = append(out, option{string(s), string(s)})
	}
	return out
}()

// verifications returns the store's storage checks, nil when it keeps none.
func (d *Dashboard) verifications() Verifications {
	v, _ := d.store.(Verifications)
	return v
}

// storageMissing is the overview's count of files not found as RC
// reported them: missing, or of another size. The overview shows it while
// verification runs, or while checks made found some.
type storageMissing struct {
	Missing, SizeMismatch int64
}

// Total is both.
func (s storageMissing) Total() int64 { return s.Missing + s.SizeMismatch }

func (d *Dashboard) storageMissing(ctx context.Context) (*storageMissing, error) {
	v := d.verifications()
	if v == nil {
		return nil, nil
	}
	// Only these two states: the overview is read again on every live
	// refresh, and counting every check (most verified) grows with the
	// store.
	counts, err := v.VerificationCounts(ctx, ledger.VerifyMissing, ledger.VerifySizeMismatch)
	if err != nil {
		return nil, err
	}
	if len(counts) == 0 && !d.opts.VerifyStorage {
		return nil, nil // off, and nothing found missing: the overview says nothing of it
	}
	return &storageMissing{Missing: counts[ledger.VerifyMissing], SizeMismatch: counts[ledger.VerifySizeMismatch]}, nil
}

// recheck checks a recording's files in storage again (the recording
// page's button), then shows the page with how many were queued.
func (d *Dashboard) recheck(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("recordId")
	if err := checkRecordID(id); err != nil {
		return err
	}
	v := d.verifications()
	if !d.opts.VerifyStorage || v == nil {
		return &badInput{"storage check", "storage verification is off: start recledger serve with --verify-storage"}
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	if _, err := d.store.Recording(ctx, id); errors.Is(err, ledger.ErrNotFound) {
		return &notFound{"No recording has the recordId " + strconv.Quote(id) + "."}
	} else if err != nil {
		return err
	}
	n, err := v.Recheck(ctx, ledger.RecheckFilter{RecordID: id}, d.opts.Now().UnixMilli())
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/recordings/"+url.PathEscape(id)+"?rechecked="+strconv.FormatInt(n, 10)+"#files", http.StatusSeeOther)
	return nil
}
