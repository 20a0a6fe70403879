package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/delivery/webhook"
)

// The alerting rules and the Grafana dashboard in docs/ are for operators
// to load as they are: these tests hold them to promtool's checks and unit
// tests, to the shape Grafana imports, and to the metrics a running
// recledger really serves.
const (
	alertRules     = "../../docs/alerts.yml"
	alertRuleTests = "../../docs/alerts_test.yml"
	grafanaJSON    = "../../docs/grafana-dashboard.json"
)

// promtool returns the path of promtool, or skips the test. CI installs
// it (.ci/run) and internal/skipcheck fails the run if this skips there.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not on PATH (CI installs it from Debian's prometheus package: see .ci/run)")
	}
	return p
}

func runPromtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestAlertRulesPromtool: the rules are valid, and their unit tests
// (series that must fire each alert, and series that must not) pass.
func TestAlertRulesPromtool(t *testing.T) {
	promtool(t)
	runPromtool(t, ".", "check", "rules", alertRules)
	out := runPromtool(t, ".", "test", "rules", alertRuleTests)
	if !strings.Contains(out, "SUCCESS") {
		t.Errorf("promtool test rules did not say SUCCESS:\n%s", out)
	}
	// Every alert has a unit test.
	rules, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(alertRuleTests)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\w+)$`).FindAllStringSubmatch(string(rules), -1) {
		if !regexp.MustCompile(`(?m)^\s*- alertname: ` + m[1] + `$`).Match(tests) {
			t.Errorf("alert %s has no test in %s", m[1], alertRuleTests)
		}
	}
}

// TestOpsPrometheusConfig: the guide's prometheus.yml, with the rules
// beside it under the name it gives and a token file, passes the guide's
// own check (promtool check config, which loads the rules too).
func TestOpsPrometheusConfig(t *testing.T) {
	// The blocks are taken before the test may skip (see TestMain).
	scrape := opsBlock(t, "prometheus-scrape")
	opsBlock(t, "check-prometheus") // run by runOpsScript below
	promtool(t)
	dir := t.TempDir()
	rules, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"prometheus.yml":          scrape,
		"recledger-alerts.yml":    string(rules),
		"recledger-metrics-token": "a-token-of-sixteen-or-more\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := runOpsScript(t, "check-prometheus", dir, time.Minute)
	if !strings.Contains(out, "SUCCESS: 1 rule files found") || !strings.Contains(out, "SUCCESS: 19 rules found") {
		t.Errorf("promtool check config did not load the rules:\n%s", out)
	}
}

// grafanaDashboard is what an import reads of the dashboard.
type grafanaDashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name, Type string
			Query      any `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type, UID string
	} `json:"datasource"`
	GridPos *struct{ X, Y, W, H int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

// TestGrafanaDashboardShape: the dashboard is JSON Grafana imports: a uid
// and title, a recent schema, a data source variable the panels use, and
// panels with unique ids, a place on the 24-column grid, and queries.
func TestGrafanaDashboardShape(t *testing.T) {
	b, err := os.ReadFile(grafanaJSON)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", grafanaJSON, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both needed", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want 36 or later (panels with data source objects)", d.SchemaVersion)
	}
	hasDS := slices.ContainsFunc(d.Templating.List, func(v struct {
		Name, Type string
		Query      any `json:"query"`
	}) bool {
		return v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
	})
	if !hasDS {
		t.Errorf("no Prometheus data source variable named datasource")
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	ids := map[int]string{}
	queries := 0
	for _, p := range d.Panels {
		name := p.Title
		if p.ID <= 0 {
			t.Errorf("panel %q: id %d", name, p.ID)
		}
		if other, ok := ids[p.ID]; ok {
			t.Errorf("panels %q and %q share id %d", other, name, p.ID)
		}
		ids[p.ID] = name
		if p.Type == "" || p.Title == "" {
			t.Errorf("panel %d: type %q, title %q", p.ID, p.Type, p.Title)
		}
		if g := p.GridPos; g == nil || g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("panel %q: gridPos %+v, want a place on the 24-column grid", name, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want the ${datasource} variable", name, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no targets", name)
		}
		refs := map[string]bool{}
		for _, q := range p.Targets {
			if q.RefID == "" || refs[q.RefID] || strings.TrimSpace(q.Expr) == "" {
				t.Errorf("panel %q: target %+v (refIds unique, an expr each)", name, q)
			}
			refs[q.RefID] = true
			queries++
		}
	}
	t.Logf("%d panels, %d queries", len(d.Panels), queries)
}

