package delivery_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
)

func TestFilter(t *testing.T) {
	e := &delivery.Event{Type: delivery.Completed, AppKey: "app1", Recording: ledger.Recording{RoomID: "room-42"}}
	for _, tc := range []struct {
		name string
		f    delivery.Filter
		want bool
	}{
		{"zero filter", delivery.Filter{}, true},
		{"its type", delivery.Filter{Types: []delivery.Type{delivery.Started, delivery.Completed}}, true},
		{"other types", delivery.Filter{Types: []delivery.Type{delivery.Started}}, false},
		{"its app", delivery.Filter{AppKey: "app1"}, true},
		{"another app", delivery.Filter{AppKey: "app2"}, false},
		{"an app that only starts the same", delivery.Filter{AppKey: "app"}, false},
		{"its room prefix", delivery.Filter{RoomPrefix: "room-"}, true},
		{"its whole room", delivery.Filter{RoomPrefix: "room-42"}, true},
		{"another room prefix", delivery.Filter{RoomPrefix: "hall-"}, false},
		{"all of them", delivery.Filter{Types: []delivery.Type{delivery.Completed}, AppKey: "app1", RoomPrefix: "room"}, true},
		{"all but one", delivery.Filter{Types: []delivery.Type{delivery.Completed}, AppKey: "app1", RoomPrefix: "hall"}, false},
	} {
		if got := tc.f.Match(e); got != tc.want {
			t.Errorf("%s: Match = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFilterValidate(t *testing.T) {
	if err := (delivery.Filter{Types: delivery.Types}).Validate(); err != nil {
		t.Errorf("every type: %v", err)
	}
	for _, ty := range []delivery.Type{"recording.file_verified", "recording.file_missing"} {
		if err := (delivery.Filter{Types: []delivery.Type{ty}}).Validate(); err != nil {
			t.Errorf("%s: %v", ty, err)
		}
	}
	err := delivery.Filter{Types: []delivery.Type{"recording.complete"}}.Validate()
	if err == nil || !strings.Contains(err.Error(), `"recording.complete"`) || !strings.Contains(err.Error(), "recording.completed") {
		t.Errorf("a misspelt type: %v", err)
	}
}

// TestRotate: the new secret signs first; current old keys sign beside it
// until RotationOverlap from now; expired ones and a copy of the new one
// go.
func TestRotate(t *testing.T) {
	now := time.UnixMilli(1_800_000_000_000)
	old := []delivery.Key{
		{Secret: "whsec_current"},
		{Secret: "whsec_rotating", Expires: now.Add(time.Hour).UnixMilli()},
		{Secret: "whsec_expired", Expires: now.UnixMilli()},
		{Secret: "whsec_new"},
	}
	got := delivery.Rotate(old, "whsec_new", now)
	want := []delivery.Key{{Secret: "whsec_new"}, {Secret: "whsec_current", Expires: now.Add(delivery.RotationOverlap).UnixMilli()},
		{Secret: "whsec_rotating", Expires: now.Add(time.Hour).UnixMilli()}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Rotate:\n got %v\nwant %v", got, want)
	}
}
