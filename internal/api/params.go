package api

import (
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/recledger/recledger/internal/ledger"
)

// The one check of the API's string filters and path ids: a value that
// breaks ledger.CheckStorable's rule for its field (over the bound, a
// control character such as NUL, invalid UTF-8) can equal nothing stored,
// and PostgreSQL refuses NUL and invalid UTF-8 even as a parameter (a 5xx
// there, an empty answer on SQLite). It is refused before the store, the
// same way on both backends:
//   - a query filter with 400 bad_parameter naming the parameter: a filter
//     that can never match is a client's mistake (a mangled paste, a
//     broken script), and an empty 200 list would hide it; the list
//     endpoints answer their other unusable parameters 400 already.
//   - a path id with 404 not_found: the path names a resource that cannot
//     exist, which is what 404 says; clients (the CLI, links) already treat
//     an unknown id as 404, and the message says why this one is unknown.
//
// Values that pass (emoji, quotes, SQL text) go to the store as
// parameters and simply match nothing.

// idFilter returns the query parameter name ("appKey", "roomId",
// "sessionId" or "userId"), empty when absent, or a *badParam.
func idFilter(q url.Values, name string) (string, error) {
	v := q.Get(name)
	if err := ledger.CheckLookup(name, v); err != nil {
		return "", &badParam{name, fieldReason(err) + "; no stored value can match"}
	}
	return v, nil
}

// pathID returns the path value name ("recordId" or "fileName"), or an
// error answered 404.
func pathID(r *http.Request, name string) (string, error) {
	v := r.PathValue(name)
	if err := ledger.CheckLookup(name, v); err != nil {
		return "", &notFoundParam{name, fieldReason(err)}
	}
	return v, nil
}

// notFoundParam is a path id no stored value can equal: 404, with why.
type notFoundParam struct{ name, reason string }

func (e *notFoundParam) Error() string {
	return "not found: " + e.name + " " + e.reason + "; no stored value can have it"
}

// Is makes errors.Is(err, errNotFound) true: the answer is 404 not_found.
func (e *notFoundParam) Is(target error) bool { return target == errNotFound }

// fieldReason is a ledger.FieldError's rule without the "unstorable
// callback" framing (this is a read, not a callback).
func fieldReason(err error) string {
	if fe, ok := errors.AsType[*ledger.FieldError](err); ok {
		return fe.Reason
	}
	return err.Error()
}

// unknownParam is a query parameter the endpoint does not read. Ignoring
// it would answer as if it were absent: a misspelled filter (roomid for
// roomId) would widen the answer to everything.
type unknownParam struct {
	name  string
	takes []string
}

func (e *unknownParam) Error() string {
	name := e.name
	if len(name) > 64 { // a hostile name is not echoed whole
		name = name[:64] + "..."
	}
	msg := "unknown query parameter " + strconv.Quote(name)
	for _, t := range e.takes {
		if strings.EqualFold(t, e.name) {
			return msg + "; did you mean " + t + "?"
		}
	}
	if len(e.takes) == 0 {
		return msg + "; this endpoint takes none"
	}
	return msg + "; this endpoint takes " + strings.Join(e.takes, ", ")
}

// checkQuery refuses the first query parameter, in name order, that is
// not one of takes (what the endpoint declares it reads; see guard).
func checkQuery(q url.Values, takes []string) error {
	if len(q) == 0 {
		return nil
	}
	names := slices.Sorted(maps.Keys(q))
	for _, n := range names {
		if !slices.Contains(takes, n) {
			return &unknownParam{name: n, takes: takes}
		}
	}
	return nil
}

// timeRange reads the since and until parameters (Unix ms, inclusive) the
// list routes share; nil where absent.
func timeRange(q url.Values) (since, until *int64, err error) {
	for _, p := range []struct {
		name string
		dst  **int64
	}{{"since", &since}, {"until", &until}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, nil, &badParam{p.name, "want Unix milliseconds"}
			}
			*p.dst = &n
		}
	}
	return since, until, nil
}
