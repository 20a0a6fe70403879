package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/recledger/recledger/internal/access"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/removal"
)

// Eraser removes everything that names a user (removal.Erase, with the
// store and clock bound): DELETE /v1/users/{userId}.
type Eraser func(ctx context.Context, userID, appKey string) (removal.Erasure, error)

// eraseTimeout bounds an erasure; the server's write timeout (15 s) bounds
// the answer, so a very large erasure answers 503 and, being idempotent,
// is finished by asking again.
const eraseTimeout = 14 * time.Second

// tokenOnly is guard with access.CheckBearer: for what only the holder of
// the API token may do. No session cookie, no loopback client without a
// token.
func (a *API) tokenOnly(h handler, takes ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := a.access.CheckBearer(r); err != nil {
			if errors.Is(err, access.ErrUnauthorized) {
				w.Header().Set("WWW-Authenticate", `Bearer realm="recledger"`)
			}
			if wait := access.RetryAfter(err); wait > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			}
			a.writeError(w, r, err)
			return
		}
		a.serve(h, false, takes).ServeHTTP(w, r)
	})
}

func (a *API) eraseUser(w http.ResponseWriter, r *http.Request) error {
	user := r.PathValue("userId")
	if user == "" {
		return &badParam{"userId", "empty"}
	}
	if err := ledger.CheckLookup("userId", user); err != nil {
		return &badParam{"userId", fieldReason(err)}
	}
	appKey, err := idFilter(r.URL.Query(), "appKey")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), eraseTimeout)
	defer cancel()
	got, err := a.opts.Erase(ctx, user, appKey)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, got)
	return nil
}
