package ledgertest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// HostileCase is one hostile callback body and what every store must make
// of it: stored (and read back exactly), or refused with
// ledger.ErrUnstorable naming Field.
type HostileCase struct {
	Name string
	Body []byte
	// Field is the field a store must name when it refuses the callback;
	// empty when it must store it.
	Field string
}

// hostileField is a JSON member of the callback template below.
type hostileField struct {
	path string // "recordId", "output.fileName", "config.audioFormat"
	id   bool   // an identifying field: bounded, no control characters
}

var hostileFields = []hostileField{
	{"appKey", true}, {"recordId", true}, {"roomId", true}, {"sessionId", true}, {"userId", true},
	{"extra", false}, {"errorMessage", false},
	{"output.fileName", true}, {"output.fileUrl", false}, {"output.videoResoulation", false},
	{"config.audioFormat", false}, {"config.videoFormat", false},
}

// HostileCases returns the hostile bodies every backend is fed, each with
// a recordId of its own (prefix + a number) unless the case is about the
// recordId itself. The same list, the same expected outcome, for every
// store: that is what makes the backends accept the same set.
func HostileCases(prefix string) []HostileCase {
	var cases []HostileCase
	n := 0
	add := func(name, field, raw string, refused bool) {
		n++
		values := map[string]string{}
		values["recordId"] = quote(fmt.Sprintf("%s-%02d", prefix, n))
		values[field] = raw
		c := HostileCase{Name: name, Body: hostileBody(int64(n), values)}
		if refused {
			c.Field = field
		}
		cases = append(cases, c)
	}
	for _, f := range hostileFields {
		// A NUL (PostgreSQL's TEXT cannot hold it) and another control
		// character, escaped in JSON.
		add("NUL in "+f.path, f.path, quote(prefix+"-a\x00b"), f.id)
		add("ESC in "+f.path, f.path, quote(prefix+"-a\x1b[31mb"), f.id)
		// Raw bytes that are not UTF-8: JSON decoding makes them U+FFFD.
		add("invalid UTF-8 in "+f.path, f.path, `"`+prefix+"-\xff\xfe\xc3("+`"`, false)
		add("emoji in "+f.path, f.path, quote(prefix+"-🎥📼👩🏽‍💻"), false)
		add("RTL marks in "+f.path, f.path, quote(prefix+"-\u200fabc\u202edef\u202c"), false)
		add("quotes and backslashes in "+f.path, f.path, quote(prefix+`-'"\\'\"%_`), false)
		add("SQL in "+f.path, f.path, quote(prefix+"-'); DROP TABLE events; --"), false)
	}
	add("recordId of 256 bytes", "recordId", quote(prefix+"-"+strings.Repeat("r", ledger.MaxIDBytes-len(prefix)-1)), false)
	add("recordId of 300 characters", "recordId", quote(strings.Repeat("r", 300)), true)
	add("roomId of 257 bytes", "roomId", quote(strings.Repeat("é", 128)+"x"), true)
	add("userId of 1000 characters", "userId", quote(strings.Repeat("u", 1000)), true)
	add("fileName of 1024 bytes", "output.fileName", quote(strings.Repeat("f", ledger.MaxFileNameBytes)), false)
	add("fileName of 2000 characters", "output.fileName", quote(strings.Repeat("f", 2000)), true)
	add("errorMessage of 100 KB", "errorMessage", quote(strings.Repeat("e\x00\u00e9", 34_000)), false)
	add("extra of 100 KB", "extra", quote(strings.Repeat("x'\"\\", 25_000)), false)
	add("fileUrl of 100 KB", "output.fileUrl", quote("http://oss/"+strings.Repeat("u", 100_000)), false)
	add("C1 control in sessionId", "sessionId", quote("s\u0085s"), true)
	add("tab in roomId", "roomId", quote("room\tid"), true)
	return cases
}

