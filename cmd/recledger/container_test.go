package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/recledger/recledger/rc"
)

// The container image is built from ../../Dockerfile. Where podman works
// (CI installs it; rootful, vfs storage, runc, no systemd), TestContainerImage
// builds and runs the image the guide's way. With no engine at all,
// TestDockerfileRuntimeStage and TestContainerGuideMatchesDockerfile hold
// the file and the guide to their promises, and TestImageBinaryWithoutEngine
// runs the staged binary as the image would.

const repoRoot = "../.."

// dockerInstruction is one instruction of a Dockerfile, continuation lines
// joined.
type dockerInstruction struct {
	Cmd, Args string
	Line      int
}

func parseDockerfile(t *testing.T, path string) []dockerInstruction {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out  []dockerInstruction
		cur  strings.Builder
		from int
	)
	for i, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			from = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args), Line: from})
		cur.Reset()
	}
	return out
}

// TestDockerfileRuntimeStage: the image's last stage starts FROM scratch
// (building it downloads nothing), runs as a numeric non-root user, keeps
// its data in a VOLUME where RECLEDGER_DB points, listens on 0.0.0.0:8080
// as EXPOSEd, and its HEALTHCHECK runs the binary's own probe (a scratch
// image has no shell or curl). It needs no container engine.
func TestDockerfileRuntimeStage(t *testing.T) {
	ins := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	last := -1
	for i, in := range ins {
		if in.Cmd == "FROM" {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("Dockerfile has no FROM")
	}
	if from := strings.Fields(ins[last].Args); len(from) == 0 || from[0] != "scratch" {
		t.Errorf("the runtime stage is FROM %q, want scratch", ins[last].Args)
	}
	stage := map[string][]string{}
	for _, in := range ins[last+1:] {
		stage[in.Cmd] = append(stage[in.Cmd], in.Args)
	}
	one := func(cmd string) string {
		if len(stage[cmd]) != 1 {
			t.Errorf("the runtime stage has %d %s, want 1", len(stage[cmd]), cmd)
			return ""
		}
		return stage[cmd][0]
	}
	user := one("USER")
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("USER %q: want a numeric non-root uid (runtimes check it without an /etc/passwd)", user)
	}
	if v := one("VOLUME"); v != `["/data"]` {
		t.Errorf("VOLUME %s, want [\"/data\"]", v)
	}
	if v := one("EXPOSE"); v != "8080" {
		t.Errorf("EXPOSE %s, want 8080", v)
	}
	env := strings.Join(stage["ENV"], " ")
	for _, want := range []string{"RECLEDGER_ADDR=0.0.0.0:8080", "RECLEDGER_DB=sqlite:/data/recledger.db"} {
		if !slices.Contains(strings.Fields(env), want) {
			t.Errorf("ENV lacks %s: %s", want, env)
		}
	}
	if hc := one("HEALTHCHECK"); !strings.Contains(hc, `CMD ["/recledger", "health"`) {
		t.Errorf("HEALTHCHECK %s: want the exec form of /recledger health", hc)
	}
	if ep := one("ENTRYPOINT"); ep != `["/recledger"]` {
		t.Errorf("ENTRYPOINT %s, want [\"/recledger\"]", ep)
	}
	var certs, binary bool
	for _, c := range stage["COPY"] {
		certs = certs || strings.HasSuffix(c, " /etc/ssl/certs/ca-certificates.crt")
		binary = binary || strings.HasSuffix(c, " /recledger")
	}
	if !certs || !binary {
		t.Errorf("the runtime stage copies the CA bundle: %v, the binary: %v; want both:\n%q", certs, binary, stage["COPY"])
	}
	// The context is the repository, so .dockerignore must keep everything
	// but the staged files out of it (./data may hold a development
	// database, .git the history).
	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, l := range strings.Split(string(ignore), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			rules = append(rules, l)
		}
	}
	if !slices.Equal(rules, []string{"*", "!dist/image/"}) {
		t.Errorf(".dockerignore rules %q, want everything out but dist/image/", rules)
	}
}