// TestGrafanaQueriesParse: every query of the dashboard is PromQL that
// Prometheus accepts once Grafana has put in its variables: each is
// checked by promtool as a recording rule.
func TestGrafanaQueriesParse(t *testing.T) {
	promtool(t)
	b, err := os.ReadFile(grafanaJSON)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	grafanaVars := strings.NewReplacer("$__rate_interval", "1m", "$job", ".+")
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range d.Panels {
		for _, q := range p.Targets {
			expr, err := json.Marshal(grafanaVars.Replace(q.Expr)) // a JSON string is a YAML string
			if err != nil {
				t.Fatal(err)
			}
			n++
			fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", n, expr)
		}
	}
	file := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	out := runPromtool(t, ".", "check", "rules", file)
	if want := fmt.Sprintf("SUCCESS: %d rules found", n); !strings.Contains(out, want) {
		t.Errorf("promtool check rules on the dashboard's %d queries:\n%s", n, out)
	}
}

// metricNameRe finds recledger's series named in PromQL or prose.
var metricNameRe = regexp.MustCompile(`\brecledger_[a-z0-9_]+\b`)

// opsMetricsSection is the guide's "Metrics and alerts" section.
func opsMetricsSection(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(opsGuide)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n## Metrics and alerts\n")
	if !ok {
		t.Fatalf("%s has no section Metrics and alerts", opsGuide)
	}
	if i := strings.Index(rest, "\n## "); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// scrapedNames returns the metric names of a /metrics text: each sample's
// name, and each histogram's own name (the base of _bucket, _sum, _count).
func scrapedNames(text string) map[string]bool {
	names := map[string]bool{}
	for line := range strings.SplitSeq(text, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

// TestAlertsAndDashboardNameRealMetrics: every recledger_ series that the
// alerting rules, the dashboard and the guide's metrics section name is
// served by a running recledger once it has seen callbacks and delivered,
// failed, given up and been told 410 Gone, so renaming a metric cannot
// leave them silently empty.
func TestAlertsAndDashboardNameRealMetrics(t *testing.T) {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.URL.Path {
		case "/ok":
			w.WriteHeader(http.StatusOK)
		case "/gone":
			w.WriteHeader(http.StatusGone)
		default:
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer receiver.Close()
	// Storage verification on (its series exist only then); the seeds'
	// upload URL names a host not on the list, so nothing is asked.
	args := []string{"--app", testApp + "=" + testSecret, "--allow-private-destinations", "--retry-schedule", "10ms",
		"--verify-storage", "--storage-hosts", "127.0.0.1:1"}
	for _, path := range []string{"/ok", "/gone", "/fail"} {
		args = append(args, "--webhook", receiver.URL+path+"="+webhook.NewSecret().Reveal())
	}
	srv := startServer(t, t.TempDir(), args...)
	srv.postSeeds(t, "type1-start.json", "type2-segment.json", "type3-end.json", "type4-upload.json")

	referenced := map[string][]string{} // name -> where
	for _, f := range []string{alertRules, grafanaJSON} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range metricNameRe.FindAllString(string(b), -1) {
			referenced[n] = append(referenced[n], filepath.Base(f))
		}
	}
	for _, n := range metricNameRe.FindAllString(opsMetricsSection(t), -1) {
		referenced[n] = append(referenced[n], "operations.md")
	}
	if len(referenced) < 20 {
		t.Fatalf("only %d metric names found in the docs: is the pattern right?", len(referenced))
	}

	// The delivery series appear as the dispatcher works: wait for them.
	var missing []string
	var text string
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := testClient.Get("http://" + srv.addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text = string(b)
		names := scrapedNames(text)
		missing = missing[:0]
		for n := range referenced {
			if !names[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	slices.Sort(missing)
	for _, n := range missing {
		t.Errorf("%s (named in %s) is not in the scrape", n, strings.Join(slices.Compact(referenced[n]), ", "))
	}
	if len(missing) > 0 {
		t.Logf("scrape:\n%s", text)
	}
}
