package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/delivery/dispatch"
	"github.com/recledger/recledger/internal/delivery/webhook"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/sqlitestore"
	"github.com/recledger/recledger/internal/storagecheck"
	"github.com/recledger/recledger/rc"
)

// Config is every setting of the server. It is filled in order: defaults,
// then the TOML file (--config / RECLEDGER_CONFIG), then the environment,
// then the flags given on the command line, then Validate.
type Config struct {
	Addr                  string
	MetricsAddr           string // "" or a second listener for /metrics, /readyz and /healthz without the token
	DB                    string
	Apps                  map[string][]string // app key -> one or two secrets
	APIToken              string
	InsecureSkipSignature bool
	SignatureTolerance    time.Duration
	LogFormat             string // text or json
	LogLevel              string // debug, info, warn, error
	MaxBodyBytes          int64
	SQLiteSynchronous     string // full or normal
	SQLiteCheckpoint      string // recledger or external (Litestream)
	QuarantineMaxCount    int
	QuarantineMaxBytes    int64
	ShutdownTimeout       time.Duration
	DBWriteTimeout        time.Duration  // bound on each database call a callback waits for
	TrustedProxies        []netip.Prefix // whose X-Forwarded-For names the client: wrong tokens, logs and the quarantine use it
	AllowedHosts          []string       // host names answered without a token besides the loopback ones
	SessionRefresh        time.Duration  // how often logouts made on other instances are reread
	MaxStreams            int            // event streams served at once
	// Outbound delivery.
	Destinations             []DeclaredDestination // --webhook URL=SECRET and the file's [[destinations]]
	AllowPrivateDestinations bool                  // destinations may point at loopback and private addresses
	Settle                   time.Duration         // how long a complete recording stays quiet before it is announced completed
	RetrySchedule            []time.Duration       // waits before each retry of a failed event
	DisableAfter             time.Duration         // a destination failing this long is disabled
	// Retention (0: kept forever).
	Retain           time.Duration // recordings whose last callback arrived longer ago are removed
	QuarantineRetain time.Duration // quarantine rows older than this are deleted
	RetainEvery      time.Duration // how often retention runs
	// MaxRecordingLength is the longest a recording may go without its
	// end before it has the not_ended finding.
	MaxRecordingLength time.Duration
	// Storage verification.
	VerifyStorage       bool     // check each uploaded file's URL and announce what was found
	StorageHosts        []string // HOST[:PORT] entries the checks may go to (--storage-hosts)
	StorageAllowPrivate bool     // listed host names may resolve to private and loopback addresses
}

// DeclaredDestination is a destination given in the configuration: serve
// creates it, or brings it to what the configuration says, at every start.
type DeclaredDestination struct {
	Type       string   `toml:"type"` // webhook (default) or nats
	URL        string   `toml:"url"`
	Secret     string   `toml:"secret"` // webhook: whsec_... (or whsk_... for v1a)
	Events     []string `toml:"events"`
	AppKey     string   `toml:"app_key"`
	RoomPrefix string   `toml:"room_prefix"`
	Stream     string   `toml:"stream"`  // nats
	Prefix     string   `toml:"prefix"`  // nats
	MaxAge     string   `toml:"max_age"` // nats: the stream's retention, e.g. "336h"
	fromFlag   bool     // --webhook, RECLEDGER_WEBHOOKS or the file's webhooks list
}

