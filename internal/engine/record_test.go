package engine_test

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/engine"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/ledger/ledgertest"
	"github.com/recledger/recledger/rc"
)

var update = flag.Bool("update", false, "rewrite testdata/record-v3.bin from the current encoder")

// receivedBase is the server clock of typical records' first arrival.
var receivedBase = time.UnixMilli(1530027870000)

// typicalRecord is one recording as the engine keeps it: a start, three
// segments, an end, four uploads (the first failing, left unretried) and
// one redelivery, folded with ledger.Apply, with its event index.
func typicalRecord(tb testing.TB, recordID string, firstSeq int64) engine.Record {
	tb.Helper()
	cbs := ledgertest.Recording(tb, recordID, 4, true)
	cbs = append(cbs, cbs[2]) // a redelivery of the failed upload
	r := engine.Record{FirstSeq: firstSeq}
	seen := map[uint64]bool{}
	for i, cb := range cbs {
		id := engine.Identity(cb.Key())
		ref := engine.EventRef{Seq: firstSeq + int64(i)*7, Identity: id, Duplicate: seen[id]}
		r.Events = append(r.Events, ref)
		if !ref.Duplicate {
			seen[id] = true
			r.State = ledger.Apply(r.State, cb, receivedBase.Add(time.Duration(i)*time.Minute+time.Duration(i*37)*time.Millisecond).UnixMilli())
			delivery.Rules{}.Derive(&r.State, &r.Announced, r.State.LastEventAt)
		}
	}
	return r
}

func roundTrip(t *testing.T, r engine.Record) []byte {
	t.Helper()
	b, err := engine.EncodeRecord(&r)
	if err != nil {
		t.Fatalf("EncodeRecord: %v", err)
	}
	got, err := engine.DecodeRecord(b)
	if err != nil {
		t.Fatalf("DecodeRecord: %v\n%x", err, b)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Fatalf("the record decoded differs (-encoded +decoded):\n%s", diff)
	}
	st, err := engine.DecodeState(b)
	if err != nil {
		t.Fatalf("DecodeState: %v", err)
	}
	if diff := cmp.Diff(r.State, st); diff != "" {
		t.Fatalf("DecodeState differs (-encoded +decoded):\n%s", diff)
	}
	return b
}

// TestOldBlobsStillLoad reads a blob of each version ever written. The v1
// v2 and v3 files were written by the builds that wrote those versions
// and must never be regenerated; the v4 file also pins the current
// encoding (go test -update rewrites it, which is only right before
// anything was stored with it).
func TestOldBlobsStillLoad(t *testing.T) {
	want := typicalRecord(t, "rec-golden", 1001)
	if want.Announced.Count == 0 {
		t.Fatal("the typical record announced nothing: the golden file would not show the announced part")
	}
	v4, err := engine.EncodeRecord(&want)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(filepath.Join("testdata", "record-v4.bin"), v4, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	beforeDelivery := want
	beforeDelivery.Announced = delivery.Announced{}
	for _, tt := range []struct {
		file string
		want engine.Record
	}{
		{"record-v1.bin", engine.Record{State: want.State}}, // no event index before the engine
		{"record-v2.bin", beforeDelivery},
		{"record-v3.bin", beforeDelivery}, // nothing announced before delivery
		{"record-v4.bin", want},
	} {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, err := engine.DecodeRecord(b)
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decoded (-want +got):\n%s", diff)
			}
		})
	}
	stored, err := os.ReadFile(filepath.Join("testdata", "record-v4.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(v4, stored) {
		t.Errorf("EncodeRecord gives other bytes than testdata/record-v4.bin: the stored form changed; a new form needs a new version\n got %x\nwant %x", v4, stored)
	}
}

// TestRecordSize keeps the typical recording small: the disk goal of issue
// 12 rests on it (the JSON of version 2 took 3060 bytes).
func TestRecordSize(t *testing.T) {
	r := typicalRecord(t, "0123456789abcdef0123456789abcdef", 123456789)
	b := roundTrip(t, r)
	if len(b) > 400 {
		t.Errorf("a typical record takes %d bytes, want at most 400", len(b))
	}
}