// TestContainerGuideMatchesDockerfile: the guide's container commands say
// what the image is (read as text, so this holds with no engine; where
// podman works TestContainerImage runs them): built by make image, the
// port it EXPOSEs published, a volume on its VOLUME, the environment file
// the guide shows, its HEALTHCHECK's command, and a stop that waits longer
// than serve's shutdown timeout.
func TestContainerGuideMatchesDockerfile(t *testing.T) {
	if b := opsBlock(t, "container-build"); !regexp.MustCompile(`(?m)^make image\b`).MatchString(b) {
		t.Errorf("container-build does not run make image:\n%s", b)
	}
	run := opsBlock(t, "container-run")
	for _, want := range []string{"--publish 127.0.0.1:8080:8080", "--volume recledger-data:/data", "--env-file recledger.env", "--name recledger"} {
		if !strings.Contains(run, want) {
			t.Errorf("container-run lacks %q:\n%s", want, run)
		}
	}
	if env := opsBlock(t, "recledger-env"); !strings.Contains(env, "RECLEDGER_APPS=") || !strings.Contains(env, "RECLEDGER_API_TOKEN=") {
		t.Errorf("recledger-env sets no app or no token:\n%s", env)
	}
	if h := opsBlock(t, "container-health"); strings.TrimSpace(h) != "docker exec recledger /recledger health" {
		t.Errorf("container-health %q does not run the HEALTHCHECK's probe", h)
	}
	m := regexp.MustCompile(`docker stop --time (\d+) recledger`).FindStringSubmatch(opsBlock(t, "container-stop"))
	if m == nil {
		t.Fatal("container-stop does not stop the container recledger with --time")
	}
	if secs, _ := strconv.Atoi(m[1]); time.Duration(secs)*time.Second <= defaultConfig().ShutdownTimeout {
		t.Errorf("docker stop --time %s kills serve before its %v shutdown timeout", m[1], defaultConfig().ShutdownTimeout)
	}
}

// podman runs podman with its state under dir, in the ways that work on a
// machine without systemd or a writable cgroup v2 (CI's): vfs storage,
// runc, cgroupfs, and the open-file limit the test already has (the
// runtime may not raise it).
type podman struct {
	t       *testing.T
	root    string
	ulimits []string // --ulimit flags for podman run
	wrapper string   // a `docker` on PATH that is this podman
}

func newPodman(t *testing.T) *podman {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman is not installed (apt-get install podman runc; .ci/run installs them): the image is not built here")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("podman is installed but runc is not (apt-get install runc; .ci/run installs it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("podman needs root here (rootless needs subuids this test does not set up)")
	}
	// The runtime asks for its own defaults of these two limits, above what
	// it may set here (runc's parent runs with lower ones than the test):
	// the test's open-file limit, and threads enough for a Go server.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	ulimits := []string{"--ulimit", fmt.Sprintf("nofile=%d:%d", lim.Cur, lim.Cur), "--ulimit", "nproc=4096:4096"}
	p := &podman{t: t, root: t.TempDir(), ulimits: ulimits}
	bin := filepath.Join(p.root, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	// The guide's commands say docker; here they run podman, and docker run
	// gets the flags this machine needs.
	p.wrapper = filepath.Join(bin, "docker")
	script := "#!/bin/sh\nset -e\n" +
		"podman() { command podman " + strings.Join(p.globalFlags(), " ") + " \"$@\"; }\n" +
		"if [ \"$1\" = run ]; then shift; podman run " + strings.Join(p.ulimits, " ") + " \"$@\"; exit; fi\n" +
		"podman \"$@\"\n"
	if err := os.WriteFile(p.wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Containers first: their mounts hold the storage t.TempDir removes.
		p.cmd("rm", "--all", "--force", "--time", "0").Run()
		p.cmd("volume", "prune", "--force").Run()
	})
	return p
}

func (p *podman) globalFlags() []string {
	return []string{"--root", filepath.Join(p.root, "storage"), "--runroot", filepath.Join(p.root, "run"),
		"--storage-driver", "vfs", "--runtime", "runc", "--cgroup-manager", "cgroupfs"}
}