func defaultConfig() Config {
	return Config{
		Addr:               "127.0.0.1:8080",
		DB:                 "sqlite:./data/recledger.db",
		Apps:               map[string][]string{},
		SignatureTolerance: rc.DefaultTolerance,
		LogFormat:          "text",
		LogLevel:           "info",
		MaxBodyBytes:       rc.DefaultMaxBodyBytes,
		SQLiteSynchronous:  sqlitestore.SyncFull,
		SQLiteCheckpoint:   sqlitestore.CheckpointsOwn,
		QuarantineMaxCount: 10_000,
		QuarantineMaxBytes: 64 << 20,
		ShutdownTimeout:    15 * time.Second,
		DBWriteTimeout:     3 * time.Second,
		SessionRefresh:     5 * time.Second,
		MaxStreams:         100,
		Settle:             delivery.DefaultSettle,
		RetrySchedule:      webhook.DefaultWaits,
		DisableAfter:       5 * 24 * time.Hour,
		RetainEvery:        time.Minute,
		MaxRecordingLength: ledger.DefaultMaxOpen,
	}
}

// setting is one configurable value under its three names. The one table
// drives the flags, the environment, the config file and the docs.
type setting struct {
	flag, env, key string // key: the name in the TOML file
	usage          string
	list           bool // repeatable flag, comma-separated in the environment, array in the file
	set            func(c *Config, v string) error
}

