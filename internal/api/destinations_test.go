package api_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/access"
	"github.com/recledger/recledger/internal/api"
	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/dispatch"
	"github.com/recledger/recledger/internal/delivery/webhook"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/internal/storetest"
)

// destinationsAPI serves the API with /v1/destinations on a store of the
// test's backend.
func destinationsAPI(t *testing.T, s ledger.Store) *httptest.Server {
	t.Helper()
	src, ok := s.(delivery.Source)
	if !ok {
		t.Fatalf("%T keeps no outbox", s)
	}
	a := api.New(s.(api.Store), api.Options{Destinations: &api.Destinations{Store: src.Delivery(),
		Senders: dispatch.DefaultSenders(false, time.Now)}})
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDestinationsHostileInput: bodies with NUL bytes, control
// characters, huge strings, unknown fields, private addresses and broken
// JSON are each a 400 with a JSON error, on both backends, and leave the
// store serving the next request; a destination's secret is shown once,
// when made, and its URL's query values never.
func TestDestinationsHostileInput(t *testing.T) {
	storetest.Each(t, func(t *testing.T, backend string, s ledger.Store) {
		srv := destinationsAPI(t, s)
		for name, body := range map[string]string{
			"NUL in the URL":               `{"url":"https://example.com/\u0000"}`,
			"NUL in the description":       `{"url":"https://example.com/","description":"a\u0000b"}`,
			"NUL in the app key":           `{"url":"https://example.com/","appKey":"a\u0000"}`,
			"control in room prefix":       `{"url":"https://example.com/","roomPrefix":"r\u0007"}`,
			"a megabyte description":       `{"url":"https://example.com/","description":"` + strings.Repeat("d", 1<<20) + `"}`,
			"a 100 KB URL":                 `{"url":"https://example.com/` + strings.Repeat("u", 100<<10) + `"}`,
			"100 events":                   `{"url":"https://example.com/","events":[` + strings.Repeat(`"recording.ended",`, 99) + `"recording.ended"]}`,
			"an unknown event":             `{"url":"https://example.com/","events":["recording.nope"]}`,
			"an unknown field":             `{"url":"https://example.com/","colour":"red"}`,
			"no URL":                       `{}`,
			"broken JSON":                  `{"url":`,
			"an array":                     `[1]`,
			"loopback":                     `{"url":"http://127.0.0.1:9/"}`,
			"link-local":                   `{"url":"http://169.254.169.254/latest/meta-data"}`,
			"credentials in the URL":       `{"url":"https://user:pw@example.com/"}`,
			"a bad secret":                 `{"url":"https://example.com/","secret":"whsec_!!"}`,
			"a nats URL as a webhook":      `{"url":"nats://example.com:4222"}`,
			"signing for nats":             `{"type":"nats","url":"nats://example.com:4222","signing":"v1a"}`,
			"an unknown type":              `{"type":"carrier-pigeon","url":"https://example.com/"}`,
			"a stream kept an hour":        `{"type":"nats","url":"nats://example.com:4222","maxAge":"1h"}`,
			"a maxAge that is no duration": `{"type":"nats","url":"nats://example.com:4222","maxAge":"soon"}`,
			"maxAge for a webhook":         `{"url":"https://example.com/","maxAge":"336h"}`,
		} {
			status, answer := call(t, srv, "POST", "/v1/destinations", []byte(body))
			var e struct {
				Error struct{ Code, Message string }
			}
			if status != 400 || json.Unmarshal([]byte(answer), &e) != nil || e.Error.Message == "" {
				t.Errorf("%s: %d %.200s; want 400 with a JSON error", name, status, answer)
			}
		}
		status, answer := call(t, srv, "POST", "/v1/destinations", []byte(`{"url":"https://example.com/hook?token=s3cr3t-t0ken&x=1","events":["recording.completed"]}`))
		var made struct{ ID, Secret, URL string }
		if status != 201 || json.Unmarshal([]byte(answer), &made) != nil || !strings.HasPrefix(made.Secret, "whsec_") {
			t.Fatalf("after the hostile bodies, a good one: %d %s", status, answer)
		}
		for _, path := range []string{"/v1/destinations", "/v1/destinations/" + made.ID} {
			status, answer := call(t, srv, "GET", path, nil)
			if status != 200 || strings.Contains(answer, made.Secret) || strings.Contains(answer, made.Secret[6:]) || strings.Contains(answer, "s3cr3t-t0ken") {
				t.Errorf("GET %s shows the secret or the URL's token: %d %s", path, status, answer)
			}
			if !strings.Contains(answer, "REDACTED") || !strings.Contains(answer, made.Secret[:10]) {
				t.Errorf("GET %s: want the URL's query REDACTED and the secret's hint: %s", path, answer)
			}
		}
		for _, c := range []struct {
			method, path, body string
			status             int
		}{
			{"PATCH", "/v1/destinations/" + made.ID, `{"description":"x\u0000"}`, 400},
			{"PATCH", "/v1/destinations/" + made.ID, `{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}`, 400},
			{"PATCH", "/v1/destinations/nope%00", `{"enabled":false}`, 404},
			{"DELETE", "/v1/destinations/nope%00", ``, 404},
			{"GET", "/v1/destinations/nope%FF/attempts", ``, 404},
			{"POST", "/v1/destinations/" + made.ID + "/redeliver", `{"seqs":[` + strings.Repeat("1,", 1000) + `1]}`, 400},
			{"POST", "/v1/destinations/" + made.ID + "/redeliver", `{"seqs":"all"}`, 400},
			{"GET", "/v1/destinations/" + strings.Repeat("x", 100<<10), ``, 404},
			{"PATCH", "/v1/destinations/" + made.ID, `{"enabled":false}`, 200},
		} {
			if status, answer := call(t, srv, c.method, c.path, []byte(c.body)); status != c.status {
				t.Errorf("%s %.60s %.60s: %d %.200s; want %d", c.method, c.path, c.body, status, answer, c.status)
			}
		}
	})
}

// TestDestinationV1a: a webhook made with signing v1a gets an ed25519
// key; its public key is in the answer and served without the token at
// /v1/destinations/{id}/public-key, and rotating gives a new key pair.
func TestDestinationV1a(t *testing.T) {
	s := storetest.SQLite(t, sqlitestore.Options{})
	var src delivery.Source = s
	rule := access.New("t0ken-for-v1a-tests", time.Now)
	a := api.New(s, api.Options{Access: rule, Destinations: &api.Destinations{Store: src.Delivery(), Senders: dispatch.DefaultSenders(false, time.Now)}})
	mux := http.NewServeMux()
	a.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/destinations", strings.NewReader(`{"url":"https://example.com/h","signing":"v1a"}`))
	req.Header.Set("Authorization", "Bearer t0ken-for-v1a-tests")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var made struct{ ID, Secret, PublicKey string }
	json.NewDecoder(resp.Body).Decode(&made)
	resp.Body.Close()
	if resp.StatusCode != 201 || !strings.HasPrefix(made.Secret, "whsk_") || !strings.HasPrefix(made.PublicKey, "whpk_") {
		t.Fatalf("POST signing v1a: %d %+v", resp.StatusCode, made)
	}
	kp, err := webhook.ParseKeyPair(made.Secret)
	if err != nil || kp.PublicKey() != made.PublicKey {
		t.Fatalf("the public key is not the key's: %v", err)
	}
	status, body := call(t, srv, "GET", "/v1/destinations/"+made.ID+"/public-key", nil) // no token
	if status != 200 || !strings.Contains(body, made.PublicKey) {
		t.Errorf("public-key without a token: %d %s", status, body)
	}
	if status, _ := call(t, srv, "GET", "/v1/destinations/"+made.ID, nil); status != 401 {
		t.Errorf("the destination itself without a token: %d, want 401", status)
	}
}
