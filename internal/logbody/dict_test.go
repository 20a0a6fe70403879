package logbody_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"

	"github.com/recledger/recledger/internal/logbody"
	"github.com/recledger/recledger/internal/simulator"
)

var writeDict = flag.String("write-dict", "", "build a dictionary from simulator bodies and write it to this file (for a new format)")

// simulatorBodies returns the bodies of the callbacks of n simulated
// recordings. Building and measuring use different seeds, app keys and
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

// heldOut is the measuring set: bodies the dictionary was not built from.
func heldOut(n int) [][]byte {
	return simulatorBodies(977, "k8w2mq0zt3fbx", time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC), n)
}

// shape is what sets bodies apart for the dictionary: callback type,
// code, mode, which fields are present, and length to 100 bytes (long ids
// and file names make longer bodies of the same fields).
func shape(body []byte) string {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return "not JSON"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return fmt.Sprint(m["type"], m["code"], m["mode"], keys, len(body)/100)
}

// shapesDictionary is raw history for s2: the first body of each shape
// among bodies, rarest shapes first, so the commonest lie nearest the
// block (s2 spends fewer bytes on near copies). s2 has no entropy stage,
// so a trained zstd dictionary's tables buy nothing; what pays is one
// whole example of each shape to copy from. On the held-out bodies this
// stored 164.5 bytes a body where BuildS2Dict (32 KiB) stored 168.7, the
// last 64 KiB of concatenated bodies 165.3, and the content end of the
// zstd dictionary 175.7; cut to 8 or 16 KiB it stored 168.5 and 165.0.
func shapesDictionary(bodies [][]byte) []byte {
	count := map[string]int{}
	first := map[string][]byte{}
	var order []string
	for _, b := range bodies {
		s := shape(b)
		if count[s] == 0 {
			order = append(order, s)
			first[s] = b
		}
		count[s]++
	}
	sort.SliceStable(order, func(i, j int) bool { return count[order[i]] < count[order[j]] })
	var out []byte
	for _, s := range order {
		out = append(out, first[s]...)
	}
	return out
}

// TestWriteDictionary builds a dictionary when asked to:
//
//	go test ./internal/logbody -run TestWriteDictionary -write-dict dict3.s2dict
//
// A dictionary in use never changes (rows compressed with it must stay
// readable): a new one gets a new file and a new format byte.
func TestWriteDictionary(t *testing.T) {
	if *writeDict == "" {
		t.Skip("set -write-dict FILE to build a new dictionary")
	}
	if _, err := os.Stat(*writeDict); err == nil {
		t.Fatalf("%s exists: a dictionary in use never changes; write a new file for a new format", *writeDict)
	}
	bodies := simulatorBodies(20261129, "n19jmcy59f1q9", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 4000)
	history := shapesDictionary(bodies)
	if len(history) > s2.MaxDictSize {
		history = history[len(history)-s2.MaxDictSize:] // the commonest shapes are at the end
	}
	// The repeat offset starts where bodies start; Bytes writes it into
	// the file, so it is part of what the frozen hash holds.
	d := s2.MakeDict(history, []byte(`{"timestamp":`))
	if d == nil {
		t.Fatalf("s2.MakeDict refused %d bytes", len(history))
	}
	if err := os.WriteFile(*writeDict, d.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s: %d bytes of history from %d bodies", *writeDict, len(history), len(bodies))
}

// TestDictionaryFrozen fails if the dictionary of format 2 changed: every
// row written with it would become unreadable.
func TestDictionaryFrozen(t *testing.T) {
	sum := sha256.Sum256(logbody.Dictionary(logbody.FormatDict2))
	if got, want := hex.EncodeToString(sum[:]), dict2SHA256; got != want {
		t.Errorf("dictionary of format 2 has sha256 %s, want %s: it must never change", got, want)
	}
	if s2.NewDict(logbody.Dictionary(logbody.FormatDict2)) == nil {
		t.Error("dict2.s2dict does not load with s2.NewDict")
	}
}
