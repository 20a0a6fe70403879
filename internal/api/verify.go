package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/recledger/recledger/internal/ledger"
)

// Verifications is what the API reads and asks of storage verification
// (ledger.Verifications): a store that offers it has its checks merged
// into the files it shows, and serves the re-check endpoints.
type Verifications interface {
	FileVerifications(ctx context.Context, recordID string) (map[string]ledger.Verification, error)
	Recheck(ctx context.Context, f ledger.RecheckFilter, now int64) (int64, error)
}

// errVerificationOff answers a re-check while --verify-storage is off:
// nothing would make the check.
var errVerificationOff = errors.New("storage verification is off: start recledger serve with --verify-storage to check uploaded files")

// verificationChoices says which values verification takes, for its error.
var verificationChoices = func() string {
	var s []string
	for _, v := range ledger.VerificationStates {
		s = append(s, string(v))
	}
	return strings.Join(s, ", ")
}()

// verificationParam reads the query parameter name as a verification
// state ("" when absent), or returns a *badParam.
func verificationParam(r *http.Request, name string) (ledger.VerificationState, error) {
	v := ledger.VerificationState(r.URL.Query().Get(name))
	for _, known := range ledger.VerificationStates {
		if v == "" || v == known {
			return v, nil
		}
	}
	return "", &badParam{name, "want " + verificationChoices}
}

// verifications returns the store's storage checks, nil when it keeps none.
func (a *API) verifications() Verifications {
	v, _ := a.store.(Verifications)
	return v
}

// fileVerifications returns recordID's checks by file name (nil when the
// store keeps none).
func (a *API) fileVerifications(ctx context.Context, recordID string) (map[string]ledger.Verification, error) {
	v := a.verifications()
	if v == nil {
		return nil, nil
	}
	return v.FileVerifications(ctx, recordID)
}

// withVerification sets the verification of each file that has one.
func withVerification(files []ledger.File, checks map[string]ledger.Verification) {
	for i := range files {
		if c, ok := checks[files[i].FileName]; ok {
			files[i].Verification = &c
		}
	}
}

// Queued is the answer of the re-check endpoints: how many checks were
// made due again.
type Queued struct {
	Queued int64 `json:"queued"`
}

// recheckable returns the store's checks when re-checks can be made.
func (a *API) recheckable() (Verifications, error) {
	v := a.verifications()
	if !a.opts.VerifyStorage || v == nil {
		return nil, errVerificationOff
	}
	return v, nil
}

// verifyRecording: POST /v1/recordings/{recordId}/verify.
func (a *API) verifyRecording(w http.ResponseWriter, r *http.Request) error {
	v, err := a.recheckable()
	if err != nil {
		return err
	}
	id, err := pathID(r, "recordId")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	if _, err := a.store.Recording(ctx, id); err != nil {
		return err
	}
	n, err := v.Recheck(ctx, ledger.RecheckFilter{RecordID: id}, a.opts.Now().UnixMilli())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, Queued{n})
	return nil
}

// verifyFile: POST /v1/files/{fileName}/verify, in every recording that
// holds a file of that name.
func (a *API) verifyFile(w http.ResponseWriter, r *http.Request) error {
	v, err := a.recheckable()
	if err != nil {
		return err
	}
	name, err := pathID(r, "fileName")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	states, err := a.fileRecordings(ctx, name)
	if err != nil {
		return err
	}
	var total int64
	now := a.opts.Now().UnixMilli()
	for _, st := range states {
		n, err := v.Recheck(ctx, ledger.RecheckFilter{RecordID: st.RecordID, FileName: name}, now)
		if err != nil {
			return err
		}
		total += n
	}
	writeJSON(w, http.StatusAccepted, Queued{total})
	return nil
}

// recheckState: POST /v1/verifications/recheck?state=STATE, every check
// in that state (the CLI's --all-missing).
func (a *API) recheckState(w http.ResponseWriter, r *http.Request) error {
	v, err := a.recheckable()
	if err != nil {
		return err
	}
	state, err := verificationParam(r, "state")
	if err != nil {
		return err
	}
	if state == "" {
		return &badParam{"state", "required: want " + verificationChoices}
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	n, err := v.Recheck(ctx, ledger.RecheckFilter{State: state}, a.opts.Now().UnixMilli())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, Queued{n})
	return nil
}
