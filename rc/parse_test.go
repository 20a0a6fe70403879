package rc_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/rc"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

// parsedView is what a golden file records of a parse: the callback, the
// names and identity derived from it, and the file name read by the rules.
type parsedView struct {
	Callback      rc.Callback   `json:"callback"`
	TypeName      string        `json:"typeName"`
	ModeName      string        `json:"modeName"`
	OK            bool          `json:"ok"`
	Key           rc.Key        `json:"key"`
	FileNameParts *rc.NameParts `json:"fileNameParts"`
}

func view(cb rc.Callback) parsedView {
	v := parsedView{Callback: cb, TypeName: cb.Type.String(), ModeName: cb.Mode.String(), OK: cb.OK(), Key: cb.Key()}
	if p, ok := cb.FileNameParts(); ok {
		v.FileNameParts = &p
	}
	return v
}

// TestParseGolden parses RC's four seed examples and the lenient cases in
// testdata/parse and compares each result with its golden file.
func TestParseGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/seed/*.json")
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob("testdata/parse/*.json")
	inputs = append(inputs, more...)
	if len(inputs) < 4+7 {
		t.Fatalf("found %d inputs, want the 4 seeds and the parse cases", len(inputs))
	}
	for _, in := range inputs {
		name := filepath.Base(filepath.Dir(in)) + "-" + strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			cb, err := rc.Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !bytes.Equal(cb.Raw, body) {
				t.Errorf("Raw differs from the body")
			}
			got, err := json.MarshalIndent(view(cb), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./rc -run TestParseGolden -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("parse of %s differs from %s (-want +got):\n%s", in, golden, diff)
			}
		})
	}
}

// TestParseSeedFields states the seed examples' facts from PROTOCOL.md
// directly, so the golden files cannot drift from them unnoticed.
func TestParseSeedFields(t *testing.T) {
	size := int64(333)
	common := rc.Callback{
		Timestamp: 1530027865231, AppKey: "your_appkey", RecordID: "8329208b99410743dcfeb80548e2c0ec",
		RoomID: "111", SessionID: "lSA2G6CUf9A-6nnoNwXCx8", UserID: "222", Mode: rc.ModeVideo,
		Extra: "extra_string", Code: 200, ErrorMessage: "Success",
	}
	const file = "lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4"
	tests := []struct {
		file   string
		typ    rc.Type
		config *rc.Config
		output rc.Output
	}{
		{"type1-start.json", rc.TypeStart,
			&rc.Config{Trigger: 0, MixLayout: 2, SlicesMin: 30, AudioFormat: "aac", VideoFormat: "mp4"},
			rc.Output{FileName: file, AudioSample: 48000, VideoResolution: "640x480"}},
		{"type2-segment.json", rc.TypeSegment, nil, rc.Output{FileName: file, FileSize: &size}},
		{"type3-end.json", rc.TypeEnd, nil, rc.Output{FileName: file, FileSize: &size}},
		{"type4-upload.json", rc.TypeUpload, nil, rc.Output{FileName: file, FileURL: "http://oss/record/XXXXXXXX.mp4?abc"}},
	}
	for _, tt := range tests {
		body, err := os.ReadFile(filepath.Join("testdata", "seed", tt.file))
		if err != nil {
			t.Fatal(err)
		}
		got, err := rc.Parse(body)
		if err != nil {
			t.Fatalf("%s: %v", tt.file, err)
		}
		want := common
		want.Type, want.Config, want.Output, want.Raw = tt.typ, tt.config, tt.output, body
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.file, diff)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		want  error
		field string // for *FieldError
	}{
		{"empty", ``, rc.ErrNotObject, ""},
		{"spaces", "  \n", rc.ErrNotObject, ""},
		{"not json", `type=1`, rc.ErrNotObject, ""},
		{"truncated", `{"type":1,"appKey":"k"`, rc.ErrNotObject, ""},
		{"trailing garbage", `{"type":1,"appKey":"k","recordId":"r"} x`, rc.ErrNotObject, ""},
		{"two objects", `{"type":1,"appKey":"k","recordId":"r"}{}`, rc.ErrNotObject, ""},
		{"array", `[{"type":1,"appKey":"k","recordId":"r"}]`, rc.ErrNotObject, ""},
		{"string", `"hello"`, rc.ErrNotObject, ""},
		{"number", `42`, rc.ErrNotObject, ""},
		{"null", `null`, rc.ErrNotObject, ""},
		{"control char", "{\"type\":1,\"appKey\":\"k\x01\",\"recordId\":\"r\"}", rc.ErrNotObject, ""},
		{"no type", `{"appKey":"k","recordId":"r"}`, rc.ErrMissingField, "type"},
		{"null type", `{"type":null,"appKey":"k","recordId":"r"}`, rc.ErrMissingField, "type"},
		{"empty type", `{"type":"","appKey":"k","recordId":"r"}`, rc.ErrMissingField, "type"},
		{"word type", `{"type":"start","appKey":"k","recordId":"r"}`, rc.ErrInvalidField, "type"},
		{"bool type", `{"type":true,"appKey":"k","recordId":"r"}`, rc.ErrInvalidField, "type"},
		{"fraction type", `{"type":1.5,"appKey":"k","recordId":"r"}`, rc.ErrInvalidField, "type"},
		{"huge type", `{"type":1e30,"appKey":"k","recordId":"r"}`, rc.ErrInvalidField, "type"},
		{"no appKey", `{"type":1,"recordId":"r"}`, rc.ErrMissingField, "appKey"},
		{"empty appKey", `{"type":1,"appKey":"","recordId":"r"}`, rc.ErrMissingField, "appKey"},
		{"null appKey", `{"type":1,"appKey":null,"recordId":"r"}`, rc.ErrMissingField, "appKey"},
		{"object appKey", `{"type":1,"appKey":{},"recordId":"r"}`, rc.ErrInvalidField, "appKey"},
		{"two appKeys", `{"type":1,"appKey":"a","appKey":"b","recordId":"r"}`, rc.ErrInvalidField, "appKey"},
		{"no recordId", `{"type":1,"appKey":"k"}`, rc.ErrMissingField, "recordId"},
		{"array recordId", `{"type":1,"appKey":"k","recordId":["r"]}`, rc.ErrInvalidField, "recordId"},
		{"two recordIds", `{"type":1,"appKey":"k","recordId":"r","recordId":"s"}`, rc.ErrInvalidField, "recordId"},
		{"two types", `{"type":1,"type":2,"appKey":"k","recordId":"r"}`, rc.ErrInvalidField, "type"},
		{"nested type only", `{"output":{"type":1,"appKey":"k","recordId":"r"}}`, rc.ErrMissingField, "type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb, err := rc.Parse([]byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse(%q) error = %v, want %v (callback %+v)", tt.body, err, tt.want, cb)
			}
			var fe *rc.FieldError
			if tt.field == "" {
				if errors.As(err, &fe) {
					t.Errorf("got a FieldError for %q, want none", fe.Field)
				}
				return
			}
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			if fe.Field != tt.field {
				t.Errorf("FieldError.Field = %q, want %q", fe.Field, tt.field)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Errorf("message %q does not name the field %q", err.Error(), tt.field)
			}
		})
	}
}

func TestParseWarnings(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string // each warning's field, in order
	}{
		{"clean mix", `{"timestamp":1,"type":2,"appKey":"k","recordId":"r","roomId":"r","sessionId":"s","userId":"","mode":3,"code":200,"output":{"fileName":"f","fileSize":1}}`,
			[]string{"timestamp"}},
		{"single without user", `{"timestamp":1530027865231,"type":4,"appKey":"k","recordId":"r","roomId":"r","sessionId":"s","mode":0,"code":500,"output":{"fileName":"f"}}`,
			[]string{"userId"}},
		{"upload without url", `{"timestamp":1530027865231,"type":4,"appKey":"k","recordId":"r","roomId":"r","sessionId":"s","userId":"u","mode":0,"code":200,"output":{"fileName":"f"}}`,
			[]string{"output.fileUrl"}},
		{"unusable numbers", `{"timestamp":"x","type":1,"appKey":"k","recordId":"r","roomId":"r","sessionId":"s","userId":"u","mode":"zero","code":{},"config":{"slicesMin":"30","trigger":[1]},"output":{"audioSample":"","videoResoulation":5}}`,
			[]string{"timestamp", "mode", "code", "config.slicesMin", "config.trigger", "output.videoResoulation"}},
		{"duplicate harmless", `{"timestamp":1530027865231,"type":1,"type":1,"appKey":"k","recordId":"r","roomId":"r","roomId":"q","sessionId":"s","userId":"u","mode":0,"code":200,"config":{}}`,
			[]string{"type", "roomId"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb, err := rc.Parse([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, w := range cb.Warnings {
				got = append(got, w.Field)
				if w.Message == "" {
					t.Errorf("warning on %s has no message", w.Field)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("warning fields (-want +got):\n%s\nall: %v", diff, cb.Warnings)
			}
		})
	}
}

// TestParseAgreesWithEncodingJSON checks Parse against encoding/json on
// hand-written bodies full of escapes; FuzzParse does the same on anything.
func TestParseAgreesWithEncodingJSON(t *testing.T) {
	bodies := []string{
		`{"type":1,"appKey":"\u0061pp","recordId":"r\"\\\/\b\f\n\r\t","roomId":"\ud83d\ude00","sessionId":"\ud800"}`,
		"{\"type\":1,\"appKey\":\"k\",\"recordId\":\"\xff\xfeinvalid\",\"userId\":\"caf\xc3\xa9\"}",
		`{"typ\u0065":2,"appKey":"k","recordId":"r","output":{"fileName":"a\u005fb","fileSize":"12"}}`,
		` { "type" : 3 , "appKey" : "k" , "recordId" : "r" , "extra" : "{\"nested\":true}" } `,
	}
	for _, b := range bodies {
		checkAgainstEncodingJSON(t, []byte(b))
	}
}

// checkAgainstEncodingJSON parses body and, when it succeeds, compares every
// string and integer member with what encoding/json decodes.
// decodeJSON decodes body as encoding/json does, except that a number
// need not fit a float64: JSON sets numbers no range (RFC 8259), and an
// unknown field holding 3e531 is a body RC may send, which Parse keeps.
func decodeJSON(body []byte) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the top-level value (%v)", err)
	}
	return m, nil
}

// number is a decoded JSON number as a float64, when it is a number and
// fits one.
func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

func checkAgainstEncodingJSON(t *testing.T, body []byte) {
	t.Helper()
	cb, err := rc.Parse(body)
	m, jsonErr := decodeJSON(body)
	if err != nil {
		if errors.Is(err, rc.ErrNotObject) && jsonErr == nil && m != nil {
			t.Fatalf("Parse(%q) = %v, but encoding/json decodes an object", body, err)
		}
		return
	}
	if jsonErr != nil || m == nil {
		t.Fatalf("Parse(%q) succeeded, but encoding/json says %v", body, jsonErr)
	}
	if !bytes.Equal(cb.Raw, body) {
		t.Fatalf("Raw differs from body")
	}
	out, _ := m["output"].(map[string]any)
	strs := []struct {
		got string
		raw any
	}{
		{cb.AppKey, m["appKey"]}, {cb.RecordID, m["recordId"]}, {cb.RoomID, m["roomId"]},
		{cb.SessionID, m["sessionId"]}, {cb.UserID, m["userId"]}, {cb.Extra, m["extra"]},
		{cb.ErrorMessage, m["errorMessage"]}, {cb.Output.FileName, out["fileName"]}, {cb.Output.FileURL, out["fileUrl"]},
	}
	for _, s := range strs {
		if want, ok := s.raw.(string); ok && s.got != want {
			t.Fatalf("Parse(%q): got %q, encoding/json %q", body, s.got, want)
		}
	}
	ints := []struct {
		got   int64
		raw   any
		limit float64
	}{
		{int64(cb.Type), m["type"], 1 << 31}, {cb.Timestamp, m["timestamp"], 1 << 53}, {int64(cb.Mode), m["mode"], 1 << 31}, {int64(cb.Code), m["code"], 1 << 31},
	}
	for _, n := range ints {
		if f, ok := number(n.raw); ok && f == math.Trunc(f) && math.Abs(f) < n.limit && float64(n.got) != f {
			t.Fatalf("Parse(%q): got %d, encoding/json %v", body, n.got, f)
		}
	}
	if f, ok := number(out["fileSize"]); ok && f == math.Trunc(f) && f >= 0 && f < 1<<53 {
		if cb.Output.FileSize == nil || float64(*cb.Output.FileSize) != f {
			t.Fatalf("Parse(%q): fileSize %v, encoding/json %v", body, cb.Output.FileSize, f)
		}
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/seed/*.json")
	more, _ := filepath.Glob("testdata/parse/*.json")
	for _, s := range append(seeds, more...) {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkAgainstEncodingJSON(t, body)
	})
}