func TestRecordDeterministic(t *testing.T) {
	r := randomRecord(rand.New(rand.NewPCG(1, 2)), 40)
	first, _ := engine.EncodeRecord(&r)
	for range 50 { // map order changes from one range to the next
		b, _ := engine.EncodeRecord(&r)
		if !bytes.Equal(b, first) {
			t.Fatalf("two encodings of one record differ:\n%x\n%x", first, b)
		}
	}
}

func TestRecordRoundTrip(t *testing.T) {
	typical := typicalRecord(t, "rec1", 10)
	key := func(typ rc.Type, ts int64, file string, code int) *rc.Key {
		return &rc.Key{AppKey: "app", RecordID: "rec1", Type: typ, Timestamp: ts, FileName: file, Code: code}
	}
	i64 := func(v int64) *int64 { return &v }
	tests := []struct {
		name string
		r    engine.Record
	}{
		{"zero", engine.Record{}},
		{"empty files and events", engine.Record{State: ledger.State{Files: map[string]ledger.FileState{}}, Events: []engine.EventRef{}}},
		{"typical", typical},
		{"no events", engine.Record{State: typical.State, FirstSeq: 3}},
		{"keys of another recording", engine.Record{State: ledger.State{
			RecordID: "rec1", AppKey: "app",
			MetaFrom:      &rc.Key{AppKey: "other", RecordID: "rec1", Type: rc.TypeStart, Timestamp: 5},
			StartFrom:     &rc.Key{AppKey: "app", RecordID: "rec2", Type: rc.TypeStart, Timestamp: 4},
			LastErrorFrom: &rc.Key{AppKey: "", RecordID: "", Type: rc.TypeEnd, Timestamp: 3, Code: 0},
		}}},
		{"odd types and codes", engine.Record{State: ledger.State{
			RecordID: "rec1", AppKey: "app", Mode: rc.ModeUnknown,
			MetaFrom:      key(0, 1, "", 0),
			StartFrom:     key(6, 1, "", -1),
			LastErrorFrom: key(7, 1, "", math.MaxInt32),
			LastError:     &ledger.ErrorInfo{Code: -7, Message: "ünïcode \x00 bytes", At: math.MinInt64},
			Files: map[string]ledger.FileState{
				"a": {Kind: "weird", SizeFrom: key(-3, 0, "a", 200), UploadFrom: key(1000, math.MaxInt64, "b", 200)},
				"b": {Kind: ledger.KindSegment, SizeFrom: key(2, math.MinInt64, "elsewhere.mp4", 500), Size: i64(-1)},
			},
		}}},
		{"extreme clocks", engine.Record{
			State: ledger.State{
				RecordID: "r", MetaFrom: key(1, math.MaxInt64, "", 200),
				EndedAt: i64(math.MinInt64), EndReceivedAt: i64(math.MaxInt64),
				FirstSeenAt: math.MinInt64, LastEventAt: math.MaxInt64,
				Files: map[string]ledger.FileState{"f": {FirstSeenAt: math.MaxInt64, UploadedAt: i64(math.MinInt64)}},
			},
			FirstSeq: math.MaxInt64,
			Events:   []engine.EventRef{{Seq: math.MinInt64}, {Seq: math.MaxInt64, Identity: math.MaxUint64, Duplicate: true}, {Seq: 0}},
		}},
		{"urls", engine.Record{State: ledger.State{Files: map[string]ledger.FileState{
			"":                 {URL: "http://x/"},
			"n.mp4":            {URL: "n.mp4", UploadFrom: key(4, 9, "n.mp4", 200), UploadedAt: i64(9)},
			"n.mp4.part":       {URL: "https://oss/n.mp4.part?sig=n.mp4.part"},
			"sess_1_2_3.mp4":   {URL: "https://oss/other.mp4", UploadFailed: true},
			"sess_1_2_3.mp4.1": {URL: "", UploadedAt: i64(-5)},
		}}}},
		{"config without start", engine.Record{State: ledger.State{Config: &rc.Config{}, AudioSample: -1, VideoResolution: "1x1"}}},
		{"events out of order", engine.Record{FirstSeq: 50, Events: []engine.EventRef{{Seq: 49}, {Seq: 10}, {Seq: 90, Duplicate: true}, {Seq: 90}, {Seq: 91}, {Seq: 92}, {Seq: 93}, {Seq: 94, Duplicate: true}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { roundTrip(t, tt.r) })
	}
}

// TestRecordRoundTripApply round-trips states that ledger.Apply makes of
// random callbacks: those are the states stores keep.
func TestRecordRoundTripApply(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		rec := randomRecord(r, r.IntN(30))
		t.Run(fmt.Sprint(i), func(t *testing.T) { roundTrip(t, rec) })
		if t.Failed() {
			return
		}
	}
}

// randomRecord folds n random callbacks of one recording, a few of them
// naming another app or recording, as the engine would, duplicates included.
func randomRecord(r *rand.Rand, n int) engine.Record {
	names := []string{"sess_room_u1_1530027865231.mp4", "sess_room_u1_1530027865231_1.mp4", "sess_room_u2_1530027999999.mp4", "tmp.mp4", "x.aac"}
	pick := func(s ...string) string { return s[r.IntN(len(s))] }
	rec := engine.Record{FirstSeq: r.Int64N(1 << 40)}
	if r.IntN(10) == 0 {
		return rec
	}
	seq := rec.FirstSeq
	var sent []rc.Callback
	seen := map[uint64]bool{}
	ts := int64(1530027865231) + r.Int64N(1e9)
	for range n {
		var cb rc.Callback
		if len(sent) > 0 && r.IntN(6) == 0 {
			cb = sent[r.IntN(len(sent))] // a redelivery
		} else {
			cb = rc.Callback{
				Timestamp: ts + r.Int64N(1e7) - 1e5, Type: rc.Type(r.IntN(6)),
				AppKey: pick("app", "app", "app", "other"), RecordID: pick("rec", "rec", "rec", "rec2"),
				RoomID: pick("room", ""), SessionID: pick("sess", "s2"), UserID: pick("u1", "", "ü"),
				Mode: rc.Mode(r.IntN(9) - 1), Extra: pick("", "sim", "{\"a\":1}"),
				Code: []int{200, 200, 200, 0, 500, 404}[r.IntN(6)], ErrorMessage: pick("Success", "failed"),
			}
			cb.Output.FileName = pick(append(names, "")...)
			if r.IntN(2) == 0 {
				size := r.Int64N(1 << 33)
				cb.Output.FileSize = &size
			}
			switch r.IntN(3) {
			case 0:
				cb.Output.FileURL = "https://oss.example/bucket/" + cb.Output.FileName
			case 1:
				cb.Output.FileURL = pick("", "https://oss.example/x?sig=abc")
			}
			if cb.Type == rc.TypeStart {
				cb.Config = &rc.Config{Trigger: 1, MixLayout: r.IntN(4), SlicesMin: 30, AudioFormat: "aac", VideoFormat: pick("mp4", "")}
				cb.Output.AudioSample, cb.Output.VideoResolution = 48000, pick("640x480", "")
			}
			sent = append(sent, cb)
		}
		seq += 1 + r.Int64N(1000)
		id := engine.Identity(cb.Key())
		dup := seen[id]
		seen[id] = true
		rec.Events = append(rec.Events, engine.EventRef{Seq: seq, Identity: id, Duplicate: dup})
		if !dup {
			rec.State = ledger.Apply(rec.State, cb, 1530027870000+r.Int64N(1e8))
			if r.IntN(3) > 0 {
				delivery.Rules{}.Derive(&rec.State, &rec.Announced, rec.State.LastEventAt+r.Int64N(2e8))
			}
		}
	}
	return rec
}

// TestDecodeRecordRejects checks that damaged blobs are refused with
// ErrBadRecord: every cut of a valid blob, a byte past its end, unknown
// versions and flags.
func TestDecodeRecordRejects(t *testing.T) {
	r := typicalRecord(t, "rec1", 10)
	b, _ := engine.EncodeRecord(&r)
	var bad [][]byte
	for i := range len(b) {
		bad = append(bad, b[:i])
	}
	bad = append(bad,
		append(bytes.Clone(b), 0),
		[]byte{0}, []byte{1}, []byte{5}, []byte("{"), []byte{2, '{'},
		[]byte{3, 0x80, 0x80, 0x01}, // a state flag no version 3 has
	)
	for _, blob := range bad {
		if _, err := engine.DecodeRecord(blob); !errors.Is(err, engine.ErrBadRecord) {
			t.Errorf("DecodeRecord(%x) = %v, want ErrBadRecord", blob, err)
		}
	}
}
