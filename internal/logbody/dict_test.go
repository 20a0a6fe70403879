package logbody_test

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/klauspost/compress/dict"
	"github.com/klauspost/compress/zstd"

	"github.com/recledger/recledger/internal/logbody"
	"github.com/recledger/recledger/internal/simulator"
)

var writeDict = flag.String("write-dict", "", "train a dictionary on simulator bodies and write it to this file (for a new format)")

// simulatorBodies returns the bodies of the callbacks of n simulated
// recordings. Training and measuring use different seeds, app keys and
// times, so the figures are not of bodies the dictionary has seen.
func simulatorBodies(seed uint64, appKey string, start time.Time, n int) [][]byte {
	recs := simulator.Generate(simulator.Options{
		AppKey: appKey, Recordings: n, Seed: seed, Start: start, Spread: 24 * time.Hour,
		UploadFailures: 0.05, NeverUploaded: 0.01, FailedRecordings: 0.02,
	})
	var out [][]byte
	for _, r := range recs {
		for _, cb := range r.Callbacks(appKey) {
			out = append(out, cb.Body)
		}
	}
	return out
}

// heldOut is the measuring set: bodies the dictionary was not trained on.
func heldOut(n int) [][]byte {
	return simulatorBodies(977, "k8w2mq0zt3fbx", time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC), n)
}

// TestWriteDictionary trains a dictionary when asked to:
//
//	go test ./internal/logbody -run TestWriteDictionary -write-dict dict2.zdict
//
// A dictionary in use never changes (rows compressed with it must stay
// readable): a new one gets a new file and a new format byte.
func TestWriteDictionary(t *testing.T) {
	if *writeDict == "" {
		t.Skip("set -write-dict FILE to train a new dictionary")
	}
	if _, err := os.Stat(*writeDict); err == nil {
		t.Fatalf("%s exists: a dictionary in use never changes; write a new file for a new format", *writeDict)
	}
	bodies := simulatorBodies(20261129, "n19jmcy59f1q9", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 4000)
	d, err := dict.BuildZstdDict(bodies, dict.Options{
		MaxDictSize: 16 << 10, HashBytes: 6, ZstdDictID: 1, ZstdLevel: zstd.SpeedDefault,
	})
	if err != nil {
		t.Fatalf("build dictionary: %v", err)
	}
	if err := os.WriteFile(*writeDict, d, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d bytes from %d bodies", *writeDict, len(d), len(bodies))
}

// TestDictionaryFrozen fails if the dictionary of format 1 changed: every
// row written with it would become unreadable.
func TestDictionaryFrozen(t *testing.T) {
	sum := sha256.Sum256(logbody.Dictionary(logbody.FormatDict1))
	if got, want := hex.EncodeToString(sum[:]), dict1SHA256; got != want {
		t.Errorf("dictionary of format 1 has sha256 %s, want %s: it must never change", got, want)
	}
}
