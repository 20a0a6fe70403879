package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
)

var updateGolden = flag.Bool("update", false, "rewrite the CLI's golden outputs in testdata/")

// golden compares got with testdata/name, or writes it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *updateGolden {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", name, got, want)
	}
}

// sampleRecording is RC's seed recording as the API shows it.
func sampleRecording() ledger.Recording {
	ms := func(v int64) *int64 { return &v }
	url := "http://oss/record/XXXXXXXX.mp4?abc"
	ok := 200
	return ledger.Recording{
		RecordID: "8329208b99410743dcfeb80548e2c0ec", AppKey: "your_appkey", RoomID: "111", SessionID: "lSA2G6CUf9A-6nnoNwXCx8",
		UserID: "222", Mode: 1, ModeName: "single-video", Status: ledger.StatusComplete, UploadState: ledger.UploadComplete,
		StartedAt: ms(1764454766123), EndedAt: ms(1764458366123), FirstSeenAt: ms(1764454766500),
		FileCount: 1, UploadedCount: 1, TotalBytes: 333,
		Files: []ledger.File{{FileName: "lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4", Kind: ledger.KindFinal,
			FileSize: ms(333), FileURL: &url, UploadStatus: ledger.UploadStatusUploaded,
			Verification: &ledger.Verification{State: ledger.VerifyVerified, HTTPStatus: &ok, Size: ms(333), CheckedAt: ms(1764458400000), Attempts: 1}}},
		Events: []ledger.Event{
			{Seq: 1, ReceivedAt: 1764454766500, Type: 1, TypeName: "start", Timestamp: 1764454766123, RecordID: "8329208b99410743dcfeb80548e2c0ec", Code: 200},
			{Seq: 2, ReceivedAt: 1764458366500, Type: 3, TypeName: "end", Timestamp: 1764458366123, RecordID: "8329208b99410743dcfeb80548e2c0ec", Code: 200,
				FileName: "lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4"},
		},
	}
}

// TestPrintedTimesCarryTheirZone: every time a table shows follows
// display's rule in the zone asked for (--utc, or the local one), offset
// included.
func TestPrintedTimesCarryTheirZone(t *testing.T) {
	now := time.UnixMilli(1764458366123).Add(2 * time.Hour)
	for _, tt := range []struct {
		name string
		loc  *time.Location
	}{
		{"utc", time.UTC},
		{"shanghai", time.FixedZone("CST", 8*3600)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k := clock{now: now, loc: tt.loc}
			r := sampleRecording()
			var b bytes.Buffer
			printRecording(&b, r, k)
			golden(t, "recording-show-"+tt.name+".txt", b.Bytes())
			b.Reset()
			r.Files, r.Events = nil, nil
			printRecordings(&b, []ledger.Recording{r}, k, true)
			golden(t, "recordings-ls-"+tt.name+".txt", b.Bytes())
		})
	}
}
