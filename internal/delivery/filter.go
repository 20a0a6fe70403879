package delivery

import (
	"fmt"
	"slices"
	"strings"
)

// Filter selects the events a destination receives: the zero Filter
// selects every event. The fields are ANDed.
type Filter struct {
	Types      []Type `json:"events,omitempty"`     // any of these types; empty for all
	AppKey     string `json:"appKey,omitempty"`     // this app only
	RoomPrefix string `json:"roomPrefix,omitempty"` // rooms whose id starts with this
}

// Validate reports a filter that names an unknown event type: a typo
// would otherwise select nothing, silently.
func (f Filter) Validate() error {
	all := slices.Concat(Types, SystemTypes)
	for _, t := range f.Types {
		if !slices.Contains(all, t) {
			names := make([]string, len(all))
			for i, t := range all {
				names[i] = string(t)
			}
			return fmt.Errorf("unknown event type %q (want one of %s)", t, strings.Join(names, ", "))
		}
	}
	return nil
}

// Match reports whether e passes the filter.
func (f Filter) Match(e *Event) bool { return f.match(e.Type, e.AppKey, e.Recording.RoomID) }

// Matches reports whether the stored event s passes the filter.
func (f Filter) Matches(s *Stored) bool { return f.match(s.Type, s.AppKey, s.RoomID) }

func (f Filter) match(t Type, appKey, roomID string) bool {
	return (len(f.Types) == 0 || slices.Contains(f.Types, t)) &&
		(f.AppKey == "" || appKey == f.AppKey) &&
		strings.HasPrefix(roomID, f.RoomPrefix)
}
