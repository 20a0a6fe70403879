package simulator

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/recledger/recledger/rc"
)

// Faults are the rates (0 to 1) at which a run misbehaves the way networks,
// RC and attackers do. Each applies per callback, except Reorder, per
// recording.
//
// The last four change the scenario itself rather than its delivery (what
// RC reports and what the storage holds), so Generate applies them
// (Options.Faults); each is a Share of its candidates, a rate or a count.
type Faults struct {
	Dup       float64 `json:"dup"`       // delivered twice
	Reorder   float64 `json:"reorder"`   // a recording's callbacks sent in a shuffled order
	Delay     float64 `json:"delay"`     // held back by up to a simulated minute
	Drop      float64 `json:"drop"`      // never sent, as if RC lost it
	BadSig    float64 `json:"badsig"`    // a forged copy with a wrong signature is sent too (want 401)
	Replay    float64 `json:"replay"`    // its signature is replayed with another body (want 401)
	Malformed float64 `json:"malformed"` // a signed request with a broken body is sent too (want 400)
	Unknown   float64 `json:"unknown"`   // a callback of an unknown type is sent too (want 200)

	// Absent: of the uploads RC reports, the object is not in the test
	// storage (only with Options.Storage).
	Absent Share `json:"absent"`
	// WrongSize: of the uploads in the test storage, the object's size is
	// not RC's fileSize (only with Options.Storage).
	WrongSize Share `json:"wrong-size"`
	// NoEnd: of the recordings that started, the end never comes, and
	// nothing RC would send after it is sent.
	NoEnd Share `json:"no-end"`
	// MissingSegment: of the recordings that did not fail and have a stream
	// of three files or more, a middle file of one such stream is never
	// reported nor uploaded.
	MissingSegment Share `json:"missing-segment"`
}

// Share is how many of a scenario fault's candidates it hits: each with
// probability Rate, or exactly Count of them (all when fewer), chosen
// with the scenario's seed.
type Share struct {
	Rate  float64 `json:"rate,omitempty"`
	Count int     `json:"count,omitempty"`
}

// Zero reports whether the share hits nothing.
func (s Share) Zero() bool { return s.Rate <= 0 && s.Count <= 0 }

var faultNames = []string{"dup", "reorder", "delay", "drop", "badsig", "replay", "malformed", "unknown"}

// scenarioFaultNames are the faults Generate applies, in the order it
// applies them.
var scenarioFaultNames = []string{"no-end", "missing-segment", "absent", "wrong-size"}

func (f *Faults) field(name string) *float64 {
	switch name {
	case "dup":
		return &f.Dup
	case "reorder":
		return &f.Reorder
	case "delay":
		return &f.Delay
	case "drop":
		return &f.Drop
	case "badsig":
		return &f.BadSig
	case "replay":
		return &f.Replay
	case "malformed":
		return &f.Malformed
	case "unknown":
		return &f.Unknown
	}
	return nil
}

func (f *Faults) share(name string) *Share {
	switch name {
	case "absent":
		return &f.Absent
	case "wrong-size":
		return &f.WrongSize
	case "no-end":
		return &f.NoEnd
	case "missing-segment":
		return &f.MissingSegment
	}
	return nil
}

// maxFaultCount bounds a scenario fault's count: more than any scenario
// holds, and a typo of many digits is refused rather than read.
const maxFaultCount = 1_000_000

