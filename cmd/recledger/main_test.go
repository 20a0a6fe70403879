package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/recledger/recledger/rc"
)

const (
	seedPath   = "../../rc/testdata/seed/type1-start.json"
	testApp    = "your_appkey"
	testSecret = "Y1W2MeFwwwRxa0"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

const stampedVersion = "v0.0.0-citest"

// binary builds recledger once, stamped as make build stamps it, so the
// tests run the real command a user runs.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "recledger-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "recledger")
		out, err := exec.Command("go", "build", "-ldflags", "-X main.version="+stampedVersion, "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	// A whole run (no -run or -skip, not -short) must have followed every
	// block of the operations guide; see operations_test.go. A test that
	// may skip (a tool or service missing here) takes its blocks before it
	// skips, so go test ./... passes on a machine without them.
	if code == 0 && flagEmpty("test.run") && flagEmpty("test.skip") && !testing.Short() {
		if left := opsUntaken(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: no test follows these blocks of %s: %s\n", opsGuide, strings.Join(left, ", "))
			code = 1
		}
	}
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func flagEmpty(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() == ""
}

// runBinary runs the built command with a time bound.
func runBinary(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCmd(t, stdin, nil, args...)
}

// runCmd runs the binary with stdin and env added to this process's, bounded
// in time; a non-zero exit is returned as its code, not as a failure.
func runCmd(t *testing.T, stdin string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errOut.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return out.String(), errOut.String(), 0
}

func TestVersionStamped(t *testing.T) {
	out, _, code := runBinary(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "recledger "+stampedVersion+" (") || !strings.Contains(out, runtime.Version()) {
		t.Errorf("version = %q (exit %d), want the stamped %s and %s", out, code, stampedVersion, runtime.Version())
	}
	if out2, _, _ := runBinary(t, "", "--version"); out2 != out {
		t.Errorf("--version = %q, version = %q", out2, out)
	}
}

func TestVersionUnstamped(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"version"}, nil, &out, io.Discard); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	// The test binary carries no stamp; build info gives at least "(devel)".
	if !regexp.MustCompile(`^recledger \S+ \(.*go1\.\d+`).MatchString(out.String()) {
		t.Errorf("version = %q", out.String())
	}
}

func TestEveryCommandHasHelpWithExample(t *testing.T) {
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		for _, sub := range c.Commands() {
			if sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			p := append(append([]string{}, path...), sub.Name())
			out, _, code := runBinary(t, "", append(p, "--help")...)
			if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "recledger "+strings.Join(p, " ")) {
				t.Errorf("%s --help (exit %d) lacks an example:\n%s", strings.Join(p, " "), code, out)
			}
			walk(sub, p)
		}
	}
	walk(newRootCmd(), nil)
}

// curlRequest turns the curl command sign printed back into a request:
// URL, headers and body, as curl would send them.
func curlRequest(t *testing.T, out string, body []byte) *http.Request {
	t.Helper()
	i := strings.Index(out, "curl ")
	if i < 0 {
		t.Fatalf("no curl command in:\n%s", out)
	}
	args := shellWords(t, strings.ReplaceAll(out[i:], "\\\n", " "))
	var (
		target string
		header = http.Header{}
	)
	for j := 1; j < len(args); j++ {
		switch args[j] {
		case "-sS":
		case "-X":
			j++
		case "-H":
			j++
			k, v, _ := strings.Cut(args[j], ": ")
			header.Add(k, v)
		case "--data-binary":
			j++
			if want := args[j]; !strings.HasPrefix(want, "@") && want != string(body) {
				t.Fatalf("inline body %q differs from the input", want)
			}
		default:
			target = args[j]
		}
	}
	req := httptest.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	req.Header = header
	return req
}

// shellWords splits a line of single-quoted and bare words, as sign writes.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var (
		words []string
		cur   strings.Builder
		in    bool
		any   bool
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '\'':
			in = !in
			any = true
		case !in && (c == ' ' || c == '\n'):
			if any {
				words = append(words, cur.String())
				cur.Reset()
				any = false
			}
		case !in && c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			any = true
		default:
			cur.WriteByte(c)
			any = true
		}
	}
	if in {
		t.Fatalf("unbalanced quotes in %q", line)
	}
	if any {
		words = append(words, cur.String())
	}
	return words
}

