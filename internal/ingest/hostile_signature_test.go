package ingest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ingest"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// TestHostileSignatureValuesNeverReachTheReplayMemory sends callbacks whose
// nonce, timestamp or signature hold what one replay memory stores and
// another refuses (NUL and bytes that are not UTF-8 through the query
// fallback, bytes >= 0x80 in a header), most of them signed with the right
// secret so that only their shape can refuse them, while good callbacks
// are sent at the same time. Each hostile one is answered 401
// malformed_signature and quarantined on both stores (before the fix
// SQLite stored them and PostgreSQL answered 503 on every retry); each
// good one is stored.
func TestHostileSignatureValuesNeverReachTheReplayMemory(t *testing.T) {
	runOnStores(t, func(t *testing.T, store ledger.Store) {
		v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{app: {secret}}, Replay: store})
		if err != nil {
			t.Fatal(err)
		}
		h, err := ingest.New(store, ingest.Options{Verifier: v})
		if err != nil {
			t.Fatal(err)
		}
		base := loopbackServer(t, h)
		now := strconv.FormatInt(time.Now().UnixMilli(), 10)
		inQuery := func(nonce, ts, sig string) func(*http.Request) {
			return func(r *http.Request) {
				r.URL.RawQuery = url.Values{"nonce": {nonce}, "timestamp": {ts}, "signature": {sig}}.Encode()
			}
		}
		signedInQuery := func(nonce string) func(*http.Request) { return inQuery(nonce, now, rc.Sign(secret, nonce, now)) }
		hostile := []struct {
			name string
			sign func(*http.Request)
		}{
			{"NUL nonce, signed", signedInQuery("12\x0034")},
			{"invalid UTF-8 nonce, signed", signedInQuery("\xff\xfe")},
			{"emoji nonce, signed", signedInQuery("\U0001F600")},
			{"65-character nonce, signed", signedInQuery(strings.Repeat("7", 65))},
			{"NUL nonce, badly signed", inQuery("\x00", now, strings.Repeat("0", 40))},
			{"NUL timestamp", inQuery("n", now[:12]+"\x00", strings.Repeat("0", 40))},
			{"invalid UTF-8 signature", inQuery("n", now, strings.Repeat("a", 39)+"\xff")},
			{"byte 0x80 in a header nonce, signed", func(r *http.Request) {
				r.Header["Nonce"] = []string{"12\x80\xff"}
				r.Header["Timestamp"] = []string{now}
				r.Header["Signature"] = []string{rc.Sign(secret, "12\x80\xff", now)}
			}},
		}
		const goods = 20
		var wg sync.WaitGroup
		goodAnswers := make([]answer, goods)
		hostileAnswers := make([]answer, len(hostile))
		for i := range goods {
			wg.Go(func() {
				goodAnswers[i] = post(t, base, callbackBody(fmt.Sprintf("good-%02d", i), i, nil), signer(), "application/json")
			})
		}
		for i, c := range hostile {
			wg.Go(func() {
				hostileAnswers[i] = post(t, base, callbackBody(fmt.Sprintf("hostile-%02d", i), 100+i, nil), c.sign, "application/json")
			})
		}
		wg.Wait()
		for i, a := range goodAnswers {
			if a.status != 200 {
				t.Errorf("good callback %d: %d %v", i, a.status, a.body)
			}
		}
		for i, a := range hostileAnswers {
			if a.status != 401 || errorCode(a) != "malformed_signature" {
				t.Errorf("%s: %d %v; want 401 malformed_signature", hostile[i].name, a.status, a.body)
			}
		}
		// RC retries what was not answered 200: a retry is refused the same.
		if a := post(t, base, callbackBody("hostile-00", 100, nil), hostile[0].sign, "application/json"); a.status != 401 {
			t.Errorf("retried %s: %d %v; want 401", hostile[0].name, a.status, a.body)
		}
		q, err := store.QuarantineList(context.Background(), 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		refused := 0
		for _, r := range q {
			if r.Status == 401 {
				refused++
			}
		}
		if refused != len(hostile)+1 {
			t.Errorf("%d requests quarantined with 401, want %d", refused, len(hostile)+1)
		}
		evs, err := store.Events(context.Background(), 0, 1000)
		if err != nil || len(evs) != goods {
			t.Errorf("log holds %d events (%v), want the %d good ones", len(evs), err, goods)
		}
	})
}
