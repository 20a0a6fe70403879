package api_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/dispatch"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storetest"
)

// TestUnknownQueryParametersAreRefused: a parameter an endpoint does not
// read is a 400 unknown_parameter naming it (and the right spelling when
// only the case is off), on every endpoint, where ignoring it would answer
// as if it were absent: /v1/recordings?roomid=... listed every recording.
// The parameters each endpoint does read still pass.
func TestUnknownQueryParametersAreRefused(t *testing.T) {
	s := fill(t)
	src := any(s).(delivery.Source)
	a := api.New(s, api.Options{Metrics: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "# metrics\n") }),
		Destinations: &api.Destinations{Store: src.Delivery(), Senders: dispatch.DefaultSenders(false, time.Now)}})
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/destinations", "application/json", strings.NewReader(`{"url":"https://example.com/h"}`))
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ ID string }
	json.NewDecoder(resp.Body).Decode(&d)
	resp.Body.Close()
	if resp.StatusCode != 201 || d.ID == "" {
		t.Fatalf("add a destination: %d %+v", resp.StatusCode, d)
	}
	dst := "/v1/destinations/" + d.ID

	for _, c := range []struct {
		method, path string
		status       int
		unknown      string // the parameter the error names
		hint         string // and what it says beside
	}{
		{"GET", "/v1/recordings?roomid=room-2", 400, "roomid", "did you mean roomId?"},
		{"GET", "/v1/recordings?roomId=room-2&statuss=complete", 400, "statuss", "takes appKey, roomId"},
		{"GET", "/v1/recordings?roomId=room-2&status=complete&limit=5&since=0&until=9999999999999&mode=1&appKey=a&sessionId=s&userId=u&uploadState=none", 200, "", ""},
		{"GET", "/v1/recordings/rec-done?verbose=1", 400, "verbose", "takes none"},
		{"GET", "/v1/files/x.mp4?x=1", 400, "x", ""},
		{"GET", "/v1/events?After=3", 400, "After", "did you mean after?"},
		{"GET", "/v1/events?after=1&limit=2", 200, "", ""},
		{"GET", "/v1/events?tail=2", 200, "", ""},
		{"GET", "/v1/events/stream?since=0", 400, "since", ""},
		{"GET", "/v1/quarantine?before=5", 400, "before", ""},
		{"GET", "/v1/quarantine?limit=5&cursor=9", 200, "", ""},
		{"GET", "/healthz?verbose", 400, "verbose", ""},
		{"GET", "/readyz?x=", 400, "x", ""},
		{"GET", "/metrics?name[]=go_goroutines", 200, "", ""},
		{"GET", "/metrics?names=go_goroutines", 400, "names", ""},
		{"GET", "/v1/openapi.json?v=2", 400, "v", ""},
		{"GET", "/v1/destinations?type=webhook", 400, "type", ""},
		{"GET", dst + "/attempts?limit=5", 200, "", ""},
		{"GET", dst + "/attempts?limt=5", 400, "limt", ""},
		{"GET", dst + "/dead-letters?cursor=1", 400, "cursor", ""},
		{"DELETE", dst + "?force=1", 400, "force", ""},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, resp.StatusCode, c.status, body)
			continue
		}
		if c.unknown == "" {
			continue
		}
		var e apiError
		if err := json.Unmarshal(body, &e); err != nil || e.Error.Code != "unknown_parameter" ||
			!strings.Contains(e.Error.Message, `"`+c.unknown+`"`) || !strings.Contains(e.Error.Message, c.hint) {
			t.Errorf("%s %s: %s, want unknown_parameter naming %q and saying %q", c.method, c.path, body, c.unknown, c.hint)
		}
	}
}

// nullList finds a list (or the header map) answered as null.
var nullList = regexp.MustCompile(`"(items|files|events|keys|alsoIn|seqs|header)":null`)

// TestEmptyListsAreArrays: every list the API answers is [] when empty,
// never null, on both backends: an empty store, a destination with no
// attempts or dead letters, and a quarantined request without headers or
// body.
func TestEmptyListsAreArrays(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string, s ledger.Store) {
		srv := destinationsAPI(t, s)
		status, body := call(t, srv, "POST", "/v1/destinations", []byte(`{"url":"https://example.com/h"}`))
		var d struct{ ID string }
		if err := json.Unmarshal([]byte(body), &d); status != 201 || err != nil {
			t.Fatalf("add a destination: %d %s", status, body)
		}
		for _, c := range []struct{ path, want string }{
			{"/v1/recordings", `"items":[]`},
			{"/v1/recordings?roomId=none", `"items":[]`},
			{"/v1/events", `"items":[]`},
			{"/v1/events?tail=5", `"items":[]`},
			{"/v1/events?tail=0", `"items":[]`},
			{"/v1/quarantine", `"items":[]`},
			{"/v1/destinations/" + d.ID + "/attempts", `"items":[]`},
			{"/v1/destinations/" + d.ID + "/dead-letters", `"items":[]`},
			{"/v1/destinations/" + d.ID, `"events":[]`},
		} {
			status, body := call(t, srv, "GET", c.path, nil)
			if status != 200 || !strings.Contains(body, c.want) || nullList.MatchString(body) {
				t.Errorf("%s: %d %s, want %s and no null list", c.path, status, body, c.want)
			}
		}
		// A refused request with neither headers nor a body.
		if err := s.Quarantine(t.Context(), ledger.Rejection{At: 1, Status: 400, Reason: "bad_request", Method: "POST", Path: "/v1/callbacks/recording"}); err != nil {
			t.Fatal(err)
		}
		status, body = call(t, srv, "GET", "/v1/quarantine", nil)
		if status != 200 || !strings.Contains(body, `"header":{}`) || nullList.MatchString(body) {
			t.Errorf("quarantine: %d %s, want an empty header object and no null list", status, body)
		}
	})
}