// TestSignOutputVerifies runs `recledger sign` in every style and checks
// that what it prints passes rc.Verify, and that the secret is not printed.
func TestSignOutputVerifies(t *testing.T) {
	body, err := os.ReadFile(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, style := range rc.Styles() {
		t.Run(string(style), func(t *testing.T) {
			out, stderr, code := runBinary(t, "", "sign", "--app-key", testApp, "--secret", testSecret,
				"--body", seedPath, "--style", string(style))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if stderr != "" {
				t.Errorf("warnings for the seed body: %s", stderr)
			}
			if strings.Contains(out, testSecret) {
				t.Fatalf("the secret is in the output:\n%s", out)
			}
			for _, field := range []string{"nonce: ", "timestamp: ", "signature: "} {
				if !strings.Contains(out, "\n"+field) && !strings.HasPrefix(out, field) {
					t.Errorf("output lacks %q:\n%s", field, out)
				}
			}
			v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{testApp: {testSecret}}})
			if err != nil {
				t.Fatal(err)
			}
			req := curlRequest(t, out, body)
			if app, err := v.Verify(req, body); err != nil || app != testApp {
				t.Fatalf("Verify(sign's output) = %q, %v\n%s", app, err, out)
			}
		})
	}
}

// TestSignCurlPosts runs the printed curl command with sh against a real
// rc.Handler on loopback: the walk-through a user follows.
func TestSignCurlPosts(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed; .ci/run installs it")
	}
	got := make(chan rc.Callback, 1)
	v, err := rc.NewVerifier(rc.VerifierConfig{Apps: map[string][]string{testApp: {testSecret}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rc.Handler(v, func(_ context.Context, cb rc.Callback) error {
		got <- cb
		return nil
	}))
	defer srv.Close()
	body, err := os.ReadFile(seedPath)
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runBinary(t, string(body), "sign", "--app-key", testApp, "--secret", testSecret,
		"--body", "-", "--url", srv.URL+"/v1/callbacks/recording", "--style", "rc-headers")
	if code != 0 {
		t.Fatalf("sign: exit %d: %s", code, stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	curl := out[strings.Index(out, "curl "):]
	answer, err := exec.CommandContext(ctx, "sh", "-c", strings.Replace(curl, "curl ", "curl -w ' %{http_code}' ", 1)).CombinedOutput()
	if err != nil || !strings.HasSuffix(string(answer), " 200") {
		t.Fatalf("curl: %v: %s", err, answer)
	}
	select {
	case cb := <-got:
		if cb.RecordID != "8329208b99410743dcfeb80548e2c0ec" {
			t.Errorf("handler got recordId %q", cb.RecordID)
		}
	case <-ctx.Done():
		t.Fatal("the handler got nothing")
	}
}

func TestSignFixedValues(t *testing.T) {
	out, _, code := runBinary(t, "", "sign", "--app-key", testApp, "--secret", testSecret, "--body", seedPath,
		"--nonce", "14314", "--timestamp", "1408710653000")
	if code != 0 || !strings.Contains(out, "signature: 30be0bbca9c9b2e27578701e9fda2358a814c88f\n") {
		t.Errorf("sign with RC's test vector values printed (exit %d):\n%s", code, out)
	}
}

func TestSignRefusals(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string // in stderr
	}{
		{"no flags", "", []string{"sign"}, 1, `required flag(s) "app-key", "body", "secret" not set`},
		{"bad style", "", []string{"sign", "--app-key", "a", "--secret", "s", "--body", seedPath, "--style", "header"}, 1, "unknown signature style"},
		{"missing file", "", []string{"sign", "--app-key", "a", "--secret", "s", "--body", "/nonexistent/cb.json"}, 1, "read body"},
		{"empty stdin", "", []string{"sign", "--app-key", "a", "--secret", "s", "--body", "-"}, 1, "empty"},
		{"bad url", "", []string{"sign", "--app-key", testApp, "--secret", "s", "--body", seedPath, "--url", "ftp://x"}, 1, "--url"},
		{"other app warns", "", []string{"sign", "--app-key", "other", "--secret", "s", "--body", seedPath}, 0, `appKey is "your_appkey"`},
		{"bad body warns", "[1]", []string{"sign", "--app-key", "a", "--secret", "s", "--body", "-"}, 0, "will refuse this body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runBinary(t, tt.stdin, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.want)
			}
		})
	}
}