var settings = []setting{
	{"addr", "RECLEDGER_ADDR", "addr", "listen address", false,
		func(c *Config, v string) error { c.Addr = v; return nil }},
	{"metrics-addr", "RECLEDGER_METRICS_ADDR", "metrics_addr",
		"optional second listen address serving /metrics, /readyz and /healthz without the API token (for a scraper and probes on an internal interface)", false,
		func(c *Config, v string) error { c.MetricsAddr = v; return nil }},
	{"db", "RECLEDGER_DB", "db", "sqlite:PATH or just PATH (embedded), or a postgres:// URL", false,
		func(c *Config, v string) error { c.DB = v; return nil }},
	{"app", "RECLEDGER_APPS", "apps", "RC app KEY=SECRET whose callbacks are accepted; repeat for more apps, or a key twice while rotating its secret", true,
		func(c *Config, v string) error { return c.addApp(v) }},
	{"api-token", "RECLEDGER_API_TOKEN", "api_token", "bearer token for the query API and dashboard (unset: loopback clients only)", false,
		func(c *Config, v string) error { c.APIToken = v; return nil }},
	{"signature-tolerance", "RECLEDGER_SIGNATURE_TOLERANCE", "signature_tolerance", "how far a callback's signed timestamp may be from now", false,
		durationSetter(func(c *Config) *time.Duration { return &c.SignatureTolerance })},
	{"log-format", "RECLEDGER_LOG_FORMAT", "log_format", "log format: text or json", false,
		func(c *Config, v string) error { c.LogFormat = v; return nil }},
	{"log-level", "RECLEDGER_LOG_LEVEL", "log_level", "log level: debug, info, warn or error", false,
		func(c *Config, v string) error { c.LogLevel = v; return nil }},
	{"max-body-bytes", "RECLEDGER_MAX_BODY_BYTES", "max_body_bytes", "largest callback body accepted (larger ones get 413)", false,
		intSetter(func(c *Config) *int64 { return &c.MaxBodyBytes })},
	{"sqlite-synchronous", "RECLEDGER_SQLITE_SYNCHRONOUS", "sqlite_synchronous",
		"full: a 200 survives power loss (fsync per commit); normal: survives a crash of recledger only", false,
		func(c *Config, v string) error { c.SQLiteSynchronous = v; return nil }},
	{"sqlite-checkpoint", "RECLEDGER_SQLITE_CHECKPOINT", "sqlite_checkpoint",
		"who copies the WAL into the SQLite files: recledger, or external (Litestream replicates them and checkpoints; recledger runs none)", false,
		func(c *Config, v string) error { c.SQLiteCheckpoint = v; return nil }},
	{"quarantine-max-count", "RECLEDGER_QUARANTINE_MAX_COUNT", "quarantine_max_count", "refused requests kept for inspection", false,
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			c.QuarantineMaxCount = n
			return err
		}},
	{"quarantine-max-bytes", "RECLEDGER_QUARANTINE_MAX_BYTES", "quarantine_max_bytes", "bytes of refused requests kept for inspection (bodies, headers and all)", false,
		intSetter(func(c *Config) *int64 { return &c.QuarantineMaxBytes })},
	{"shutdown-timeout", "RECLEDGER_SHUTDOWN_TIMEOUT", "shutdown_timeout", "how long a shutdown waits for callbacks in flight", false,
		durationSetter(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	{"db-write-timeout", "RECLEDGER_DB_WRITE_TIMEOUT", "db_write_timeout",
		"how long a callback waits for the database (PostgreSQL calls; SQLite's lock wait) before it is answered 503; keep it under RC's 5 s", false,
		durationSetter(func(c *Config) *time.Duration { return &c.DBWriteTimeout })},
	{"trusted-proxies", "RECLEDGER_TRUSTED_PROXIES", "trusted_proxies",
		"CIDR,... of your proxies: the client address they put in X-Forwarded-For is then believed (wrong-token limit, logs, quarantine)", true,
		func(c *Config, v string) error { return c.addTrustedProxies(v) }},
	{"allowed-hosts", "RECLEDGER_ALLOWED_HOSTS", "allowed_hosts",
		"NAME,... answered without --api-token besides localhost, 127.0.0.1 and [::1] (guards against DNS rebinding)", true,
		func(c *Config, v string) error { return c.addAllowedHosts(v) }},
	{"session-refresh", "RECLEDGER_SESSION_REFRESH", "session_refresh", "how often logouts made on other instances are reread from the store", false,
		durationSetter(func(c *Config) *time.Duration { return &c.SessionRefresh })},
	{"webhook", "RECLEDGER_WEBHOOKS", "webhooks",
		"send outbound events to URL=SECRET (SECRET: whsec_<base64>, Standard Webhooks); repeat for more; more kinds with POST /v1/destinations", true,
		func(c *Config, v string) error { return c.addWebhook(v) }},
	{"settle", "RECLEDGER_SETTLE", "settle",
		"how long a recording must be complete and quiet before recording.completed is sent (callbacks that arrive later come after it)", false,
		durationSetter(func(c *Config) *time.Duration { return &c.Settle })},
	{"retry-schedule", "RECLEDGER_RETRY_SCHEDULE", "retry_schedule",
		"waits before each retry of an event a destination failed, comma-separated; after the last it is a dead letter", false,
		func(c *Config, v string) error { return c.setRetrySchedule(v) }},
	{"disable-after", "RECLEDGER_DISABLE_AFTER", "disable_after", "a destination whose attempts fail this long without a success is disabled", false,
		durationSetter(func(c *Config) *time.Duration { return &c.DisableAfter })},
	{"retain", "RECLEDGER_RETAIN", "retain",
		"remove recordings whose last callback arrived longer ago than this (e.g. 90d, 2160h; 0: keep forever); their log rows stay as tombstones", false,
		retentionSetter(func(c *Config) *time.Duration { return &c.Retain })},
	{"quarantine-retain", "RECLEDGER_QUARANTINE_RETAIN", "quarantine_retain",
		"delete refused requests kept longer than this (e.g. 30d; 0: only the count and byte caps apply)", false,
		retentionSetter(func(c *Config) *time.Duration { return &c.QuarantineRetain })},
	{"retain-every", "RECLEDGER_RETAIN_EVERY", "retain_every", "how often retention looks for what is past --retain and --quarantine-retain", false,
		durationSetter(func(c *Config) *time.Duration { return &c.RetainEvery })},
	{"max-recording-length", "RECLEDGER_MAX_RECORDING_LENGTH", "max_recording_length",
		"the longest a recording may run: one with no end callback this long after it was first seen has the not_ended finding", false,
		durationSetter(func(c *Config) *time.Duration { return &c.MaxRecordingLength })},
	{"verify-storage", "RECLEDGER_VERIFY_STORAGE", "verify_storage",
		"check that each uploaded file is in storage at its URL (HEAD, or a one-byte GET) and send recording.file_verified or .file_missing; needs --storage-hosts", false,
		boolSetter(func(c *Config) *bool { return &c.VerifyStorage })},
	{"storage-hosts", "RECLEDGER_STORAGE_HOSTS", "storage_hosts",
		"HOST[:PORT],... the only storage hosts --verify-storage sends requests to (no port: 80 and 443 only; IPv6 in brackets)", true,
		func(c *Config, v string) error { c.StorageHosts = append(c.StorageHosts, v); return nil }},
	{"storage-allow-private", "RECLEDGER_STORAGE_ALLOW_PRIVATE", "storage_allow_private",
		"let listed storage host names resolve to loopback and private addresses (hosts listed as IP addresses are allowed anyway)", false,
		boolSetter(func(c *Config) *bool { return &c.StorageAllowPrivate })},
	{"max-streams", "RECLEDGER_MAX_STREAMS", "max_streams", "event streams (GET /v1/events/stream) served at once; more are answered 503", false,
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			c.MaxStreams = n
			return err
		}},
}

