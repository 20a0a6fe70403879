package dashboard

import (
	"errors"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/recledger/recledger/internal/ledger"
)

// The dashboard's string filters, its recordId path and its search box are
// held to ledger.CheckLookup, the rule the API applies: a value no stored
// id can equal (NUL, another control character, invalid UTF-8, over the
// bound) never reaches the store, where PostgreSQL would refuse it (503)
// and SQLite find nothing. A filter or a search is answered 400 (the
// "Check the filter" page), a recordId path 404, as the API does. The
// pages never echo such a value.

// checkIDFilters returns a *badInput for the first of the filters (by
// query parameter name) that no stored value can equal.
func checkIDFilters(filters ...[2]string) error {
	for _, f := range filters {
		if err := ledger.CheckLookup(f[0], f[1]); err != nil {
			return &badInput{searchedBy[f[0]], lookupReason(err) + "; no recording can match"}
		}
	}
	return nil
}

// checkParams returns a *badInput naming the first query parameter, by
// name, that is not one of takes: a misspelt filter (roomid) ignored would
// widen the list, and a CSV a script downloads, to everything. The name is
// quoted and bounded, never echoed whole.
func checkParams(q url.Values, takes ...string) error {
	for _, name := range slices.Sorted(maps.Keys(q)) {
		if slices.Contains(takes, name) {
			continue
		}
		shown := name
		if len(shown) > 64 {
			shown = shown[:64] + "..."
		}
		reason := "unknown; this page takes " + strings.Join(takes, ", ")
		for _, t := range takes {
			if strings.EqualFold(t, name) {
				reason = "unknown; did you mean " + t + "?"
			}
		}
		return &badInput{"parameter " + strconv.Quote(shown), reason}
	}
	return nil
}

// checkSearch returns a *badInput when q can be none of what search looks
// for. The file name's bound is the widest, and the character rule is the
// same for every id, so q passing it can still match something.
func checkSearch(q string) error {
	if err := ledger.CheckLookup("fileName", q); err != nil {
		return &badInput{"search", lookupReason(err) + "; no recordId, file name or id can hold it"}
	}
	return nil
}

// checkRecordID returns a *notFound, not echoing id, when no recording can
// have it.
func checkRecordID(id string) error {
	if err := ledger.CheckLookup("recordId", id); err != nil {
		return &notFound{"No recording can have that recordId: " + lookupReason(err) + "."}
	}
	return nil
}

func lookupReason(err error) string {
	if fe, ok := errors.AsType[*ledger.FieldError](err); ok {
		return fe.Reason
	}
	return err.Error()
}
