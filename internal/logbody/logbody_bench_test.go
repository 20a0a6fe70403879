package logbody_test

import (
	"testing"

	"github.com/recledger/recledger/internal/logbody"
)

// The benchmarks cycle through simulator bodies the dictionary was not
// built from, and report their mean size as stored (stored-bytes/body)
// beside their mean size (raw-bytes/body).

func BenchmarkEncode(b *testing.B) {
	bodies := heldOut(300)
	raw, stored := 0, 0
	for _, body := range bodies {
		raw += len(body)
		stored += len(logbody.Encode(body))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		logbody.Encode(bodies[i%len(bodies)])
		i++
	}
	b.ReportMetric(float64(raw)/float64(len(bodies)), "raw-bytes/body")
	b.ReportMetric(float64(stored)/float64(len(bodies)), "stored-bytes/body")
}

func BenchmarkDecode(b *testing.B) {
	var stored [][]byte
	for _, body := range heldOut(300) {
		stored = append(stored, logbody.Encode(body))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := logbody.Decode(stored[i%len(stored)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