// listResets empties a list setting before a higher source (environment,
// flags) gives its own values: they replace the lower ones, not add to them.
var listResets = map[string]func(*Config){
	"app":             func(c *Config) { c.Apps = map[string][]string{} },
	"trusted-proxies": func(c *Config) { c.TrustedProxies = nil },
	"allowed-hosts":   func(c *Config) { c.AllowedHosts = nil },
	"storage-hosts":   func(c *Config) { c.StorageHosts = nil },
	"webhook": func(c *Config) {
		c.Destinations = slices.DeleteFunc(c.Destinations, func(d DeclaredDestination) bool { return d.fromFlag })
	},
}

func (c *Config) addWebhook(v string) error {
	url, secret, ok := strings.Cut(strings.TrimSpace(v), "=")
	// A URL may hold "=" in its query; the secret never does, but for
	// base64's padding at its end: cut at the last "=whsec_" or "=whsk_".
	for _, prefix := range []string{webhook.SecretPrefix, webhook.PrivateKeyPrefix} {
		if i := strings.LastIndex(v, "="+prefix); i >= 0 {
			url, secret, ok = strings.TrimSpace(v[:i]), v[i+1:], true
		}
	}
	if !ok || url == "" || secret == "" {
		return errors.New("want URL=SECRET, the secret in whsec_<base64> form") // never echo the value: it holds a secret
	}
	c.Destinations = append(c.Destinations, DeclaredDestination{Type: "webhook", URL: url, Secret: secret, fromFlag: true})
	return nil
}

func (c *Config) setRetrySchedule(v string) error {
	var waits []time.Duration
	for one := range strings.SplitSeq(v, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(one))
		if err != nil || d <= 0 {
			return fmt.Errorf("retry schedule %q: want positive durations such as 5s,5m,30m", v)
		}
		waits = append(waits, d)
	}
	c.RetrySchedule = waits
	return nil
}

func (c *Config) addTrustedProxies(v string) error {
	for _, one := range strings.Split(v, ",") {
		one = strings.TrimSpace(one)
		if one == "" {
			continue
		}
		p, err := netip.ParsePrefix(one)
		if err != nil {
			ip, err2 := netip.ParseAddr(one)
			if err2 != nil {
				return fmt.Errorf("trusted proxy %q: want an address or CIDR such as 10.0.0.0/8", one)
			}
			p = netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, p.Masked())
	}
	return nil
}

func (c *Config) addAllowedHosts(v string) error {
	for _, one := range strings.Split(v, ",") {
		one = strings.ToLower(strings.TrimSpace(one))
		if one == "" {
			continue
		}
		if strings.ContainsAny(one, "/\\@ \t") {
			return fmt.Errorf("allowed host %q: want a host name such as recledger.internal", one)
		}
		c.AllowedHosts = append(c.AllowedHosts, one)
	}
	return nil
}

