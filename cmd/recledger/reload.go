package main

import (
	"log/slog"
	"reflect"
	"sort"

	"github.com/recledger/recledger/internal/access"
	"github.com/recledger/recledger/rc"
)

// reloader applies what can change without a restart when serve gets
// SIGHUP: the apps and their secrets, the API token and the log level.
// Everything else is read at start only; a reload that changes it says so.
type reloader struct {
	load     func() (Config, error) // the same sources as at start
	cfg      Config                 // what is in force
	log      *slog.Logger
	level    *slog.LevelVar
	verifier *rc.Verifier
	rule     *access.Rule
}

// reload rereads the configuration and puts its reloadable part in force.
// An invalid configuration changes nothing: the running one is kept.
func (r *reloader) reload() {
	next, err := r.load()
	if err != nil {
		r.log.Error("SIGHUP: configuration not reloaded; keeping the running one", "err", err)
		return
	}
	if err := r.verifier.SetApps(next.Apps); err != nil {
		r.log.Error("SIGHUP: configuration not reloaded; keeping the running one", "err", err)
		return
	}
	r.rule.SetToken(next.APIToken)
	r.level.Set(logLevel(next.LogLevel))
	keys := r.verifier.AppKeys()
	sort.Strings(keys)
	r.log.Info("SIGHUP: configuration reloaded", "apps", keys, "api_token", next.APIToken != "", "log_level", next.LogLevel)
	if len(keys) == 0 {
		r.log.Warn("no RC app configured: callbacks are refused until you add one with --app KEY=SECRET or RECLEDGER_APPS=KEY=SECRET")
	}
	if changed := restartOnly(r.cfg, next); len(changed) > 0 {
		r.log.Warn("SIGHUP: these settings changed but take effect only after a restart", "settings", changed)
	}
	r.cfg.Apps, r.cfg.APIToken, r.cfg.LogLevel = next.Apps, next.APIToken, next.LogLevel
}

// reloadable are the Config fields a SIGHUP puts in force.
var reloadable = map[string]bool{"Apps": true, "APIToken": true, "LogLevel": true}

// settingNames are the flags of the Config fields whose names do not say it.
var settingNames = map[string]string{"SQLiteSynchronous": "sqlite-synchronous", "SQLiteCheckpoint": "sqlite-checkpoint", "Destinations": "webhook/destinations",
	"DB": "db", "DBWriteTimeout": "db-write-timeout"}

// restartOnly names the settings that differ between a and b and that only
// a restart puts in force.
func restartOnly(a, b Config) []string {
	var changed []string
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range va.NumField() {
		name := va.Type().Field(i).Name
		if reloadable[name] || reflect.DeepEqual(va.Field(i).Interface(), vb.Field(i).Interface()) {
			continue
		}
		if flag, ok := settingNames[name]; ok {
			name = flag
		} else {
			name = kebab(name)
		}
		changed = append(changed, name)
	}
	return changed
}

// kebab turns a field name such as SignatureTolerance into its flag's
// spelling, signature-tolerance.
func kebab(s string) string {
	var out []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			if i > 0 && (s[i-1] < 'A' || s[i-1] > 'Z' || i+1 < len(s) && s[i+1] >= 'a' && s[i+1] <= 'z') {
				out = append(out, '-')
			}
			c += 'a' - 'A'
		}
		out = append(out, c)
	}
	return string(out)
}

// logLevel is the slog level a validated --log-level names.
func logLevel(name string) slog.Level {
	var level slog.Level
	level.UnmarshalText([]byte(name)) // Validate checked it
	return level
}
