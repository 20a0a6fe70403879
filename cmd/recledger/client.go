package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/recledger/recledger/internal/display"
)

// exitNotFound is the exit code of a query that found nothing.
const exitNotFound = 3

// errNotFound marks an answer 404: run exits with exitNotFound.
var errNotFound = errors.New("not found")

// client talks to a running recledger's query API.
type client struct {
	base  string
	token string
	http  *http.Client
	json  bool           // print JSON instead of tables
	loc   *time.Location // the zone times are shown in: local, or UTC under --utc
	// A list command's -o ids and --no-headers.
	ids, noHeaders bool
	// flags names the command's flag for each API query parameter, so an
	// answer about a parameter names what the user typed.
	flags map[string]string
}

const defaultServer = "http://127.0.0.1:8080"

// addListFlags gives a list command -o and --no-headers.
func addListFlags(cmd *cobra.Command) {
	cmd.Flags().StringP("output", "o", "table", "table; ids (one id a line, for xargs); or json (as --json)")
	cmd.Flags().Bool("no-headers", false, "print the table's rows without its header line")
}

// addClientFlags gives a query command --server, --api-token and --json.
func addClientFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("server", defaultServer, "recledger server URL (env RECLEDGER_SERVER)")
	f.String("api-token", "", "bearer token of the server's query API (env RECLEDGER_API_TOKEN)")
	f.Bool("json", false, "print JSON for scripts instead of a table")
	f.Bool("utc", false, "show times in UTC instead of the local zone (the offset is always shown)")
}

func newClient(cmd *cobra.Command) (*client, error) {
	f := cmd.Flags()
	server, _ := f.GetString("server")
	if env := environ("RECLEDGER_SERVER"); env != "" && !f.Changed("server") {
		server = env
	}
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: want an http or https URL", server)
	}
	token, _ := f.GetString("api-token")
	if token == "" {
		token = environ("RECLEDGER_API_TOKEN")
	}
	asJSON, _ := f.GetBool("json")
	c := &client{base: strings.TrimRight(server, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}, json: asJSON,
		loc: zone(cmd)}
	if f.Lookup("output") != nil {
		output, _ := f.GetString("output")
		switch output {
		case "table":
		case "ids":
			c.ids = true
		case "json":
			c.json = true
		default:
			return nil, fmt.Errorf("--output %q: want table, ids or json", output)
		}
		if c.ids && asJSON {
			return nil, errors.New("--json and -o ids: give one")
		}
		c.noHeaders, _ = f.GetBool("no-headers")
	}
	return c, nil
}

// zone is where cmd shows times: UTC under --utc, else the local zone.
func zone(cmd *cobra.Command) *time.Location {
	if utc, _ := cmd.Flags().GetBool("utc"); utc {
		return time.UTC
	}
	return time.Local
}

// clock shows times to people under display's rule, in one zone, with how
// long ago they were as of now.
type clock struct {
	now time.Time
	loc *time.Location
}

// clock is the view of times for one command's output.
func (c *client) clock() clock {
	return clock{now: time.Now(), loc: c.loc}
}

// request sends a GET and returns the response of a 2xx, or the server's
// error as a Go error (errNotFound for a 404).
func (c *client) request(ctx context.Context, path string, q url.Values, timeout bool) (*http.Response, error) {
	return c.do(ctx, http.MethodGet, path, q, nil, timeout)
}