// boolSettings are the settings given as a flag alone (--verify-storage),
// true or false in the environment and the file.
var boolSettings = map[string]bool{"verify-storage": true, "storage-allow-private": true}

func boolSetter(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q: want true or false", v)
		}
		*field(c) = b
		return nil
	}
}

func durationSetter(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		*field(c) = d
		return err
	}
}

// retentionSetter reads an age limit: a Go duration, a whole number of
// days ("90d"), or 0 / "off" for none.
func retentionSetter(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := parseRetention(v)
		*field(c) = d
		return err
	}
}

func parseRetention(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	switch v {
	case "", "0", "off":
		return 0, nil
	}
	if days, ok := strings.CutSuffix(v, "d"); ok {
		n, err := strconv.ParseInt(days, 10, 64)
		if err != nil || n <= 0 || n > 100*365 {
			return 0, fmt.Errorf("%q: want a whole number of days such as 90d", v)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q: want a duration such as 90d or 2160h, or 0 for none", v)
	}
	return d, nil
}

func intSetter(field func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		*field(c) = n
		return err
	}
}

func (c *Config) addApp(v string) error {
	key, secret, ok := strings.Cut(strings.TrimSpace(v), "=")
	if !ok || key == "" || secret == "" {
		return errors.New("want KEY=SECRET") // never echo the value: it holds a secret
	}
	c.Apps[key] = append(c.Apps[key], secret)
	return nil
}

// addConfigFlags registers the settings as flags of cmd: all of them, or
// only the ones named (a command that uses a few lists only those).
func addConfigFlags(cmd *cobra.Command, only ...string) {
	f := cmd.Flags()
	defaults := settingDefaults(defaultConfig())
	for _, s := range settings {
		if len(only) > 0 && !slices.Contains(only, s.flag) {
			continue
		}
		usage := s.usage + " (env " + s.env + ")"
		// The default is shown, not used: loadConfig reads only the flags
		// given, after the file and the environment.
		if s.list {
			f.StringArray(s.flag, nil, usage)
		} else if boolSettings[s.flag] {
			f.Bool(s.flag, false, usage)
		} else {
			f.String(s.flag, defaults[s.flag], usage)
		}
	}
	if len(only) == 0 {
		f.Bool("insecure-skip-signature", false, "DEVELOPMENT ONLY: accept callbacks that carry no signature")
		f.Bool("allow-private-destinations", false, "let destinations point at loopback, private and link-local addresses (tests, development) (env RECLEDGER_ALLOW_PRIVATE_DESTINATIONS)")
	}
	f.String("config", "", "TOML file with the same settings, names in snake_case (env RECLEDGER_CONFIG)")
}

// settingDefaults are c's values of the single-valued settings as a flag
// takes them, for the help.
func settingDefaults(c Config) map[string]string {
	waits := make([]string, len(c.RetrySchedule))
	for i, w := range c.RetrySchedule {
		waits[i] = w.String()
	}
	return map[string]string{
		"addr": c.Addr, "db": c.DB, "signature-tolerance": c.SignatureTolerance.String(), "log-format": c.LogFormat,
		"log-level": c.LogLevel, "max-body-bytes": strconv.FormatInt(c.MaxBodyBytes, 10), "sqlite-synchronous": c.SQLiteSynchronous,
		"sqlite-checkpoint":    c.SQLiteCheckpoint,
		"quarantine-max-count": strconv.Itoa(c.QuarantineMaxCount), "quarantine-max-bytes": strconv.FormatInt(c.QuarantineMaxBytes, 10),
		"shutdown-timeout": c.ShutdownTimeout.String(), "db-write-timeout": c.DBWriteTimeout.String(),
		"session-refresh": c.SessionRefresh.String(), "settle": c.Settle.String(), "retry-schedule": strings.Join(waits, ","),
		"disable-after": c.DisableAfter.String(), "max-streams": strconv.Itoa(c.MaxStreams),
		"max-recording-length": c.MaxRecordingLength.String(),
	}
}

