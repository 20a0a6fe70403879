package engine_test

import (
	"encoding/json"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

	"github.com/recledger/recledger/internal/engine"
)

// The record benchmarks use a typical recording (typicalRecord) with a
// 32-character id like RC's, and report the stored size as bytes/record.

func BenchmarkEncodeRecord(b *testing.B) {
	r := typicalRecord(b, "0123456789abcdef0123456789abcdef", 123456789)
	var blob []byte
	b.ReportAllocs()
	for b.Loop() {
		blob, _ = engine.EncodeRecord(&r)
	}
	b.ReportMetric(float64(len(blob)), "bytes/record")
}

func BenchmarkDecodeRecord(b *testing.B) {
	r := typicalRecord(b, "0123456789abcdef0123456789abcdef", 123456789)
	blob, _ := engine.EncodeRecord(&r)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := engine.DecodeRecord(blob); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(blob)), "bytes/record")
}

// BenchmarkDecodeRecordV2 is the JSON form version 3 replaced, for
// comparison.
func BenchmarkDecodeRecordV2(b *testing.B) {
	r := typicalRecord(b, "0123456789abcdef0123456789abcdef", 123456789)
	js, err := json.Marshal(struct {
		State    any               `json:"s"`
		FirstSeq int64             `json:"f"`
		Events   []engine.EventRef `json:"e"`
	}{r.State, r.FirstSeq, r.Events})
	if err != nil {
		b.Fatal(err)
	}
	blob := append([]byte{2}, js...)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := engine.DecodeRecord(blob); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(blob)), "bytes/record")
}

// BenchmarkRecordCompressed measures what compressing the version 3 bytes
// would add (encode and decode together) and save: the answer to whether
// version 3 should be compressed.
func BenchmarkRecordCompressed(b *testing.B) {
	r := typicalRecord(b, "0123456789abcdef0123456789abcdef", 123456789)
	blob, _ := engine.EncodeRecord(&r)
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderCRC(false), zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		b.Fatal(err)
	}
	dec, err := zstd.NewReader(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("zstd", func(b *testing.B) {
		var c []byte
		b.ReportAllocs()
		for b.Loop() {
			c = enc.EncodeAll(blob, c[:0])
			if _, err := dec.DecodeAll(c, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(c)), "bytes/record")
	})
	b.Run("s2", func(b *testing.B) {
		var c []byte
		b.ReportAllocs()
		for b.Loop() {
			c = s2.EncodeBetter(c[:cap(c)], blob)
			if _, err := s2.Decode(nil, c); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(c)), "bytes/record")
	})
}
