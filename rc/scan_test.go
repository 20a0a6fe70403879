package rc

import (
	"encoding/json"
	"strings"
	"testing"
)

// validObject walks body as Parse does and reports whether it was a valid
// JSON object.
func validObject(body []byte) bool {
	r, ok := openObject(body, 0)
	if !ok {
		return false
	}
	for {
		if _, _, ok := r.next(); !ok {
			break
		}
	}
	return !r.bad && r.end()
}

func isObject(body []byte) bool {
	var m map[string]json.RawMessage
	return json.Valid(body) && json.Unmarshal(body, &m) == nil && m != nil
}

var scanCases = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a":-0.5e+10,"b":[1,[2,{"c":null}],true,false],"d":{"e":"\u00e9\n"}}`,
	`{"a":1,}`, `{,"a":1}`, `{"a":1 "b":2}`, `{"a" 1}`, `{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`,
	`{"a":-}`, `{"a":+1}`, `{"a":tru}`, `{"a":nulll}`, `{"a":"\x"}`, `{"a":"\u12g4"}`, "{\"a\":\"\x1f\"}",
	"{\"a\":\"\xff\"}", `{"a":[1,]}`, `{"a":[,1]}`, `{"a":[]}`, `{"a":[ ]}`, `{"a":{"b":}}`, `{"a":"b"`,
	`{"a":"bcdefghijklmnopqrstuvwxyz\"0123456789"}`, `{"a":"12345678\\"}`, `{"a":"1234567\\"}`, `{"a":1}}`,
	`{"a":1} {}`, `{"a":[}`, `{"a":]}`, `{"a":{]}`, `[]`, `"x"`, `{"a":"` + strings.Repeat("x", 100) + `"}`,
	`{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`,
	`{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}`,
	`{"a":` + strings.Repeat(`{"b":`, 9999) + `1` + strings.Repeat("}", 9999) + `}`,
	`{"a":` + strings.Repeat(`{"b":`, 10000) + `1` + strings.Repeat("}", 10000) + `}`,
}

// TestScanAgreesWithEncodingJSON holds the walk to json.Valid on the corners
// of JSON's grammar, nesting limit included; FuzzScan does so on anything.
func TestScanAgreesWithEncodingJSON(t *testing.T) {
	for _, c := range scanCases {
		if got, want := validObject([]byte(c)), isObject([]byte(c)); got != want {
			t.Errorf("validObject(%.60q) = %v, encoding/json says %v", c, got, want)
		}
	}
}

func FuzzScan(f *testing.F) {
	for _, c := range scanCases {
		if len(c) < 1000 { // the nesting-limit cases would slow every mutation
			f.Add([]byte(c))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if got, want := validObject(body), isObject(body); got != want {
			t.Fatalf("validObject(%q) = %v, encoding/json says %v", body, got, want)
		}
	})
}
