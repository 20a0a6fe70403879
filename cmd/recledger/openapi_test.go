package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/webhook"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/removal"
	"github.com/recledger/recledger/rc"
)

// openAPIDoc is the part of an OpenAPI 3.1 document the test reads.
type openAPIDoc struct {
	Paths map[string]map[string]struct {
		Parameters []struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		RequestBody struct {
			Content map[string]struct {
				Schema map[string]any `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
		Responses map[string]openAPIResponse `json:"responses"`
	} `json:"paths"`
	Components struct {
		Schemas   map[string]map[string]any  `json:"schemas"`
		Responses map[string]openAPIResponse `json:"responses"`
	} `json:"components"`
	Webhooks map[string]map[string]any `json:"webhooks"`
}

type openAPIResponse struct {
	Ref     string `json:"$ref"`
	Content map[string]struct {
		Schema map[string]any `json:"schema"`
	} `json:"content"`
}

// response returns the operation's documented answer to status, its
// $ref to the shared responses resolved.
func (d *openAPIDoc) response(path, method string, status int) (openAPIResponse, bool) {
	r, ok := d.Paths[path][method].Responses[strconv.Itoa(status)]
	if ok && r.Ref != "" {
		r, ok = d.Components.Responses[strings.TrimPrefix(r.Ref, "#/components/responses/")]
	}
	return r, ok
}

// validate checks v against a JSON Schema, for the keywords the document
// uses: $ref, type, properties, required, items, enum, const, oneOf,
// allOf, additionalProperties.
func (d *openAPIDoc) validate(schema map[string]any, v any, at string) error {
	if r, ok := schema["$ref"].(string); ok {
		name := strings.TrimPrefix(r, "#/components/schemas/")
		s, ok := d.Components.Schemas[name]
		if !ok {
			return fmt.Errorf("%s: unknown $ref %s", at, r)
		}
		return d.validate(s, v, at)
	}
	if all, ok := schema["allOf"].([]any); ok {
		for _, part := range all {
			if err := d.validate(part.(map[string]any), v, at); err != nil {
				return err
			}
		}
	}
	if c, ok := schema["const"]; ok && c != v {
		return fmt.Errorf("%s: %v is not %v", at, v, c)
	}
	if one, ok := schema["oneOf"].([]any); ok {
		var errs []string
		for _, alt := range one {
			if err := d.validate(alt.(map[string]any), v, at); err == nil {
				return nil
			} else {
				errs = append(errs, err.Error())
			}
		}
		return fmt.Errorf("%s: matches no oneOf: %s", at, strings.Join(errs, "; "))
	}
	if t, ok := schema["type"]; ok {
		var types []string
		switch t := t.(type) {
		case string:
			types = []string{t}
		case []any:
			for _, e := range t {
				types = append(types, e.(string))
			}
		}
		if !slices.ContainsFunc(types, func(t string) bool { return jsonType(v, t) }) {
			return fmt.Errorf("%s: %v is not of type %v", at, v, types)
		}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.Contains(enum, v) {
		return fmt.Errorf("%s: %v is not one of %v", at, v, enum)
	}
	switch v := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		for _, r := range schemaStrings(schema["required"]) {
			if _, ok := v[r]; !ok {
				return fmt.Errorf("%s: required %q missing", at, r)
			}
		}
		for k, val := range v {
			if ps, ok := props[k].(map[string]any); ok {
				if err := d.validate(ps, val, at+"."+k); err != nil {
					return err
				}
			} else if ap, ok := schema["additionalProperties"].(map[string]any); ok {
				if err := d.validate(ap, val, at+"."+k); err != nil {
					return err
				}
			} else if props != nil && schema["additionalProperties"] != true {
				return fmt.Errorf("%s: %q is not in the document", at, k)
			}
		}
	case []any:
		if items, ok := schema["items"].(map[string]any); ok {
			for i, e := range v {
				if err := d.validate(items, e, at+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func schemaStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, e := range list {
		out = append(out, e.(string))
	}
	return out
}

func jsonType(v any, t string) bool {
	switch t {
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "string":
		_, ok := v.(string)
		return ok
	case "integer":
		f, ok := v.(float64)
		return ok && f == math.Trunc(f)
	case "number":
		_, ok := v.(float64)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "null":
		return v == nil
	}
	return false
}

// TestOpenAPIDocumentIsTrue checks the served OpenAPI document against the
// server: every route is documented and every documented operation is
// routed, and real answers (successes and errors) have a documented status
// and a body of the documented schema.
func TestOpenAPIDocumentIsTrue(t *testing.T) {
	dir := t.TempDir()
	hook := "https://example.com/hook?token=abc"
	declared, err := DeclaredDestination{Type: "webhook", URL: hook}.destination(true)
	if err == nil || declared.ID == "" {
		t.Fatalf("a webhook without a secret: %v", err)
	}
	srv := startServer(t, dir, "--app", testApp+"="+testSecret, "--webhook", hook+"="+webhook.NewSecret().Reveal())
	dst := "/v1/destinations/" + declared.ID
	base := "http://" + srv.addr
	srv.postSeeds(t, "type1-start.json", "type2-segment.json", "type3-end.json", "type4-upload.json")

	var doc openAPIDoc
	resp, err := testClient.Get(base + "/v1/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(raw, &doc); err != nil || !strings.Contains(string(raw), `"openapi": "3.1.0"`) {
		t.Fatalf("openapi.json: %v", err)
	}

	// Routes and document agree.
	routes := api.New(nil, api.Options{Metrics: http.NotFoundHandler(), Destinations: &api.Destinations{},
		Erase: func(context.Context, string, string) (removal.Erasure, error) { return removal.Erasure{}, nil }}).Register(http.NewServeMux())
	routes = append(routes, "POST /v1/callbacks/recording")
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	for _, r := range routes {
		if !documented[r] {
			t.Errorf("route %s is not in the OpenAPI document", r)
		}
		delete(documented, r)
	}
	for op := range documented {
		t.Errorf("the OpenAPI document has %s, which is not routed", op)
	}

	seed, err := os.ReadFile(filepath.Join("..", "..", "rc", "testdata", "seed", "type1-start.json"))
	if err != nil {
		t.Fatal(err)
	}
	signed := func(req *http.Request) {
		s := rc.Signer{AppKey: testApp, Secret: testSecret}
		s.Apply(req, s.Sign())
	}
	type call struct {
		method, path, docPath string
		body                  []byte
		contentType           string
		sign                  bool
		status                int
	}
	calls := []call{
		{"POST", "/v1/callbacks/recording", "", seed, "application/json", true, 200},
		{"POST", "/v1/callbacks/recording", "", seed, "application/json", false, 401},
		{"POST", "/v1/callbacks/recording", "", []byte(`[1]`), "application/json", true, 400},
		{"POST", "/v1/callbacks/recording", "", seed, "text/plain", true, 415},
		{"POST", "/v1/callbacks/recording", "", bytes.Repeat([]byte(" "), 2<<20), "application/json", true, 413},
		{"GET", "/v1/callbacks/recording", "", nil, "", false, 405},
		{"GET", "/v1/recordings", "", nil, "", false, 200},
		{"GET", "/v1/recordings?status=complete&limit=1", "/v1/recordings", nil, "", false, 200},
		{"GET", "/v1/recordings?limit=0", "/v1/recordings", nil, "", false, 400},
		{"GET", "/v1/recordings/8329208b99410743dcfeb80548e2c0ec", "/v1/recordings/{recordId}", nil, "", false, 200},
		{"GET", "/v1/recordings/nope", "/v1/recordings/{recordId}", nil, "", false, 404},
		{"GET", "/v1/files/lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4", "/v1/files/{fileName}", nil, "", false, 200},
		{"GET", "/v1/files/nope.mp4", "/v1/files/{fileName}", nil, "", false, 404},
		{"GET", "/v1/files", "", nil, "", false, 200},
		{"GET", "/v1/recordings?verification=missing", "/v1/recordings", nil, "", false, 200},
		{"GET", "/v1/recordings?verification=lost", "/v1/recordings", nil, "", false, 400},
		// serve runs without storage verification here: re-checks are 409.
		{"POST", "/v1/recordings/8329208b99410743dcfeb80548e2c0ec/verify", "/v1/recordings/{recordId}/verify", nil, "", false, 409},
		{"POST", "/v1/files/lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4/verify", "/v1/files/{fileName}/verify", nil, "", false, 409},
		{"POST", "/v1/verifications/recheck?state=missing", "/v1/verifications/recheck", nil, "", false, 409},
		{"GET", "/v1/files?uploadState=uploaded&roomId=111&limit=1", "/v1/files", nil, "", false, 200},
		{"GET", "/v1/files?uploadStatus=uploaded", "/v1/files", nil, "", false, 400},
		{"GET", "/v1/events?after=1&limit=2", "/v1/events", nil, "", false, 200},
		{"GET", "/v1/events?tail=2", "/v1/events", nil, "", false, 200},
		{"GET", "/v1/events?after=x", "/v1/events", nil, "", false, 400},
		{"GET", "/v1/recordings?roomid=111", "/v1/recordings", nil, "", false, 400},
		{"GET", "/v1/events/stream?from=0", "/v1/events/stream", nil, "", false, 200},
		{"GET", "/v1/events/stream?after=999999", "/v1/events/stream", nil, "", false, 400},
		{"GET", "/healthz?verbose=1", "/healthz", nil, "", false, 400},
		{"GET", "/v1/openapi.json?v=1", "/v1/openapi.json", nil, "", false, 400},
		{"GET", "/metrics?name[]=go_goroutines", "/metrics", nil, "", false, 200},
		{"GET", "/v1/quarantine", "", nil, "", false, 200},
		{"GET", "/v1/quarantine?limit=-1", "/v1/quarantine", nil, "", false, 400},
		{"GET", "/healthz", "", nil, "", false, 200},
		{"GET", "/readyz", "", nil, "", false, 200},
		{"GET", "/metrics", "", nil, "", false, 200},
		{"GET", "/v1/events/stream", "", nil, "", false, 200},
		{"GET", "/v1/destinations", "", nil, "", false, 200},
		{"POST", "/v1/destinations", "", []byte(`{"url":"https://example.com/b","events":["recording.completed"]}`), "application/json", false, 201},
		{"POST", "/v1/destinations", "", []byte(`{"type":"nats","url":"nats://nats.example.com:4222","appKey":"k","maxAge":"336h"}`), "application/json", false, 201},
		{"POST", "/v1/destinations", "", []byte(`{"url":"http://127.0.0.1:9/x"}`), "application/json", false, 400},
		{"POST", "/v1/destinations", "", []byte(`{"url":"https://example.com/c","events":["recording.nope"]}`), "application/json", false, 400},
		{"POST", "/v1/destinations", "", []byte(`{"url":"https://example.com/c","colour":"red"}`), "application/json", false, 400},
		{"GET", dst, "/v1/destinations/{id}", nil, "", false, 200},
		{"GET", "/v1/destinations/nope", "/v1/destinations/{id}", nil, "", false, 404},
		{"PATCH", dst, "/v1/destinations/{id}", []byte(`{"enabled":false,"roomPrefix":"room-"}`), "application/json", false, 200},
		{"PATCH", dst, "/v1/destinations/{id}", []byte(`{"url":"ftp://example.com/"}`), "application/json", false, 400},
		{"GET", dst + "/attempts", "/v1/destinations/{id}/attempts", nil, "", false, 200},
		{"GET", dst + "/attempts?limit=0", "/v1/destinations/{id}/attempts", nil, "", false, 400},
		{"GET", dst + "/dead-letters", "/v1/destinations/{id}/dead-letters", nil, "", false, 200},
		{"POST", dst + "/redeliver", "/v1/destinations/{id}/redeliver", nil, "", false, 200},
		{"POST", dst + "/rotate-secret", "/v1/destinations/{id}/rotate-secret", nil, "", false, 200},
		{"GET", dst + "/public-key", "/v1/destinations/{id}/public-key", nil, "", false, 404},
		{"DELETE", "/v1/destinations/nope", "/v1/destinations/{id}", nil, "", false, 404},
		{"DELETE", dst, "/v1/destinations/{id}", nil, "", false, 204},
		// Without --api-token nobody may erase (TestEraseEndToEnd erases).
		{"DELETE", "/v1/users/222", "/v1/users/{userId}", nil, "", false, 403},
	}
	for _, c := range calls {
		docPath := c.docPath
		if docPath == "" {
			docPath = strings.SplitN(c.path, "?", 2)[0]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, c.method, base+c.path, bytes.NewReader(c.body))
		if c.contentType != "" {
			req.Header.Set("Content-Type", c.contentType)
		}
		if c.sign {
			signed(req)
		}
		resp, err := testClient.Do(req)
		if err != nil {
			cancel()
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		var body []byte
		if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			body, _ = io.ReadAll(resp.Body)
		}
		resp.Body.Close()
		cancel()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d (%s)", c.method, c.path, resp.StatusCode, c.status, body)
			continue
		}
		// A 405 of the callback endpoint is documented under its POST.
		method := strings.ToLower(c.method)
		if c.status == 405 {
			method = "post"
		}
		opResp, ok := doc.response(docPath, method, resp.StatusCode)
		if !ok {
			t.Errorf("%s %s answered %d, which %s %s does not document", c.method, c.path, resp.StatusCode, method, docPath)
			continue
		}
		ct := strings.SplitN(resp.Header.Get("Content-Type"), ";", 2)[0]
		if len(body) == 0 && len(opResp.Content) == 0 {
			continue // documented without a body, and none came
		}
		media, ok := opResp.Content[ct]
		if !ok {
			t.Errorf("%s %s: content type %q not documented for %d", c.method, c.path, ct, resp.StatusCode)
			continue
		}
		if ct != "application/json" {
			continue
		}
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Errorf("%s %s: %v", c.method, c.path, err)
			continue
		}
		if err := doc.validate(media.Schema, v, c.method+" "+c.path); err != nil {
			t.Errorf("answer does not match the document: %v", err)
		}
	}

	// RC's four seed examples are bodies of the callback's documented schema.
	cbSchema := doc.Paths["/v1/callbacks/recording"]["post"].RequestBody.Content["application/json"].Schema
	if cbSchema == nil {
		t.Error("the callback's request body has no schema")
	}
	for _, name := range []string{"type1-start.json", "type2-segment.json", "type3-end.json", "type4-upload.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "rc", "testdata", "seed", name))
		if err != nil {
			t.Fatal(err)
		}
		var v any
		json.Unmarshal(b, &v)
		if err := doc.validate(cbSchema, v, name); err != nil {
			t.Errorf("seed example against the callback schema: %v", err)
		}
	}
	var wrongType any
	json.Unmarshal([]byte(`{"type":2,"appKey":"a","recordId":"r","output":{"fileName":"f","fileSize":"big"}}`), &wrongType)
	if err := doc.validate(cbSchema, wrongType, "bad segment"); err == nil {
		t.Error("the callback schema takes a segment whose fileSize is not a number")
	}

	// Every documented query parameter is one its endpoint reads: the
	// server refuses the ones it does not (unknown_parameter).
	concrete := strings.NewReplacer("{recordId}", "8329208b99410743dcfeb80548e2c0ec",
		"{fileName}", "lSA2G6CUf9A-6nnoNwXCx8_111_222_1530027865231.mp4", "{id}", "nope")
	for path, ops := range doc.Paths {
		op, ok := ops["get"]
		if !ok {
			continue
		}
		for _, p := range op.Parameters {
			if p.In != "query" {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+concrete.Replace(path)+"?"+url.QueryEscape(p.Name)+"=1", nil)
			resp, err := testClient.Do(req)
			if err != nil {
				cancel()
				t.Fatal(err)
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
				json.NewDecoder(resp.Body).Decode(&e)
			}
			resp.Body.Close()
			cancel()
			if e.Error.Code == "unknown_parameter" {
				t.Errorf("GET %s documents %s, which the server refuses: %s", path, p.Name, e.Error.Message)
			}
		}
	}

	// The token rule's answer, from a server with a token.
	tokened := startServer(t, t.TempDir(), "--api-token", "t0ken")
	resp, err = testClient.Get("http://" + tokened.addr + "/v1/recordings")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var v any
	json.Unmarshal(body, &v)
	if r, ok := doc.response("/v1/recordings", "get", 401); !ok || resp.StatusCode != 401 {
		t.Errorf("no token: %d, documented: %v", resp.StatusCode, ok)
	} else if err := doc.validate(r.Content["application/json"].Schema, v, "401"); err != nil {
		t.Error(err)
	}
}

// TestOutboundEventsMatchTheDocument: events of every type, derived from
// recordings as the engine will derive them, validate against the
// OutboundEvent schema, whose type enum and webhooks section name every
// type and nothing else.
func TestOutboundEventsMatchTheDocument(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "internal", "api", "openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	schema := doc.Components.Schemas["OutboundEvent"]
	if schema == nil {
		t.Fatal("no OutboundEvent schema")
	}
	var enum []string
	for _, v := range schema["properties"].(map[string]any)["type"].(map[string]any)["enum"].([]any) {
		enum = append(enum, v.(string))
	}
	var types, hooks, all []string
	for _, ty := range delivery.Types {
		types = append(types, string(ty))
	}
	for _, ty := range slices.Concat(delivery.Types, delivery.SystemTypes) {
		all = append(all, string(ty))
	}
	for name := range doc.Webhooks {
		hooks = append(hooks, name)
	}
	slices.Sort(types)
	slices.Sort(all)
	slices.Sort(enum)
	slices.Sort(hooks)
	if !slices.Equal(enum, types) || !slices.Equal(hooks, all) {
		t.Fatalf("recording event types %v, the OutboundEvent enum %v; every type %v, webhooks %v", types, enum, all, hooks)
	}
	disabled := delivery.NewDisabledEvent(&delivery.Destination{ID: "dst_x", Kind: delivery.Webhook}, "https://example.com/?t=REDACTED", "the receiver answered 410 Gone", 1_764_000_000_000)
	body, _ := json.Marshal(disabled)
	var dv any
	json.Unmarshal(body, &dv)
	if err := doc.validate(doc.Components.Schemas["DestinationDisabledEvent"], dv, "destination.disabled"); err != nil {
		t.Errorf("%v\n%s", err, body)
	}

	const t0 = int64(1_764_000_000_000)
	cb := func(typ rc.Type, ts int64, file string, code int) rc.Callback {
		c := rc.Callback{Timestamp: ts, Type: typ, AppKey: "app", RecordID: fmt.Sprint("rec", code), RoomID: "room",
			SessionID: "sess", UserID: "u1", Mode: rc.ModeVideo, Code: code}
		c.Output.FileName = file
		switch typ {
		case rc.TypeStart:
			c.Config = &rc.Config{MixLayout: 2, SlicesMin: 30, AudioFormat: "aac", VideoFormat: "mp4"}
		case rc.TypeSegment, rc.TypeEnd:
			size := int64(1 << 20)
			c.Output.FileSize = &size
		case rc.TypeUpload:
			c.Output.FileURL = "https://oss.example.com/" + file
		}
		return c
	}
	seen := map[delivery.Type]bool{}
	rules := delivery.Rules{}
	for _, code := range []int{200, 503} { // a recording that completes; one whose end fails and whose upload never comes
		var (
			st  ledger.State
			ann delivery.Announced
			at  = t0
		)
		derive := func(now int64) {
			for _, c := range rules.Derive(&st, &ann, now) {
				seen[c.Type] = true
				body, err := json.Marshal(delivery.NewEvent(&st, c, now))
				if err != nil {
					t.Fatal(err)
				}
				var v any
				json.Unmarshal(body, &v)
				if err := doc.validate(schema, v, string(c.Type)); err != nil {
					t.Errorf("%s: %v\n%s", c.Type, err, body)
				}
			}
		}
		for _, c := range []rc.Callback{
			cb(rc.TypeStart, t0, "", 200),
			cb(rc.TypeSegment, t0+1_800_000, "a.mp4", 200),
			cb(rc.TypeUpload, t0+1_805_000, "a.mp4", 500),
			cb(rc.TypeEnd, t0+2_000_000, "b.mp4", code),
			cb(rc.TypeUpload, t0+2_005_000, "b.mp4", 200),
		} {
			c.RecordID = fmt.Sprint("rec", code)
			at += 1000
			st = ledger.Apply(st, c, at)
			derive(at)
		}
		if code == 200 {
			at += 1000
			st = ledger.Apply(st, cb(rc.TypeUpload, t0+2_015_000, "a.mp4", 200), at)
		}
		derive(at + ledger.OverdueAfter.Milliseconds() + 1) // settled, and past the upload window
		// The storage verifier's events, with the file's verification.
		if code == 200 {
			status, size, checked := 200, int64(1<<20), at
			for i, v := range []ledger.Verification{
				{State: ledger.VerifyVerified, HTTPStatus: &status, Size: &size, ContentType: "video/mp4", ETag: `"e"`, CheckedAt: &checked, Attempts: 1},
				{State: ledger.VerifySizeMismatch, HTTPStatus: &status, Size: &size, CheckedAt: &checked, Attempts: 2, Error: "size 1048576, RC said 5"},
			} {
				ty := []delivery.Type{delivery.FileVerified, delivery.FileMissing}[i]
				ann.Count++
				ev := delivery.NewEvent(&st, delivery.Change{Type: ty, Sequence: ann.Count, File: "a.mp4"}, at)
				ev.File.Verification = &v
				seen[ty] = true
				body, err := json.Marshal(ev)
				if err != nil {
					t.Fatal(err)
				}
				var parsed any
				json.Unmarshal(body, &parsed)
				if err := doc.validate(schema, parsed, string(ty)); err != nil {
					t.Errorf("%s: %v\n%s", ty, err, body)
				}
			}
		}
	}
	for _, ty := range delivery.Types {
		if !seen[ty] {
			t.Errorf("no %s event was checked", ty)
		}
	}
}
