package ledgertest

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
)

// fileAnnouncer is how the storage verifier announces its outcomes
// through a store's projection engine.
type fileAnnouncer interface {
	AnnounceFile(ctx context.Context, recordID, fileName string, t delivery.Type, v ledger.Verification) error
	Projecting() bool
}

// testAnnounceFile: a file's verification event goes to the outbox once,
// numbered after the recording's other events, with the file's
// verification in its payload; the record keeps it, so the events of
// later callbacks number on from it, and a rebuild gives the same ids and
// sends nothing again.
func testAnnounceFile(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	fa, ok := s.(fileAnnouncer)
	if !ok {
		t.Fatalf("%T does not announce files", s)
	}
	src := source(t, s)
	src.Announce(true)
	cbs := Recording(t, "ann-1", 2, false)
	appendAll(t, s, cbs[:len(cbs)-2], time.Now().Add(-10*time.Minute)) // all but the end and its upload
	mustRecording(t, s, "ann-1")
	if !fa.Projecting() {
		t.Fatal("a lone instance does not project")
	}
	before := outboxUntil(t, src.Delivery(), 0, hasType(delivery.FileUploaded))
	name := "sess_room_u1_ann-1_1.mp4"
	status, size, at := 200, int64(1000), time.Now().UnixMilli()
	v := ledger.Verification{State: ledger.VerifyVerified, HTTPStatus: &status, Size: &size, CheckedAt: &at, Attempts: 1, ETag: `"x"`}
	// Hostile names announce nothing and leave the store working.
	for _, bad := range [][2]string{{"ann-1\x00", name}, {"ann-1", name + "\x00"}, {strings.Repeat("r", 1<<20), name},
		{"ann-1", strings.Repeat("n", 1<<20)}} {
		if err := fa.AnnounceFile(context.Background(), bad[0], bad[1], delivery.FileVerified, v); err == nil {
			t.Errorf("announcing for a hostile name (%d, %d bytes) succeeded", len(bad[0]), len(bad[1]))
		}
	}
	for range 2 {
		if err := fa.AnnounceFile(context.Background(), "ann-1", name, delivery.FileVerified, v); err != nil {
			t.Fatal(err)
		}
	}
	appendAll(t, s, cbs[len(cbs)-2:], time.Now().Add(-10*time.Minute))
	got := outboxUntil(t, src.Delivery(), 0, hasType(delivery.Completed))
	verifiedAt := -1
	for i, e := range got {
		var ev delivery.Event
		if err := json.Unmarshal(e.Payload, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Sequence != i+1 {
			t.Errorf("event %d (%s): sequence %d", i, e.Type, ev.Sequence)
		}
		if e.Type == delivery.FileVerified {
			if verifiedAt >= 0 {
				t.Errorf("file_verified announced twice")
			}
			verifiedAt = i
			if ev.File == nil || ev.File.FileName != name || ev.File.Verification == nil || ev.File.Verification.ETag != `"x"` ||
				e.ID != delivery.ID(ev.AppKey, "ann-1", delivery.FileVerified, name) || e.RoomID != "room" {
				t.Errorf("file_verified event %+v, file %+v", e, ev.File)
			}
		}
	}
	if verifiedAt != len(before) {
		t.Errorf("file_verified is event %d, want %d (right after the %d before it)", verifiedAt, len(before), len(before))
	}
	if _, err := s.Rebuild(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := fa.AnnounceFile(context.Background(), "ann-1", "no-such-file.mp4", delivery.FileVerified, v); err == nil {
		t.Error("announcing a file the recording does not have succeeded")
	}
	time.Sleep(1500 * time.Millisecond) // a periodic pass
	after, err := src.Delivery().Outbox(context.Background(), got[len(got)-1].Seq, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 0 {
		t.Errorf("a rebuild sent %d events again", len(after))
	}
}