// loadConfig fills a Config from defaults, the file, the environment and
// the flags set on cmd, in that order, and validates it.
func loadConfig(flags *pflag.FlagSet, getenv func(string) string) (Config, error) {
	c := defaultConfig()
	path, _ := flags.GetString("config")
	if path == "" {
		path = getenv("RECLEDGER_CONFIG")
	}
	if path != "" {
		if err := c.loadFile(path); err != nil {
			return c, err
		}
	}
	for _, s := range settings {
		v := getenv(s.env)
		if v == "" {
			continue
		}
		if s.list {
			listResets[s.flag](&c) // the environment replaces the file's list
		}
		values := []string{v}
		if s.list {
			values = strings.Split(v, ",")
		}
		for _, one := range values {
			if err := s.set(&c, one); err != nil {
				return c, fmt.Errorf("%s: %w", s.env, err)
			}
		}
	}
	for _, s := range settings {
		if !flags.Changed(s.flag) {
			continue
		}
		var values []string
		if s.list {
			values, _ = flags.GetStringArray(s.flag)
			listResets[s.flag](&c) // flags replace the environment's list
		} else if boolSettings[s.flag] {
			b, _ := flags.GetBool(s.flag)
			values = []string{strconv.FormatBool(b)}
		} else {
			v, _ := flags.GetString(s.flag)
			values = []string{v}
		}
		for _, one := range values {
			if err := s.set(&c, one); err != nil {
				return c, fmt.Errorf("--%s: %w", s.flag, err)
			}
		}
	}
	c.InsecureSkipSignature, _ = flags.GetBool("insecure-skip-signature")
	if v := getenv("RECLEDGER_ALLOW_PRIVATE_DESTINATIONS"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return c, fmt.Errorf("RECLEDGER_ALLOW_PRIVATE_DESTINATIONS: %w", err)
		}
		c.AllowPrivateDestinations = b
	}
	if flags.Changed("allow-private-destinations") {
		c.AllowPrivateDestinations, _ = flags.GetBool("allow-private-destinations")
	}
	return c, c.Validate()
}

func (c *Config) loadFile(path string) error {
	var raw map[string]any
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			// The parser's message quotes the text it found, which may be
			// an unquoted secret or token: say where, never what.
			where := fmt.Sprintf("line %d", pe.Position.Line)
			if pe.LastKey != "" {
				where += fmt.Sprintf(" (after key %q)", pe.LastKey)
			}
			return fmt.Errorf("config file %s: %s is not valid TOML (the text is not shown: it may hold a secret; strings need quotes)", path, where)
		}
		return fmt.Errorf("config file %s: %w", path, err)
	}
	for key, val := range raw {
		if key == "destinations" {
			if err := c.loadDestinations(path, val); err != nil {
				return err
			}
			continue
		}
		if key == "allow_private_destinations" {
			b, ok := val.(bool)
			if !ok {
				return fmt.Errorf("config file %s: allow_private_destinations: want true or false", path)
			}
			c.AllowPrivateDestinations = b
			continue
		}
		var s *setting
		for i := range settings {
			if settings[i].key == key {
				s = &settings[i]
			}
		}
		if s == nil {
			return fmt.Errorf("config file %s: unknown setting %q", path, key)
		}
		var values []string
		switch v := val.(type) {
		case []any:
			if !s.list {
				return fmt.Errorf("config file %s: %s takes one value", path, key)
			}
			for _, e := range v {
				values = append(values, fmt.Sprint(e))
			}
		default:
			values = []string{fmt.Sprint(v)}
		}
		for _, one := range values {
			if err := s.set(c, one); err != nil {
				return fmt.Errorf("config file %s: %s: %w", path, key, err)
			}
		}
	}
	return nil
}

