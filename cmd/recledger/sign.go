package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/recledger/recledger/rc"
)

const defaultCallbackURL = "http://127.0.0.1:8080/v1/callbacks/recording"

type signOptions struct {
	appKey, secret, bodyPath string
	style                    string
	url                      string
	nonce, timestamp         string
	appKeyInRequest          bool
}

func newSignCmd() *cobra.Command {
	var o signOptions
	cmd := &cobra.Command{
		Use:   "sign --app-key KEY --secret SECRET --body FILE",
		Short: "Sign a callback body the way RC does and print the headers and a curl command",
		Long: `sign computes RC's signature, lower-case hex SHA1(secret + nonce + timestamp),
for a fresh nonce and the current time, and prints the values and a ready curl
command that posts the body to a receiver.

Styles (--style): headers (RC's: nonce, timestamp, signature headers, ms),
rc-headers (RC-Nonce, RC-Timestamp, RC-Signature), query (URL parameters),
and each of them with -seconds for a timestamp in seconds. The secret itself
is never printed. A signature is valid for the receiver's tolerance (5
minutes by default) and for one body.`,
		Example: `  recledger sign --app-key your_appkey --secret "$RC_SECRET" --body rc/testdata/seed/type1-start.json
  recledger sign --app-key your_appkey --secret "$RC_SECRET" --body - --style query < callback.json
  recledger sign --app-key your_appkey --secret "$RC_SECRET" --body cb.json | tail -n +5 | sh`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSign(cmd, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.appKey, "app-key", "", "RC app key (must match the body's appKey)")
	f.StringVar(&o.secret, "secret", "", "the app's secret")
	f.StringVar(&o.bodyPath, "body", "", "file holding the JSON body, or - for standard input")
	f.StringVar(&o.style, "style", string(rc.StyleHeaders), "where the signature goes: "+styleNames())
	f.StringVar(&o.url, "url", defaultCallbackURL, "callback URL for the curl command")
	f.StringVar(&o.nonce, "nonce", "", "nonce to sign (default: 16 random characters)")
	f.StringVar(&o.timestamp, "timestamp", "", "timestamp to sign, as digits (default: now, in the style's unit)")
	f.BoolVar(&o.appKeyInRequest, "app-key-header", false, "also send the app key in a header (or query parameter) of the style")
	for _, name := range []string{"app-key", "secret", "body"} {
		cobra.CheckErr(cmd.MarkFlagRequired(name))
	}
	return cmd
}

func styleNames() string {
	var names []string
	for _, s := range rc.Styles() {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

func runSign(cmd *cobra.Command, o signOptions) error {
	style, err := rc.ParseStyle(o.style)
	if err != nil {
		return err
	}
	body, err := readBodyArg(cmd.InOrStdin(), o.bodyPath)
	if err != nil {
		return err
	}
	// Refusals the receiver would give are better seen now.
	if cb, err := rc.Parse(body); err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: a receiver will refuse this body: %v\n", err)
	} else if cb.AppKey != o.appKey {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: the body's appKey is %q, not %q: a receiver will refuse it\n", cb.AppKey, o.appKey)
	}

	signer := rc.Signer{AppKey: o.appKey, Secret: o.secret, Style: style, AppKeyInRequest: o.appKeyInRequest}
	sig := signer.Sign()
	if o.nonce != "" || o.timestamp != "" {
		if o.nonce != "" {
			sig.Nonce = o.nonce
		}
		if o.timestamp != "" {
			sig.Timestamp = o.timestamp
		}
		sig.Signature = rc.Sign(o.secret, sig.Nonce, sig.Timestamp)
	}

	u, err := url.Parse(o.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: want an http or https URL", o.url)
	}
	req := &http.Request{Method: http.MethodPost, URL: u, Header: http.Header{}}
	signer.Apply(req, sig)

	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "nonce: %s\ntimestamp: %s\nsignature: %s\n\n", sig.Nonce, sig.Timestamp, sig.Signature)
	fmt.Fprintf(w, "curl -sS -X POST %s \\\n  -H %s", shellQuote(req.URL.String()), shellQuote("Content-Type: application/json"))
	names := make([]string, 0, len(req.Header))
	for k := range req.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Fprintf(w, " \\\n  -H %s", shellQuote(k+": "+req.Header.Get(k)))
	}
	if o.bodyPath == "-" {
		fmt.Fprintf(w, " \\\n  --data-binary %s\n", shellQuote(string(body)))
	} else {
		fmt.Fprintf(w, " \\\n  --data-binary %s\n", shellQuote("@"+o.bodyPath))
	}
	return nil
}

func readBodyArg(stdin io.Reader, path string) ([]byte, error) {
	var (
		body []byte
		err  error
	)
	if path == "-" {
		body, err = io.ReadAll(io.LimitReader(stdin, rc.DefaultMaxBodyBytes+1))
	} else {
		body, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(body) == 0 {
		return nil, errors.New("read body: it is empty")
	}
	return body, nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