// ParseFaults reads "dup=0.1,reorder=0.3,...", or "all=R" for every fault
// at rate R. The scenario faults (absent, wrong-size, no-end,
// missing-segment) take a rate or a whole count: "no-end=0.1" is a tenth
// of the recordings, "no-end=2" two of them ("1.0" is every one, "1" one).
func ParseFaults(s string) (Faults, error) {
	var f Faults
	if strings.TrimSpace(s) == "" {
		return f, nil
	}
	for _, kv := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if sh := f.share(name); ok && sh != nil && val != "" && !strings.ContainsAny(val, ".eE") {
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 || n > maxFaultCount {
				return f, fmt.Errorf("fault %q: want NAME=COUNT with a whole count from 0 to %d, or NAME=RATE with a rate from 0 to 1", kv, maxFaultCount)
			}
			*sh = Share{Count: n}
			continue
		}
		rate, err := strconv.ParseFloat(val, 64)
		if !ok || err != nil || !(rate >= 0 && rate <= 1) {
			return f, fmt.Errorf("fault %q: want NAME=RATE with a rate from 0 to 1", kv)
		}
		if name == "all" {
			for _, n := range faultNames {
				*f.field(n) = rate
			}
			for _, n := range scenarioFaultNames {
				*f.share(n) = Share{Rate: rate}
			}
			continue
		}
		if sh := f.share(name); sh != nil {
			*sh = Share{Rate: rate}
			continue
		}
		p := f.field(name)
		if p == nil {
			return f, fmt.Errorf("unknown fault %q (want one of %s, %s, or all)", name, strings.Join(faultNames, ", "), strings.Join(scenarioFaultNames, ", "))
		}
		*p = rate
	}
	return f, nil
}

// stepKind is what one step of a run does.
type stepKind int

const (
	stepSend      stepKind = iota // deliver the callback (RC's rules)
	stepForged                    // send a copy with a wrong signature once; want 401
	stepReplay                    // reuse the previous delivery's signature with another body; want 401
	stepMalformed                 // send a signed broken body once; want 400
)

// step is one thing a recording's player does, at simulated time At.
type step struct {
	kind     stepKind
	at       time.Time
	callback Callback
}

// script turns a recording's callbacks into the steps of a run with faults,
// deterministically for the recording's own random source.
// It also counts the faults that send nothing of their own (reorder,
// delay) into counts.
func script(r *rand.Rand, cbs []Callback, rec Recording, appKey string, f Faults, counts map[string]int) []step {
	if r.Float64() < f.Reorder {
		counts["reorder"]++
		shuffled := append([]Callback(nil), cbs...)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		// Keep the send times in order: only which callback goes when changes.
		for i := range shuffled {
			shuffled[i].At = cbs[i].At
		}
		cbs = shuffled
	}
	var steps []step
	for _, c := range cbs {
		at := c.At
		if r.Float64() < f.Delay {
			at = at.Add(time.Duration(r.Int64N(int64(time.Minute))))
			counts["delay"]++
		}
		if r.Float64() < f.BadSig {
			steps = append(steps, step{kind: stepForged, at: at, callback: c})
		}
		if r.Float64() < f.Malformed {
			steps = append(steps, step{kind: stepMalformed, at: at, callback: c})
		}
		if r.Float64() >= f.Drop {
			steps = append(steps, step{kind: stepSend, at: at, callback: c})
			if r.Float64() < f.Dup {
				steps = append(steps, step{kind: stepSend, at: at, callback: c})
			}
			if r.Float64() < f.Replay {
				other := c
				other.Body = []byte(strings.Replace(string(c.Body), `"code":`, `"code":4`, 1)) // another body
				steps = append(steps, step{kind: stepReplay, at: at, callback: other})
			}
		}
		if r.Float64() < f.Unknown {
			// Stamped with the callback's own time, not the delayed send
			// time: a delay must not carry a timestamp past the scenario's end.
			steps = append(steps, step{kind: stepSend, at: at, callback: unknownCallback(rec, appKey, c.At)})
		}
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at.Before(steps[j].at) })
	return steps
}

// unknownCallback is a callback of a type RC does not document (9): a
// receiver must accept and keep it.
func unknownCallback(rec Recording, appKey string, at time.Time) Callback {
	body := fmt.Appendf(nil, `{"timestamp":%d,"type":9,"appKey":%q,"recordId":%q,"roomId":%q,"sessionId":%q,"userId":%q,"mode":%d,"extra":"sim","code":200,"errorMessage":"Success","output":{}}`,
		at.UnixMilli(), appKey, rec.RecordID, rec.RoomID, rec.SessionID, rec.Streams[0].UserID, rec.Mode)
	return Callback{At: at, RecordID: rec.RecordID, Type: rc.Type(9), Code: 200, Body: body}
}