// do sends a request with an optional JSON body.
func (c *client) do(ctx context.Context, method, path string, q url.Values, body []byte, timeout bool) (*http.Response, error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := c.http
	if !timeout {
		hc = &http.Client{} // a stream stays open
	}
	resp, err := hc.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("%s: connection refused: is `recledger serve` running? (--server or RECLEDGER_SERVER names another address)", c.base)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Code, Message string }
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(answer))
	if json.Unmarshal(answer, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Message
	}
	if resp.StatusCode == http.StatusNotFound && e.Error.Code == "not_found" {
		return nil, fmt.Errorf("%s: %w", path, errNotFound)
	}
	if e.Error.Code == "bad_parameter" {
		// The API names its parameter ("query parameter roomId: ..."); the
		// user typed a flag.
		for param, flag := range c.flags {
			if rest, ok := strings.CutPrefix(msg, "query parameter "+param+": "); ok {
				return nil, &httpError{status: resp.StatusCode, msg: "--" + flag + ": " + rest}
			}
		}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		hint := "give the server's token with --api-token or RECLEDGER_API_TOKEN"
		if c.token != "" {
			hint = "the token given with --api-token (or RECLEDGER_API_TOKEN) is not the server's"
		}
		msg += "; " + hint
	}
	return nil, &httpError{status: resp.StatusCode, msg: fmt.Sprintf("%s: %s: %s", path, resp.Status, msg)}
}

// httpError is an answer the server gave on purpose: retrying it changes
// nothing when it is a 4xx.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

// get decodes the JSON answer of a GET into out.
func (c *client) get(ctx context.Context, path string, q url.Values, out any) error {
	resp, err := c.request(ctx, path, q, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: read answer: %w", path, err)
	}
	return nil
}

// send makes a request with in as its JSON body (none when nil) and
// decodes the answer into out (unless nil).
func (c *client) send(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	resp, err := c.do(ctx, method, path, nil, body, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s: read answer: %w", path, err)
	}
	return nil
}

// printJSON writes v indented, for --json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// when shows a Unix-millisecond time with its zone and how long ago it was.
func (k clock) when(ms *int64) string {
	if ms == nil || *ms == 0 {
		return "-"
	}
	return display.Time(*ms, k.loc) + " (" + ago(k.now.Sub(time.UnixMilli(*ms))) + ")"
}

// timeOfDay shows a Unix-millisecond time of day, to the ms, with its zone.
func (k clock) timeOfDay(ms int64) string { return display.Clock(ms, k.loc) }

// ago says how long ago d was, to the largest whole unit.
func ago(d time.Duration) string {
	future := d < 0
	if future {
		d = -d
	}
	var s string
	switch {
	case d < time.Minute:
		s = fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		s = fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		s = fmt.Sprintf("%dh", int(d.Hours()))
	default:
		s = fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	if future {
		return "in " + s
	}
	return s + " ago"
}

// size shows a byte count in binary units.
func size(n *int64) string {
	if n == nil {
		return "-"
	}
	v := float64(*n)
	for _, unit := range []string{"B", "KiB", "MiB", "GiB"} {
		if v < 1024 || unit == "GiB" {
			if unit == "B" {
				return fmt.Sprintf("%d B", *n)
			}
			return fmt.Sprintf("%.1f %s", v, unit)
		}
		v /= 1024
	}
	return ""
}

// orDash shows an empty string as "-".
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// listed is a list answer of the API (GET /v1/recordings, /v1/files).
type listed[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor,omitempty"`
}

// list gets path's list with q, following every page under --all. Items
// are never nil, so --json prints [] for none, as the API answers. The
// next page's cursor goes to stderr: stdout stays rows (or JSON, which
// carries it).
func list[T any](cmd *cobra.Command, c *client, path string, q url.Values) (listed[T], error) {
	all, _ := cmd.Flags().GetBool("all")
	out := listed[T]{Items: []T{}}
	for {
		var page listed[T]
		if err := c.get(cmd.Context(), path, q, &page); err != nil {
			return out, err
		}
		out.Items = append(out.Items, page.Items...)
		out.NextCursor = page.NextCursor
		if !all || page.NextCursor == "" {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	if out.NextCursor != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "more: --cursor %s (or --all)\n", out.NextCursor)
	}
	return out, nil
}

// printList writes l as --json or -o ids ask (id names an item), and
// reports whether it did; else the caller prints its table.
func printList[T any](w io.Writer, c *client, l listed[T], id func(T) string) (bool, error) {
	switch {
	case c.json:
		return true, printJSON(w, l)
	case c.ids:
		for _, item := range l.Items {
			fmt.Fprintln(w, id(item))
		}
		return true, nil
	}
	return false, nil
}