func (p *podman) cmd(args ...string) *exec.Cmd {
	return exec.Command("podman", append(p.globalFlags(), args...)...)
}

// run runs podman and returns its stdout; it fails the test on an error.
func (p *podman) run(args ...string) string {
	p.t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := p.cmd(args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := runBounded(cmd, 5*time.Minute); err != nil {
		p.t.Fatalf("podman %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// logs is what the container recledger wrote (podman passes its stderr on
// as stderr).
func (p *podman) logs() string {
	p.t.Helper()
	out, err := p.cmd("logs", "recledger").CombinedOutput()
	if err != nil {
		p.t.Fatalf("podman logs: %v\n%s", err, out)
	}
	return string(out)
}

// runBounded runs cmd and kills it after timeout.
func runBounded(cmd *exec.Cmd, timeout time.Duration) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("killed after %v", timeout)
	}
}

// runGuide runs the guide's sh block name with docker being podman, in dir,
// after replacing each old with its new (the host port the guide publishes
// is taken by a free one).
func (p *podman) runGuide(name, dir string, replace ...string) string {
	p.t.Helper()
	script := strings.NewReplacer(replace...).Replace(opsBlock(p.t, name))
	cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(p.wrapper)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"CONTAINER=docker")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := runBounded(cmd, 5*time.Minute); err != nil {
		p.t.Fatalf("%s block %q: %v\n%s", opsGuide, name, err, out.String())
	}
	return out.String()
}

// freePort is a port on 127.0.0.1 nothing listens on right now.
// TestContainerImage follows the guide's Containers section with podman
// standing in for docker: make image builds the image FROM scratch (no
// image is downloaded: there is no registry here), it runs as uid 65532
// with its database in the named volume, answers on the published port,
// its HEALTHCHECK passes (and fails with no server), a callback stored
// before a restart is there after it, and docker stop ends it cleanly.
func TestContainerImage(t *testing.T) {
	p := newPodman(t)
	port := strconv.Itoa(freePort(t))
	dir := t.TempDir()
	// The guide's environment file, as it is: its placeholder secret signs
	// the callbacks, its token reads the API.
	env := opsBlock(t, "recledger-env")
	const secret = "YOUR_SECRET"
	token := regexp.MustCompile(`(?m)^RECLEDGER_API_TOKEN=(.+)$`).FindStringSubmatch(env)
	if !strings.Contains(env, "RECLEDGER_APPS="+testApp+"="+secret+"\n") || token == nil {
		t.Fatalf("the guide's recledger.env does not set %s=%s and a token:\n%s", testApp, secret, env)
	}
	if err := os.WriteFile(filepath.Join(dir, "recledger.env"), []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	p.runGuide("container-build", root)
	cfg := p.run("image", "inspect", "recledger:local", "--format", "{{.Config.User}} {{json .Config.Volumes}} {{json .HealthCheck.Test}}")
	if want := `65532:65532 {"/data":{}} ["CMD","/recledger","health","--timeout","3s"]`; strings.TrimSpace(cfg) != want {
		t.Errorf("image config %q, want %q", strings.TrimSpace(cfg), want)
	}
	// The image holds the binary, the CA bundle and two empty directories
	// owned by the server's user, nothing else.
	p.run("create", "--name", "recledger-files", "recledger:local")
	files := tarListing(t, p.cmd("export", "recledger-files"))
	want := []string{"data/ 65532 dir", "etc/ 0 dir", "etc/ssl/ 0 dir", "etc/ssl/certs/ 0 dir",
		"etc/ssl/certs/ca-certificates.crt 0 file", "recledger 0 file", "tmp/ 65532 dir"}
	if !slices.Equal(files, want) {
		t.Errorf("the image's files:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}

	hostPort := "127.0.0.1:" + port + ":8080"
	p.runGuide("container-run", dir, "127.0.0.1:8080:8080", hostPort)
	base := "http://127.0.0.1:" + port
	waitHealthy(t, p, base)
	if out := p.runGuide("container-health", dir); !strings.Contains(out, "answered 200 OK") {
		t.Errorf("container-health said %q", out)
	}
	// podman runs the image's HEALTHCHECK itself (its timers need systemd,
	// so the check is started by hand here).
	p.run("healthcheck", "run", "recledger")
	if s := strings.TrimSpace(p.run("inspect", "recledger", "--format", "{{.State.Health.Status}}")); s != "healthy" {
		t.Errorf("health status %q after a passing check, want healthy", s)
	}
	if u := strings.TrimSpace(p.run("exec", "recledger", "/recledger", "version")); !strings.HasPrefix(u, "recledger ") {
		t.Errorf("recledger version in the container: %q", u)
	}

	const recordID = "container-rec-1"
	body := fmt.Appendf(nil, `{"timestamp":%d,"type":1,"appKey":%q,"recordId":%q,"roomId":"r","sessionId":"s","userId":"u","mode":0,"code":200}`,
		time.Now().UnixMilli(), testApp, recordID)
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/callbacks/recording", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	s := rc.Signer{AppKey: testApp, Secret: secret}
	s.Apply(req, s.Sign())
	if code := statusOf(t, req); code != http.StatusOK {
		t.Fatalf("callback answered %d, want 200", code)
	}

	out := p.runGuide("container-stop", dir)
	if code := strings.TrimSpace(p.run("inspect", "recledger", "--format", "{{.State.ExitCode}}")); code != "0" {
		t.Errorf("exit code %s after docker stop, want 0 (graceful SIGTERM)\n%s", code, out)
	}
	if logs := p.logs(); !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("no clean stop in the logs:\n%s", logs)
	}
	// A new container on the same volume has the callback: the data is in
	// the volume, not in the container.
	p.run("rm", "recledger")
	p.runGuide("container-run", dir, "127.0.0.1:8080:8080", hostPort)
	waitHealthy(t, p, base)
	req, _ = http.NewRequest(http.MethodGet, base+"/v1/recordings/"+recordID, nil)
	req.Header.Set("Authorization", "Bearer "+token[1])
	if code := statusOf(t, req); code != http.StatusOK {
		t.Errorf("GET the recording after a restart on the same volume: %d, want 200", code)
	}

	// The probe fails where nothing answers, so a dead server is unhealthy.
	probe := p.cmd(slices.Concat([]string{"run", "--rm"}, p.ulimits, []string{"--network", "none", "recledger:local", "health", "--timeout", "1s"})...)
	if out, err := probe.CombinedOutput(); err == nil || !strings.Contains(string(out), "connection refused") {
		t.Errorf("health with no server: %v, want exit 1 and connection refused:\n%s", err, out)
	}
}

// waitHealthy waits (bounded) until base answers /healthz with 200.
func waitHealthy(t *testing.T, p *podman, base string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := testClient.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not answer 200 within 60 s (%v); logs:\n%s", base, err, p.logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func statusOf(t *testing.T, req *http.Request) int {
	t.Helper()
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// tarListing lists the tar cmd writes as "name uid type" lines, sorted.
func tarListing(t *testing.T, cmd *exec.Cmd) []string {
	t.Helper()
	list := exec.Command("tar", "--list", "--verbose", "--numeric-owner")
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	list.Stdin = pipe
	var out bytes.Buffer
	list.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := list.Run(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	var files []string
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		// drwxr-xr-x 65532/65532 0 2026-11-30 01:27 data/
		f := strings.Fields(sc.Text())
		if len(f) < 6 {
			continue
		}
		uid, _, _ := strings.Cut(f[1], "/")
		kind := "file"
		if strings.HasPrefix(f[0], "d") {
			kind = "dir"
		}
		files = append(files, f[len(f)-1]+" "+uid+" "+kind)
	}
	slices.Sort(files)
	return files
}

// TestImageBinaryWithoutEngine does with no container engine what the
// image does, as far as that goes: make image-context stages a static
// binary (a scratch image has no dynamic loader), which runs as the
// Dockerfile's ENTRYPOINT and CMD with the Dockerfile's ENV and nothing
// else, as uid 65532 when the test is root, in WORKDIR, its database in
// the VOLUME; and the HEALTHCHECK's command passes against it.
// Substituted: the image's root is a temporary directory (/recledger and
// /data under it), and the server listens on 127.0.0.1:0, not 0.0.0.0:8080.
func TestImageBinaryWithoutEngine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the image is a Linux one")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	stage := filepath.Join(t.TempDir(), "dist", "image")
	stageCmd := exec.Command("make", "--no-print-directory", "image-context", "IMAGE_DIR="+stage, "IMAGE_PLATFORMS=linux/"+runtime.GOARCH, "VERSION=v0.0.1-test")
	stageCmd.Dir = repoRoot
	if out, err := stageCmd.CombinedOutput(); err != nil {
		t.Fatalf("make image-context: %v\n%s", err, out)
	}
	staged := filepath.Join(stage, "linux_"+runtime.GOARCH, "recledger")
	f, err := elf.Open(staged)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the staged binary asks for a dynamic loader, which an image FROM scratch does not have")
		}
	}
	f.Close()

	ins := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))
	var env, entrypoint, cmdArgs, health []string
	workdir := "/"
	for _, in := range ins {
		switch in.Cmd {
		case "ENV":
			env = append(env, strings.Fields(in.Args)...)
		case "ENTRYPOINT":
			entrypoint = jsonArgs(t, in.Args)
		case "CMD":
			cmdArgs = jsonArgs(t, in.Args)
		case "WORKDIR":
			workdir = in.Args
		case "HEALTHCHECK":
			_, probe, _ := strings.Cut(in.Args, "CMD ")
			health = jsonArgs(t, probe)
		}
	}
	root := t.TempDir()
	inRoot := func(p string) string { return filepath.Join(root, p) }
	copyFile(t, staged, inRoot(entrypoint[0]), 0o755)
	if err := os.MkdirAll(inRoot("/data"), 0o700); err != nil {
		t.Fatal(err)
	}
	var serveEnv []string
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		switch {
		case k == "RECLEDGER_ADDR":
			v = "127.0.0.1:0"
		case strings.HasPrefix(v, "sqlite:/"):
			v = "sqlite:" + inRoot(strings.TrimPrefix(v, "sqlite:"))
		case strings.HasPrefix(v, "/"):
			v = inRoot(v)
		}
		serveEnv = append(serveEnv, k+"="+v)
	}
	server := exec.Command(inRoot(entrypoint[0]), append(entrypoint[1:], cmdArgs...)...)
	server.Env, server.Dir = serveEnv, inRoot(workdir)
	var cred *syscall.SysProcAttr
	if os.Geteuid() == 0 {
		if err := os.Chown(inRoot("/data"), 65532, 65532); err != nil {
			t.Fatal(err)
		}
		os.Chmod(filepath.Dir(root), 0o755)
		os.Chmod(root, 0o755)
		cred = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
	}
	server.SysProcAttr = cred
	s := startProcess(t, server)
	if _, err := os.Stat(inRoot("/data/recledger.db")); err != nil {
		t.Errorf("no database in the volume: %v", err)
	}

	// The HEALTHCHECK's command with the same environment; only the address
	// is where this server listens.
	probe := exec.Command(inRoot(health[0]), health[1:]...)
	probe.Env = append(slices.Clone(serveEnv), "RECLEDGER_ADDR="+s.addr)
	probe.SysProcAttr = cred
	if out, err := probe.CombinedOutput(); err != nil {
		t.Errorf("HEALTHCHECK %q: %v\n%s", health, err, out)
	}
	s.stop(t)
}

// jsonArgs reads a Dockerfile's exec form, ["a", "b"].
func jsonArgs(t *testing.T, s string) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(s), &args); err != nil || len(args) == 0 {
		t.Fatalf("not an exec form %q: %v", s, err)
	}
	return args
}
