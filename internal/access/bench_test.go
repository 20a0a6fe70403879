package access_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/recledger/recledger/internal/access"
)

// BenchmarkCheck measures the rule on the paths a reader takes, against a
// bare handler in the same run (compare ratios, not nanoseconds).
func BenchmarkCheck(b *testing.B) {
	rule := access.New("a-long-random-api-token-0123456789", nil)
	cookie, err := rule.Login(request("203.0.113.5:1", nil, nil), "a-long-random-api-token-0123456789")
	if err != nil {
		b.Fatal(err)
	}
	bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
	guarded := func(r *access.Rule) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if r.Check(req) != nil {
				w.WriteHeader(401)
				return
			}
			w.WriteHeader(200)
		})
	}
	for _, bc := range []struct {
		name string
		h    http.Handler
		req  *http.Request
	}{
		{"bare handler", bare, request("203.0.113.5:1", nil, nil)},
		{"session cookie", guarded(rule), request("203.0.113.5:1", nil, cookie)},
		{"bearer token", guarded(rule), request("203.0.113.5:1", map[string]string{"Authorization": "Bearer a-long-random-api-token-0123456789"}, nil)},
		{"loopback without token", guarded(access.New("", nil)), request("127.0.0.1:1", nil, nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := httptest.NewRecorder()
			for b.Loop() {
				bc.h.ServeHTTP(w, bc.req)
			}
			if w.Code != 200 {
				b.Fatalf("status %d", w.Code)
			}
		})
	}
}
