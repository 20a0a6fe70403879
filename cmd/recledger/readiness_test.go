package main

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// readyz returns /readyz's status and cause.
func readyz(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := testClient.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct{ Status, Cause string }
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Cause
}

func metricsText(t *testing.T, addr string) string {
	t.Helper()
	resp, err := testClient.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// grepLines returns m's lines that start with one of prefixes.
func grepLines(m string, prefixes ...string) string {
	var out []string
	for _, l := range strings.Split(m, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}
