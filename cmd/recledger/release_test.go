package main

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMakeRelease: `make release` builds a static binary per platform named
// as goreleaser does (recledger_VERSION_OS_ARCH), with the version stamped,
// and SHA256SUMS that hold for the files. Only this machine's platform is
// built here (each one compiles everything: a minute or two).
func TestMakeRelease(t *testing.T) {
	opsBlock(t, "verify-release") // taken before the test may skip (see TestMain); run below
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dist := t.TempDir()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	cmd := exec.Command("make", "--no-print-directory", "release", "PLATFORMS="+platform, "DIST="+dist, "VERSION=v0.0.1-test")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make release: %v\n%s", err, out)
	}
	name := "recledger_0.0.1-test_" + runtime.GOOS + "_" + runtime.GOARCH
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	bin := filepath.Join(dist, name)
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatalf("no %s: %v", name, err)
	}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	sum := sha256.Sum256(data)
	if want := hex.EncodeToString(sum[:]) + "  " + name + "\n"; err != nil || string(sums) != want {
		t.Errorf("SHA256SUMS = %q, %v; want %q", sums, err, want)
	}
	// The guide's check of a download holds for the release's files.
	if out := runOpsScript(t, "verify-release", dist, time.Minute); !strings.Contains(out, name+": OK") {
		t.Errorf("verify-release said %q, want %s: OK", out, name)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(out), "recledger v0.0.1-test ") {
		t.Errorf("%s version: %q, %v; want the stamped version", name, out, err)
	}
	if runtime.GOOS == "linux" {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s asks for a dynamic loader: not a static binary", name)
			}
		}
	}
}