// quote is s as a JSON string (NUL and other controls escaped).
func quote(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// hostileBody builds a segment callback with a config (so every string
// field is read), values holding raw JSON for the members it overrides.
func hostileBody(n int64, values map[string]string) []byte {
	v := func(path, def string) string {
		if raw, ok := values[path]; ok {
			return raw
		}
		return quote(def)
	}
	return fmt.Appendf(nil, `{"timestamp":%d,"type":2,"appKey":%s,"recordId":%s,"roomId":%s,"sessionId":%s,"userId":%s,`+
		`"mode":0,"extra":%s,"code":500,"errorMessage":%s,`+
		`"config":{"trigger":1,"mixLayout":2,"slicesMin":30,"audioFormat":%s,"videoFormat":%s},`+
		`"output":{"fileName":%s,"fileSize":1000,"fileUrl":%s,"videoResoulation":%s}}`,
		base.UnixMilli()+n, v("appKey", "app"), v("recordId", "?"), v("roomId", "room"), v("sessionId", "sess"), v("userId", "u1"),
		v("extra", "x"), v("errorMessage", "msg"), v("config.audioFormat", "aac"), v("config.videoFormat", "mp4"),
		v("output.fileName", fmt.Sprintf("seg_%d.mp4", n)), v("output.fileUrl", "http://oss/f"), v("output.videoResoulation", "640x480"))
}

// testHostileStrings appends every hostile case at once, each beside a
// good callback, so they share group commits: each hostile one is stored
// and reads back exactly, or is refused with ledger.ErrUnstorable naming
// its field, and no good callback fails with it.
func testHostileStrings(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	cases := HostileCases("hostile")
	at := time.Now()
	type outcome struct {
		cb  rc.Callback
		a   ledger.Appended
		err error
	}
	hostile, good := make([]outcome, len(cases)), make([]outcome, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		cb, err := rc.Parse(c.Body)
		if err != nil {
			t.Fatalf("%s: the body does not parse: %v", c.Name, err)
		}
		hostile[i].cb = cb
		good[i].cb = Callback(t, fmt.Sprintf("good-%03d", i), rc.TypeStart, 0, "", 200)
		wg.Go(func() {
			hostile[i].a, hostile[i].err = s.Append(ctx, ledger.Incoming{Callback: hostile[i].cb, ReceivedAt: at})
		})
		wg.Go(func() {
			good[i].a, good[i].err = s.Append(ctx, ledger.Incoming{Callback: good[i].cb, ReceivedAt: at})
		})
	}
	wg.Wait()
	for i, g := range good {
		if g.err != nil {
			t.Errorf("good callback beside %q: %v", cases[i].Name, g.err)
		}
	}
	stored := map[string]bool{}
	for i, c := range cases {
		h := hostile[i]
		if c.Field != "" {
			fe, ok := errors.AsType[*ledger.FieldError](h.err)
			if !errors.Is(h.err, ledger.ErrUnstorable) || !ok || fe.Field != c.Field {
				t.Errorf("%s: err %v, want ledger.ErrUnstorable naming %s", c.Name, h.err, c.Field)
			}
			if h.err != nil && len(h.err.Error()) > 400 {
				t.Errorf("%s: the error echoes %d bytes, want a bounded message", c.Name, len(h.err.Error()))
			}
			if c.Field != "recordId" { // (a refused recordId is checked against the log below)
				if _, err := s.Recording(ctx, h.cb.RecordID); !errors.Is(err, ledger.ErrNotFound) {
					t.Errorf("%s: refused, yet Recording says %v", c.Name, err)
				}
			}
			continue
		}
		if h.err != nil {
			t.Errorf("%s: %v, want it stored", c.Name, h.err)
			continue
		}
		stored[h.cb.RecordID] = true
		evs, err := s.RecordingEvents(ctx, h.cb.RecordID)
		if err != nil || len(evs) != 1 {
			t.Errorf("%s: %d events, %v; want 1", c.Name, len(evs), err)
			continue
		}
		want := ledger.NewEvent(h.cb, at)
		want.Seq = h.a.Seq
		if want.Seq == 0 { // numbered as projected (PostgreSQL)
			want.Seq = evs[0].Seq
		}
		if diff := cmp.Diff(want, evs[0]); diff != "" {
			t.Errorf("%s: the event read back differs (-want +got):\n%.2000s", c.Name, diff)
		}
		if string(evs[0].Body) != string(c.Body) {
			t.Errorf("%s: the body read back is not byte-exact", c.Name)
		}
		got, err := s.Recording(ctx, h.cb.RecordID)
		if err != nil {
			t.Errorf("%s: Recording: %v", c.Name, err)
			continue
		}
		if diff := cmp.Diff(ledger.Apply(ledger.State{}, h.cb, at.UnixMilli()), got); diff != "" {
			t.Errorf("%s: the recording differs from Apply's (-want +got):\n%.2000s", c.Name, diff)
		}
		if name := h.cb.Output.FileName; name != "" {
			states, err := s.FileRecordings(ctx, name)
			if err != nil || len(states) != 1 || states[0].RecordID != h.cb.RecordID {
				t.Errorf("%s: FileRecordings: %d, %v", c.Name, len(states), err)
			}
		}
	}
	// The log holds the good callbacks and the stored hostile ones, and
	// nothing of the refused.
	evs, err := s.Events(ctx, 0, 10*len(cases))
	if err != nil {
		t.Fatal(err)
	}
	var logged []string
	for _, e := range evs {
		if !strings.HasPrefix(e.RecordID, "good-") {
			logged = append(logged, e.RecordID)
		}
	}
	var want []string
	for id := range stored {
		want = append(want, id)
	}
	sort.Strings(logged)
	sort.Strings(want)
	if diff := cmp.Diff(want, logged); diff != "" {
		t.Errorf("hostile callbacks in the log (-want +got):\n%s", diff)
	}
	if len(evs)-len(logged) != len(cases) {
		t.Errorf("%d good callbacks logged, want %d", len(evs)-len(logged), len(cases))
	}
}
