package simulator

import (
	"math/rand/v2"
	"slices"
	"time"

	"github.com/recledger/recledger/rc"
)

// pick returns the indexes of n candidates that s hits, in order, drawn
// from r: each with probability s.Rate, or s.Count of them at random.
func pick(r *rand.Rand, n int, s Share) []int {
	var out []int
	switch {
	case s.Count > 0:
		out = r.Perm(n)[:min(s.Count, n)]
		slices.Sort(out)
	case s.Rate > 0:
		for i := range n {
			if r.Float64() < s.Rate {
				out = append(out, i)
			}
		}
	}
	return out
}

// faultRand is the random source of one scenario fault: its own, so that
// adding a fault leaves the others' choices as they were.
func faultRand(seed uint64, fault int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, 0xfa17_0000+uint64(fault)))
}

// applyScenarioFaults applies the faults that change what RC reports and
// what the storage holds, in the order scenarioFaultNames lists them; each
// draws from its own random source, so the choice depends only on the
// seed and the recordings' shape (not on where in time they lie).
func applyScenarioFaults(recs []Recording, f Faults, seed uint64, storage bool) {
	// no-end: recordings that started.
	var started []int
	for i, rec := range recs {
		if rec.StartCode == rc.StatusOK {
			started = append(started, i)
		}
	}
	for _, k := range pick(faultRand(seed, 0), len(started), f.NoEnd) {
		recs[started[k]].NoEnd = true
	}

	// missing-segment: recordings that do not fail, with a stream of three
	// files or more; a middle file of one such stream is taken out.
	var sliced []int
	for i, rec := range recs {
		if rec.StartCode == rc.StatusOK && rec.EndCode == rc.StatusOK && !rec.NoEnd && len(longStreams(rec)) > 0 {
			sliced = append(sliced, i)
		}
	}
	r := faultRand(seed, 1)
	for _, k := range pick(r, len(sliced), f.MissingSegment) {
		rec := &recs[sliced[k]]
		long := longStreams(*rec)
		files := long[r.IntN(len(long))]
		victim := files[1+r.IntN(len(files)-2)] // neither the first nor the last
		rec.Skipped = append(rec.Skipped, rec.Files[victim])
		rec.Files = slices.Delete(rec.Files, victim, victim+1)
	}

	if !storage {
		return // absent and wrong-size are about the test storage
	}
	// absent, then wrong-size: uploads RC reports, the same file not both.
	type ref struct{ rec, file int }
	uploads := func() []ref {
		var out []ref
		for i, rec := range recs {
			for j, fl := range rec.Files {
				if rec.uploadSent(fl) && !fl.Absent {
					out = append(out, ref{i, j})
				}
			}
		}
		return out
	}
	up := uploads()
	for _, k := range pick(faultRand(seed, 2), len(up), f.Absent) {
		recs[up[k].rec].Files[up[k].file].Absent = true
	}
	up = uploads()
	r = faultRand(seed, 3)
	for _, k := range pick(r, len(up), f.WrongSize) {
		fl := &recs[up[k].rec].Files[up[k].file]
		fl.StoredSize = fl.Size + 1 + r.Int64N(1<<20)
		if r.IntN(2) == 0 && fl.Size > 0 {
			fl.StoredSize = r.Int64N(fl.Size) // truncated, as a broken upload leaves it
		}
	}
}

// longStreams returns, per stream with three files or more, the indexes
// of its files in rec.Files, in time order.
func longStreams(rec Recording) [][]int {
	var out [][]int
	for _, s := range rec.Streams {
		var idx []int
		for j, f := range rec.Files {
			if f.Stream == s {
				idx = append(idx, j)
			}
		}
		if len(idx) >= 3 {
			out = append(out, idx)
		}
	}
	return out
}

// End is when the recording's end callback is due: the close of its last
// files.
func (rec Recording) End() time.Time { return rec.StartedAt.Add(rec.Duration) }

// sent reports whether RC sends a callback of rec at simulated time at:
// a recording whose start failed sends nothing after it, and one without
// an end nothing from its end on.
func (rec Recording) sent(at time.Time) bool {
	return !rec.NoEnd || at.Before(rec.End())
}

// uploadSent reports whether RC reports f's successful upload.
func (rec Recording) uploadSent(f File) bool {
	return rec.StartCode == rc.StatusOK && !f.UploadedAt.IsZero() && rec.sent(f.UploadedAt)
}

// InjectedFaults counts the scenario faults recs hold, by name (faults
// that hit nothing are left out).
func InjectedFaults(recs []Recording) map[string]int {
	out := map[string]int{}
	for _, rec := range recs {
		if rec.NoEnd {
			out["no-end"]++
		}
		if len(rec.Skipped) > 0 {
			out["missing-segment"] += len(rec.Skipped)
		}
		for _, f := range rec.Files {
			if f.Absent {
				out["absent"]++
			}
			if f.StoredSize != f.Size {
				out["wrong-size"]++
			}
		}
	}
	return out
}