// loadDestinations reads the file's [[destinations]] tables.
func (c *Config) loadDestinations(path string, val any) error {
	list, ok := val.([]map[string]any)
	if !ok {
		return fmt.Errorf("config file %s: destinations: want [[destinations]] tables", path)
	}
	for i, t := range list {
		var b strings.Builder
		if err := toml.NewEncoder(&b).Encode(t); err != nil {
			return fmt.Errorf("config file %s: destination %d: %w", path, i+1, err)
		}
		var d DeclaredDestination
		md, err := toml.Decode(b.String(), &d)
		if err != nil {
			return fmt.Errorf("config file %s: destination %d: %w", path, i+1, err)
		}
		if un := md.Undecoded(); len(un) > 0 {
			return fmt.Errorf("config file %s: destination %d: unknown setting %q", path, i+1, un[0].String())
		}
		if d.Type == "" {
			d.Type = string(delivery.Webhook)
		}
		c.Destinations = append(c.Destinations, d)
	}
	return nil
}

// Validate checks what the settings cannot check one by one.
func (c *Config) Validate() error {
	var errs []error
	for key, secrets := range c.Apps {
		if len(secrets) > 2 {
			errs = append(errs, fmt.Errorf("app %s: %d secrets given; give one, or two while rotating", key, len(secrets)))
		}
	}
	if c.SignatureTolerance <= 0 {
		errs = append(errs, errors.New("signature tolerance must be positive"))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log format %q: want text or json", c.LogFormat))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log level %q: want debug, info, warn or error", c.LogLevel))
	}
	if c.RetainEvery <= 0 {
		errs = append(errs, errors.New("retain-every must be positive"))
	}
	if c.MaxRecordingLength <= 0 {
		errs = append(errs, errors.New("max recording length must be positive"))
	}
	if c.SessionRefresh <= 0 {
		errs = append(errs, errors.New("session refresh must be positive"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("shutdown timeout must be positive"))
	}
	if c.DBWriteTimeout <= 0 {
		errs = append(errs, errors.New("db write timeout must be positive"))
	}
	if c.QuarantineMaxCount <= 0 || c.QuarantineMaxBytes <= 0 {
		errs = append(errs, errors.New("quarantine caps must be positive"))
	}
	if c.MaxStreams <= 0 {
		errs = append(errs, fmt.Errorf("max streams %d: want at least 1", c.MaxStreams))
	}
	if err := checkMetricsAddr(c.Addr, c.MetricsAddr); err != nil {
		errs = append(errs, err)
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("max body bytes %d: want at least 1024", c.MaxBodyBytes))
	}
	switch strings.ToLower(c.SQLiteSynchronous) {
	case sqlitestore.SyncFull, sqlitestore.SyncNormal:
	default:
		errs = append(errs, fmt.Errorf("sqlite synchronous %q: want full or normal", c.SQLiteSynchronous))
	}
	switch strings.ToLower(c.SQLiteCheckpoint) {
	case sqlitestore.CheckpointsOwn, sqlitestore.CheckpointsExternal:
	default:
		errs = append(errs, fmt.Errorf("sqlite checkpoint %q: want %s or %s", c.SQLiteCheckpoint, sqlitestore.CheckpointsOwn, sqlitestore.CheckpointsExternal))
	}
	if _, _, err := parseDB(c.DB); err != nil {
		errs = append(errs, err)
	}
	if c.Settle <= 0 || c.DisableAfter <= 0 || len(c.RetrySchedule) == 0 {
		errs = append(errs, errors.New("settle, disable after and the retry schedule must be positive"))
	}
	for i, d := range c.Destinations {
		if _, err := d.destination(c.AllowPrivateDestinations); err != nil {
			errs = append(errs, fmt.Errorf("destination %d: %w", i+1, err))
		}
	}
	if _, err := c.storageHosts(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// storageHosts is the parsed --storage-hosts. Verification without hosts
// would check nothing (every file unreachable), so it refuses to start.
func (c *Config) storageHosts() (storagecheck.Hosts, error) {
	h, err := storagecheck.ParseHosts(strings.Join(c.StorageHosts, ","))
	if err != nil {
		return h, fmt.Errorf("storage hosts: %w (want HOST[:PORT],...)", err)
	}
	if c.VerifyStorage && h.Len() == 0 {
		return h, errors.New("--verify-storage needs --storage-hosts: the storage hosts (HOST[:PORT],...) that RC uploads to and that recledger may send its checks to")
	}
	return h, nil
}

// checkMetricsAddr refuses a metrics address that is the main one: the
// second listener would fail to bind, or, worse, serve unguarded what the
// main one guards. Port 0 (any free port) on both is two listeners.
func checkMetricsAddr(addr, metrics string) error {
	if metrics == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(metrics)
	if err != nil {
		return fmt.Errorf("metrics addr %q: want HOST:PORT such as 10.0.0.5:9090", metrics)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("metrics addr %q: want a port number", metrics)
	}
	mainHost, mainPort, err := net.SplitHostPort(addr)
	if err != nil || port == "0" || port != mainPort {
		return nil
	}
	if host == mainHost || host == "" || mainHost == "" || host == "0.0.0.0" || mainHost == "0.0.0.0" || host == "::" || mainHost == "::" {
		return fmt.Errorf("metrics addr %q: it is the main listen address %q (or overlaps it); give another port", metrics, addr)
	}
	return nil
}

// parseDB splits --db into its kind ("sqlite" or "postgres") and location.
// A bare path (no scheme) is a SQLite file.
func parseDB(db string) (kind, location string, err error) {
	switch {
	case strings.HasPrefix(db, "sqlite:"):
		if p := strings.TrimPrefix(db, "sqlite:"); p != "" {
			return "sqlite", p, nil
		}
	case strings.HasPrefix(db, "postgres://"), strings.HasPrefix(db, "postgresql://"):
		return "postgres", db, nil
	case db != "" && !strings.Contains(db, "://"):
		return "sqlite", db, nil
	}
	return "", "", fmt.Errorf("db %q: want sqlite:PATH, a file path or a postgres:// URL", redactURL(db))
}

// redactURL hides a password in a database URL.
func redactURL(s string) string {
	at := strings.LastIndexByte(s, '@')
	scheme := strings.Index(s, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return s
	}
	userinfo := s[scheme+3 : at]
	if user, _, ok := strings.Cut(userinfo, ":"); ok {
		return s[:scheme+3] + user + ":***" + s[at:]
	}
	return s
}

func environ(key string) string { return os.Getenv(key) }

// destination is the declared destination as stored: its id follows from
// its kind and URL, so every start finds the one it created before.
func (d DeclaredDestination) destination(allowPrivate bool) (delivery.Destination, error) {
	sum := sha256.Sum256([]byte(d.Type + "\x00" + d.URL))
	out := delivery.Destination{ID: "dst_cfg_" + hex.EncodeToString(sum[:8]), Kind: delivery.Kind(d.Type), URL: d.URL,
		Description: "declared in the configuration", Enabled: true, Stream: d.Stream, Prefix: d.Prefix,
		Filter: delivery.Filter{AppKey: d.AppKey, RoomPrefix: d.RoomPrefix}}
	for _, e := range d.Events {
		out.Filter.Types = append(out.Filter.Types, delivery.Type(e))
	}
	if d.Secret != "" {
		out.Keys = []delivery.Key{{Secret: d.Secret}}
	}
	if d.MaxAge != "" {
		age, err := time.ParseDuration(d.MaxAge)
		if err != nil {
			return out, fmt.Errorf("max_age %q: want a duration such as 336h", d.MaxAge)
		}
		out.MaxAge = age
	}
	return out, dispatch.Check(&out, allowPrivate)
}
