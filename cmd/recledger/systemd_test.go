package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const systemdUnit = "../../docs/recledger.service"

// unitFile is a systemd unit: section -> key -> values in order (a key may
// repeat, as Environment= does).
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not KEY=VALUE in a section: %q", path, i+1, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// service returns the one value of key in [Service], or "".
func (u unitFile) service(key string) string {
	v := u["Service"][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

// environment is the unit's Environment= lines as KEY=VALUE.
func (u unitFile) environment() map[string]string {
	env := map[string]string{}
	for _, line := range u["Service"]["Environment"] {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	return env
}

// TestSystemdUnitHardening: docs/recledger.service carries the hardening
// the guide promises, and systemd-analyze verify finds nothing to say
// about it. verify insists ExecStart's binary exists; the documented
// /usr/local/bin/recledger is not installed here, so the copy verified has
// the test's binary in its place, and nothing else changed.
func TestSystemdUnitHardening(t *testing.T) {
	u := parseUnit(t, systemdUnit)
	want := map[string]string{
		"Type": "exec", "User": "recledger", "Group": "recledger",
		"ExecStart": "/usr/local/bin/recledger serve", "ExecReload": "/bin/kill -HUP $MAINPID",
		"KillSignal": "SIGTERM", "Restart": "on-failure",
		"StateDirectory": "recledger", "WorkingDirectory": "/var/lib/recledger",
		"EnvironmentFile": "-/etc/recledger/env",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "CapabilityBoundingSet": "", "AmbientCapabilities": "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "MemoryDenyWriteExecute": "yes",
		"SystemCallArchitectures": "native", "LimitNOFILE": "65536", "UMask": "0077",
	}
	for k, v := range want {
		if got, ok := u["Service"][k]; !ok || u.service(k) != v {
			t.Errorf("[Service] %s=%q, want %q", k, got, v)
		}
	}
	if f := u["Service"]["SystemCallFilter"]; !slices.Contains(f, "@system-service") {
		t.Errorf("SystemCallFilter=%q lacks @system-service", f)
	}
	env := u.environment()
	if env["RECLEDGER_DB"] != "sqlite:/var/lib/recledger/recledger.db" || !strings.HasPrefix(env["RECLEDGER_DB"], "sqlite:/var/lib/"+u.service("StateDirectory")+"/") {
		t.Errorf("RECLEDGER_DB=%q is not in the StateDirectory", env["RECLEDGER_DB"])
	}
	// systemd gives SIGKILL after TimeoutStopSec: it must leave serve its
	// whole shutdown timeout.
	stop, err := time.ParseDuration(u.service("TimeoutStopSec"))
	if err != nil || stop <= defaultConfig().ShutdownTimeout {
		t.Errorf("TimeoutStopSec=%q (%v), want more than --shutdown-timeout's %v", u.service("TimeoutStopSec"), err, defaultConfig().ShutdownTimeout)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian: systemd): the unit is not verified here")
	}
	unit := unitWithBinary(t, binary(t))
	out, err := exec.Command(analyze, "verify", "--man=no", unit).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// systemd's own rating of the sandbox: 0 is the most exposed-proof, 10
	// the least; "OK" ends below 4.
	out, err = exec.Command(analyze, "security", "--offline=yes", "--no-pager", unit).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for recledger\.service: ([0-9.]+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2 {
		t.Errorf("systemd-analyze security rates the unit's exposure %s, want 2 or less:\n%s", m[1], out)
	}
}

// unitWithBinary writes a copy of the unit, with bin in ExecStart's place,
// as recledger.service in a temporary directory.
func unitWithBinary(t *testing.T, bin string) string {
	t.Helper()
	data, err := os.ReadFile(systemdUnit)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(data), "\nExecStart=/usr/local/bin/recledger ", "\nExecStart="+bin+" ", 1)
	if text == string(data) {
		t.Fatal("the unit's ExecStart is not /usr/local/bin/recledger")
	}
	path := filepath.Join(t.TempDir(), "recledger.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSystemdUnitRunsReloadsStops runs what the unit runs: ExecStart's
// command line with its Environment=, in its WorkingDirectory, with the
// guide's configuration file, as an unprivileged user when the test is
// root. Substituted, because this machine is no systemd host: the paths
// under /var/lib/recledger and /etc/recledger point into a temporary
// directory, RECLEDGER_ADDR is 127.0.0.1:0, and the binary is the test's.
// Then it does what systemctl reload does (ExecReload with $MAINPID, a
// rotated secret taking effect) and what systemctl stop does (KillSignal:
// a clean exit within TimeoutStopSec).
func TestSystemdUnitRunsReloadsStops(t *testing.T) {
	u := parseUnit(t, systemdUnit)
	root := t.TempDir()
	state := filepath.Join(root, "var/lib/recledger")
	etc := filepath.Join(root, "etc/recledger")
	for _, d := range []string{state, etc} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	paths := strings.NewReplacer("/var/lib/recledger", state, "/etc/recledger", etc)
	env := []string{"PATH=/usr/bin:/bin"} // what systemd gives a service, and nothing of the test's
	for k, v := range u.environment() {
		if k == "RECLEDGER_ADDR" {
			v = "127.0.0.1:0"
		}
		env = append(env, k+"="+paths.Replace(v))
	}
	config := filepath.Join(etc, "recledger.toml")
	if want := paths.Replace("/etc/recledger/recledger.toml"); !slices.Contains(env, "RECLEDGER_CONFIG="+want) {
		t.Fatalf("the unit's RECLEDGER_CONFIG is not the guide's /etc/recledger/recledger.toml: %q", env)
	}
	toml := opsBlock(t, "recledger-toml")
	if err := os.WriteFile(config, []byte(toml), 0o640); err != nil {
		t.Fatal(err)
	}
	// The guide's placeholder secret is the one callbacks are signed with
	// until it is rotated below.
	const guideSecret, rotated = "YOUR_SECRET", "rotated-secret"
	if !strings.Contains(toml, testApp+"="+guideSecret) {
		t.Fatalf("the guide's recledger.toml does not configure %s=%s:\n%s", testApp, guideSecret, toml)
	}

	// The binary where ExecStart has it, under the temporary root: the
	// test's build is in a directory only root may enter.
	args := strings.Fields(u.service("ExecStart"))
	bin := filepath.Join(root, args[0])
	copyFile(t, binary(t), bin, 0o755)
	cmd := exec.Command(bin, args[1:]...)
	cmd.Env = env
	cmd.Dir = paths.Replace(u.service("WorkingDirectory"))
	if os.Geteuid() == 0 {
		// Not root, as User= says; the state directory is its, as systemd
		// makes it; the configuration readable by its group only.
		for _, p := range []string{state, etc, config} {
			if err := os.Chown(p, 0, 65532); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(state, 65532, 65532); err != nil {
			t.Fatal(err)
		}
		os.Chmod(state, 0o700)
		for _, d := range []string{filepath.Dir(root), root, filepath.Join(root, "var"), filepath.Join(root, "var/lib")} {
			os.Chmod(d, 0o755)
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	}
	s := startProcess(t, cmd)
	if code := postSignedWith(t, s.addr, guideSecret, seedCallback(t, "unit-rec-1")); code != 200 {
		t.Fatalf("callback signed with the configured secret: %d, want 200\n%s", code, s.logs)
	}
	if _, err := os.Stat(filepath.Join(state, "recledger.db")); err != nil {
		t.Errorf("no database in the state directory: %v", err)
	}

	// systemctl reload: ExecReload, $MAINPID being the service's pid.
	if err := os.WriteFile(config, []byte(strings.ReplaceAll(toml, guideSecret, rotated)), 0o640); err != nil {
		t.Fatal(err)
	}
	reload := strings.Fields(strings.ReplaceAll(u.service("ExecReload"), "$MAINPID", strconv.Itoa(cmd.Process.Pid)))
	if out, err := exec.Command(reload[0], reload[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("ExecReload %q: %v\n%s", reload, err, out)
	}
	s.waitLog(t, "SIGHUP: configuration reloaded", 1)
	if code := postSignedWith(t, s.addr, rotated, seedCallback(t, "unit-rec-2")); code != 200 {
		t.Errorf("callback signed with the rotated secret after reload: %d, want 200", code)
	}
	if code := postSignedWith(t, s.addr, guideSecret, seedCallback(t, "unit-rec-3")); code != 401 {
		t.Errorf("callback signed with the old secret after reload: %d, want 401", code)
	}

	// systemctl stop: KillSignal, then a clean exit within TimeoutStopSec.
	if u.service("KillSignal") != "SIGTERM" {
		t.Fatalf("KillSignal=%s", u.service("KillSignal"))
	}
	stopWithin, _ := time.ParseDuration(u.service("TimeoutStopSec"))
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM:\n%s", err, s.logs)
		}
	case <-time.After(stopWithin):
		cmd.Process.Kill()
		t.Fatalf("serve did not stop within TimeoutStopSec=%v, systemd would SIGKILL it:\n%s", stopWithin, s.logs)
	}
	if !strings.Contains(s.logs.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", s.logs)
	}
}

// copyFile copies from to to, creating its directory, with mode.
func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
}

// seedCallback is a start callback for testApp with recordId id, stamped now.
func seedCallback(t *testing.T, id string) []byte {
	t.Helper()
	body, err := json.Marshal(map[string]any{"timestamp": time.Now().UnixMilli(), "type": 1, "appKey": testApp, "recordId": id,
		"roomId": "r", "sessionId": "s", "userId": "u", "mode": 0, "code": 200})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// TestSystemdGuideInstall runs the guide's install and reload commands on
// a machine that is no systemd host: useradd, systemctl and journalctl
// are stubs that record their arguments, and install writes under a
// temporary root instead of /. What it checks: each file lands where the
// unit looks for it (ExecStart, RECLEDGER_CONFIG) with the modes the guide
// promises, the user is the unit's User=, and systemd is asked to load,
// enable, start and reload the unit by its name.
func TestSystemdGuideInstall(t *testing.T) {
	u := parseUnit(t, systemdUnit)
	dir, root, stubs := t.TempDir(), t.TempDir(), t.TempDir()
	log := filepath.Join(stubs, "calls")
	for _, name := range []string{"useradd", "systemctl", "journalctl"} {
		stub := "#!/bin/sh\necho \"" + name + " $*\" >> \"$STUB_LOG\"\n"
		if err := os.WriteFile(filepath.Join(stubs, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// install with every absolute path under $FAKEROOT; -g is recorded,
	// not applied (the group does not exist here).
	install := `#!/bin/bash
out=()
while [ $# -gt 0 ]; do
  case "$1" in
    -g|-o) echo "install $1 $2 ${@: -1}" >> "$STUB_LOG"; shift 2 ;;
    /*) out+=("$FAKEROOT$1"); shift ;;
    *) out+=("$1"); shift ;;
  esac
done
exec /usr/bin/install "${out[@]}"
`
	if err := os.WriteFile(filepath.Join(stubs, "install"), []byte(install), 0o755); err != nil {
		t.Fatal(err)
	}
	// The directories every systemd host has.
	for _, d := range []string{"usr/local/bin", "etc/systemd/system"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, binary(t), filepath.Join(dir, "recledger"), 0o755)
	copyFile(t, systemdUnit, filepath.Join(dir, "recledger.service"), 0o644)
	if err := os.WriteFile(filepath.Join(dir, "recledger.toml"), []byte(opsBlock(t, "recledger-toml")), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(block string) {
		t.Helper()
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", opsBlock(t, block))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+stubs+string(os.PathListSeparator)+os.Getenv("PATH"), "STUB_LOG="+log, "FAKEROOT="+root)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s block %q: %v\n%s", opsGuide, block, err, out)
		}
	}
	run("systemd-install")
	run("systemd-reload")

	mode := func(path string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(filepath.Join(root, path))
		if err != nil {
			t.Fatalf("the guide installs nothing at %s: %v", path, err)
		}
		return fi.Mode().Perm()
	}
	exe := strings.Fields(u.service("ExecStart"))[0]
	config := u.environment()["RECLEDGER_CONFIG"]
	for path, want := range map[string]os.FileMode{exe: 0o755, "/etc/systemd/system/recledger.service": 0o644,
		filepath.Dir(config): 0o750, config: 0o640} {
		if got := mode(path); got != want {
			t.Errorf("%s has mode %v, want %v", path, got, want)
		}
	}
	if out, err := exec.Command(filepath.Join(root, exe), "version").Output(); err != nil || !strings.HasPrefix(string(out), "recledger ") {
		t.Errorf("the installed %s does not run: %q, %v", exe, out, err)
	}
	installed, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system/recledger.service"))
	original, _ := os.ReadFile(systemdUnit)
	if string(installed) != string(original) {
		t.Error("the installed unit differs from docs/recledger.service")
	}

	calls, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	user, group := u.service("User"), u.service("Group")
	for _, want := range []string{
		"install -g " + group + " " + filepath.Dir(config),
		"install -g " + group + " " + config,
		"systemctl daemon-reload",
		"systemctl enable --now recledger",
		"systemctl reload recledger",
		"journalctl --unit recledger ",
	} {
		if !strings.Contains(string(calls), want) {
			t.Errorf("the guide's commands lack %q:\n%s", want, calls)
		}
	}
	// useradd creates the unit's user and (with --user-group) its group,
	// whose home is the state directory.
	m := regexp.MustCompile(`(?m)^useradd (.*) (\S+)$`).FindStringSubmatch(string(calls))
	if m == nil || m[2] != user || user != group || !strings.Contains(m[1], "--system") || !strings.Contains(m[1], "--user-group") ||
		!strings.Contains(m[1], "--home-dir "+u.service("WorkingDirectory")) {
		t.Errorf("useradd call %q does not create the unit's user %s and group %s", m, user, group)
	}
}
