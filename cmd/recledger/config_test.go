package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"

	"github.com/recledger/recledger/internal/delivery/webhook"
	"github.com/recledger/recledger/internal/sqlitestore"
)

func parseFlags(t *testing.T, args ...string) *cobra.Command {
	t.Helper()
	cmd := &cobra.Command{Use: "x"}
	addConfigFlags(cmd)
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "recledger.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(parseFlags(t).Flags(), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(defaultConfig(), c); diff != "" {
		t.Errorf("(-default +loaded):\n%s", diff)
	}
	if c.Addr != "127.0.0.1:8080" || c.DB != "sqlite:./data/recledger.db" || c.SQLiteSynchronous != "full" {
		t.Errorf("defaults differ from CONTRACT.md: %+v", c)
	}
}

// TestConfigPrecedence sets each layer over the one below: flags win over
// the environment, the environment over the file, the file over defaults.
func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, `
addr = "127.0.0.1:9001"
db = "sqlite:/tmp/file.db"
apps = ["filekey=filesecret", "filekey=newsecret"]
signature_tolerance = "2m"
log_format = "json"
sqlite_synchronous = "normal"
max_body_bytes = 4096
db_write_timeout = "4s"
`)
	fileOnly, err := loadConfig(parseFlags(t, "--config", file).Flags(), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := defaultConfig()
	want.Addr, want.DB, want.SignatureTolerance, want.LogFormat, want.SQLiteSynchronous, want.MaxBodyBytes =
		"127.0.0.1:9001", "sqlite:/tmp/file.db", 2*time.Minute, "json", "normal", 4096
	want.Apps = map[string][]string{"filekey": {"filesecret", "newsecret"}}
	want.DBWriteTimeout = 4 * time.Second
	if diff := cmp.Diff(want, fileOnly); diff != "" {
		t.Errorf("file (-want +got):\n%s", diff)
	}

	e := env(map[string]string{"RECLEDGER_CONFIG": file, "RECLEDGER_ADDR": "127.0.0.1:9002", "RECLEDGER_APPS": "k1=s1,k2=s2"})
	withEnv, err := loadConfig(parseFlags(t).Flags(), e)
	if err != nil {
		t.Fatal(err)
	}
	if withEnv.Addr != "127.0.0.1:9002" || withEnv.DB != "sqlite:/tmp/file.db" ||
		!cmp.Equal(withEnv.Apps, map[string][]string{"k1": {"s1"}, "k2": {"s2"}}) {
		t.Errorf("env over file: %+v", withEnv)
	}

	withFlags, err := loadConfig(parseFlags(t, "--addr", "127.0.0.1:9003", "--app", "f=1", "--app", "f=2", "--insecure-skip-signature").Flags(), e)
	if err != nil {
		t.Fatal(err)
	}
	if withFlags.Addr != "127.0.0.1:9003" || !cmp.Equal(withFlags.Apps, map[string][]string{"f": {"1", "2"}}) ||
		!withFlags.InsecureSkipSignature || withFlags.LogFormat != "json" {
		t.Errorf("flags over env: %+v", withFlags)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		file string
		want string
	}{
		{"app without secret", []string{"--app", "justakey"}, nil, "", "want KEY=SECRET"},
		{"three secrets", []string{"--app", "k=1", "--app", "k=2", "--app", "k=3"}, nil, "", "3 secrets"},
		{"bad tolerance", nil, map[string]string{"RECLEDGER_SIGNATURE_TOLERANCE": "soon"}, "", "RECLEDGER_SIGNATURE_TOLERANCE"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "", "log format"},
		{"bad synchronous", []string{"--sqlite-synchronous", "off"}, nil, "", "full or normal"},
		{"bad checkpoint", []string{"--sqlite-checkpoint", "litestream"}, nil, "", "want recledger or external"},
		{"bad db", []string{"--db", "mysql://x"}, nil, "", "sqlite:PATH"},
		{"zero shutdown timeout", []string{"--shutdown-timeout", "0s"}, nil, "", "shutdown timeout"},
		{"zero db write timeout", nil, map[string]string{"RECLEDGER_DB_WRITE_TIMEOUT": "0s"}, "", "db write timeout"},
		{"zero quarantine cap", nil, map[string]string{"RECLEDGER_QUARANTINE_MAX_COUNT": "0"}, "", "quarantine caps"},
		{"zero max streams", nil, map[string]string{"RECLEDGER_MAX_STREAMS": "0"}, "", "max streams"},
		{"bad max streams", nil, nil, `max_streams = "many"`, "max_streams"},
		{"unknown file key", nil, nil, `adress = "x"`, `unknown setting "adress"`},
		{"bad file syntax", nil, nil, `addr = `, "config file"},
		{"list for a single value", nil, nil, `addr = ["a", "b"]`, "one value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, tt.file))
			}
			_, err := loadConfig(parseFlags(t, args...).Flags(), env(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
	_, err := loadConfig(parseFlags(t, "--app", "=topsecret").Flags(), env(nil))
	if err == nil || strings.Contains(err.Error(), "topsecret") {
		t.Errorf("a malformed app is reported as %v; the secret must not be echoed", err)
	}
	// A file edited for a SIGHUP with a secret left unquoted: the error
	// (logged by the reload) says where, not what.
	for _, file := range []string{"api_token = abcdefghijklmnopqrstuv\n", "addr = \"127.0.0.1:1\"\napps = [your_appkey=abcdefghijklmnopqrstuv]\n"} {
		_, err := loadConfig(parseFlags(t, "--config", writeFile(t, file)).Flags(), env(nil))
		if err == nil || strings.Contains(err.Error(), "abcdefghijklmnopqrstuv") || !strings.Contains(err.Error(), "line ") {
			t.Errorf("an unquoted secret in the file is reported as %v; want its line, not its text", err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://user:pw@host/db": "postgres://user:***@host/db",
		"postgres://host/db":         "postgres://host/db",
		"./data/recledger.db":        "./data/recledger.db",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestConfigAccessSettings: the lists take commas in every layer, a higher
// layer replaces a lower one's list, and bad values are refused.
func TestConfigAccessSettings(t *testing.T) {
	file := writeFile(t, `
trusted_proxies = ["10.0.0.0/8", "192.0.2.1"]
allowed_hosts = "Recledger.Internal,box"
session_refresh = "2s"
`)
	prefixes := func(c Config) string { return fmt.Sprint(c.TrustedProxies) }
	c, err := loadConfig(parseFlags(t, "--config", file).Flags(), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if prefixes(c) != "[10.0.0.0/8 192.0.2.1/32]" || !cmp.Equal(c.AllowedHosts, []string{"recledger.internal", "box"}) || c.SessionRefresh != 2*time.Second {
		t.Errorf("from the file: %v %v %v", prefixes(c), c.AllowedHosts, c.SessionRefresh)
	}
	e := env(map[string]string{"RECLEDGER_CONFIG": file, "RECLEDGER_TRUSTED_PROXIES": "fd00::/8,172.16.0.1/12"})
	c, err = loadConfig(parseFlags(t, "--allowed-hosts", "a.example,b.example").Flags(), e)
	if err != nil {
		t.Fatal(err)
	}
	if prefixes(c) != "[fd00::/8 172.16.0.0/12]" || !cmp.Equal(c.AllowedHosts, []string{"a.example", "b.example"}) {
		t.Errorf("env and flags over the file: %v %v", prefixes(c), c.AllowedHosts)
	}
	for _, args := range [][]string{
		{"--trusted-proxies", "10.0.0.0/33"},
		{"--trusted-proxies", "proxy.example"},
		{"--allowed-hosts", "http://x/"},
		{"--session-refresh", "0s"},
	} {
		if _, err := loadConfig(parseFlags(t, args...).Flags(), env(nil)); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestConfigDestinations: --webhook URL=SECRET (the URL may hold "=" in
// its query), RECLEDGER_WEBHOOKS and the file's webhooks list and
// [[destinations]] tables, with flags replacing the quick-start webhooks
// of lower layers but keeping the file's tables; bad ones are refused
// without echoing the secret.
func TestConfigDestinations(t *testing.T) {
	const sec = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	file := writeFile(t, `
webhooks = ["https://file.example/hook=`+sec+`"]
allow_private_destinations = true
settle = "30s"
retry_schedule = "1s,2s"

[[destinations]]
type = "nats"
url = "nats://127.0.0.1:4222"
stream = "REC"
prefix = "rec"
events = ["recording.completed"]
app_key = "k"
room_prefix = "room-"
`)
	c, err := loadConfig(parseFlags(t, "--config", file, "--webhook", "https://flag.example/h?a=b&c=d="+sec).Flags(), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := []DeclaredDestination{
		{Type: "nats", URL: "nats://127.0.0.1:4222", Stream: "REC", Prefix: "rec", Events: []string{"recording.completed"}, AppKey: "k", RoomPrefix: "room-"},
		{Type: "webhook", URL: "https://flag.example/h?a=b&c=d", Secret: sec, fromFlag: true},
	}
	if diff := cmp.Diff(want, c.Destinations, cmp.AllowUnexported(DeclaredDestination{})); diff != "" {
		t.Errorf("destinations (-want +got):\n%s", diff)
	}
	if !c.AllowPrivateDestinations || c.Settle != 30*time.Second || fmt.Sprint(c.RetrySchedule) != "[1s 2s]" {
		t.Errorf("allow private %v, settle %v, retry schedule %v", c.AllowPrivateDestinations, c.Settle, c.RetrySchedule)
	}
	c, err = loadConfig(parseFlags(t).Flags(), env(map[string]string{"RECLEDGER_WEBHOOKS": "http://127.0.0.1:9/x=" + sec,
		"RECLEDGER_ALLOW_PRIVATE_DESTINATIONS": "true"}))
	if err != nil || len(c.Destinations) != 1 || c.Destinations[0].URL != "http://127.0.0.1:9/x" {
		t.Errorf("RECLEDGER_WEBHOOKS: %+v %v", c.Destinations, err)
	}
	for name, args := range map[string][]string{
		"no secret":         {"--webhook", "https://example.com/hook"},
		"a bad secret":      {"--webhook", "https://example.com/hook=whsec_x" + sec[7:] + "!"},
		"a private address": {"--webhook", "http://10.0.0.1/hook=" + sec},
		"a bad schedule":    {"--retry-schedule", "5s,soon"},
		"no settle":         {"--settle", "0s"},
	} {
		_, err := loadConfig(parseFlags(t, args...).Flags(), env(nil))
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), sec[6:]) {
			t.Errorf("%s: the error shows the secret: %v", name, err)
		}
	}
	bad := writeFile(t, "[[destinations]]\nurl = \"https://example.com/\"\nsecret = \""+sec+"\"\ncolour = \"red\"\n")
	if _, err := loadConfig(parseFlags(t, "--config", bad).Flags(), env(nil)); err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("an unknown destination setting: %v", err)
	}
}

// TestDeclaredDestinationRotates: a declared webhook keeps its id across
// starts; when the configuration gives it a new secret, the old one signs
// beside it for delivery.RotationOverlap, and a destination a user
// disabled stays disabled.
func TestDeclaredDestinationRotates(t *testing.T) {
	s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "r.db"), sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	store := s.Delivery()
	log := slog.New(slog.DiscardHandler)
	first, second := webhook.NewSecret().Reveal(), webhook.NewSecret().Reveal()
	cfg := defaultConfig()
	cfg.Destinations = []DeclaredDestination{{Type: "webhook", URL: "https://example.com/hook", Secret: first}}
	if err := declareDestinations(context.Background(), store, cfg, log); err != nil {
		t.Fatal(err)
	}
	list, _ := store.Destinations(context.Background())
	if len(list) != 1 || len(list[0].Keys) != 1 {
		t.Fatalf("after the first start: %+v", list)
	}
	list[0].Enabled = false
	if err := store.UpdateDestination(context.Background(), &list[0]); err != nil {
		t.Fatal(err)
	}
	cfg.Destinations[0].Secret = second
	if err := declareDestinations(context.Background(), store, cfg, log); err != nil {
		t.Fatal(err)
	}
	list, _ = store.Destinations(context.Background())
	if len(list) != 1 || len(list[0].Keys) != 2 || list[0].Keys[0].Secret != second || list[0].Keys[1].Secret != first ||
		list[0].Keys[1].Expires == 0 || list[0].Enabled {
		t.Errorf("after a start with a new secret: %+v", list)
	}
}
