package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// docs/operations.md is a guide an operator follows literally, so its
// commands and configuration files are run and used by tests. Each fenced
// block names itself after its language: ```sh backup-sqlite is the block
// "backup-sqlite" (renderers read only the first word). A test takes a
// block by name with opsBlock, and TestMain fails a full run of this
// package if some block in the guide was taken by no test, so a block
// cannot be added or renamed without a test following it.
const opsGuide = "../../docs/operations.md"

type opsFence struct {
	Lang, Name, Text string
	Line             int
}

var (
	opsMu    sync.Mutex
	opsTaken = map[string]bool{}
)

var fenceRe = regexp.MustCompile("^```([A-Za-z0-9_+-]*)[ \t]*([A-Za-z0-9_.-]*)[ \t]*$")

// opsFences reads the guide's fenced blocks in order.
func opsFences() ([]opsFence, error) {
	f, err := os.Open(opsGuide)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		fences []opsFence
		cur    *opsFence
		text   strings.Builder
		n      int
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		if cur == nil {
			if m := fenceRe.FindStringSubmatch(line); m != nil {
				cur = &opsFence{Lang: m[1], Name: m[2], Line: n}
				text.Reset()
			}
			continue
		}
		if line == "```" {
			cur.Text = text.String()
			fences = append(fences, *cur)
			cur = nil
			continue
		}
		text.WriteString(line + "\n")
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: fence not closed", opsGuide, cur.Line)
	}
	return fences, sc.Err()
}

// opsBlock returns the text of the guide's block name, and marks it as
// followed by a test.
func opsBlock(t *testing.T, name string) string {
	t.Helper()
	fences, err := opsFences()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fences {
		if f.Name == name {
			opsMu.Lock()
			opsTaken[name] = true
			opsMu.Unlock()
			return f.Text
		}
	}
	t.Fatalf("%s has no block named %q", opsGuide, name)
	return ""
}

// runOpsScript runs the guide's sh block name with bash -euo pipefail in
// dir, with the recledger under test first on PATH (as "recledger") and env
// added, bounded by timeout. It returns the combined output and fails the
// test if the script fails.
func runOpsScript(t *testing.T, name, dir string, timeout time.Duration, env ...string) string {
	t.Helper()
	script := opsBlock(t, name)
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary(t), filepath.Join(bin, "recledger")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "RECLEDGER_APPS=", "RECLEDGER_CONFIG=")
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s block %q: %v\n%s", opsGuide, name, err, out)
	}
	return string(out)
}

// TestOperationsGuideFences holds the guide's blocks to the convention: each
// named, names unique, so opsBlock finds exactly the block a test means.
func TestOperationsGuideFences(t *testing.T) {
	fences, err := opsFences()
	if err != nil {
		t.Fatal(err)
	}
	if len(fences) == 0 {
		t.Fatalf("%s has no fenced blocks", opsGuide)
	}
	seen := map[string]int{}
	for _, f := range fences {
		if f.Name == "" {
			t.Errorf("%s:%d: a block without a name (```%s NAME)", opsGuide, f.Line, f.Lang)
			continue
		}
		if prev, ok := seen[f.Name]; ok {
			t.Errorf("%s:%d: block %q was already used at line %d", opsGuide, f.Line, f.Name, prev)
		}
		seen[f.Name] = f.Line
	}
}

// opsUntaken lists the guide's blocks no test took; TestMain reports them
// after a run of the whole package.
func opsUntaken() []string {
	fences, err := opsFences()
	if err != nil {
		return []string{err.Error()}
	}
	opsMu.Lock()
	defer opsMu.Unlock()
	var out []string
	for _, f := range fences {
		if f.Name != "" && !opsTaken[f.Name] {
			out = append(out, fmt.Sprintf("%s (line %d)", f.Name, f.Line))
		}
	}
	slices.Sort(out)
	return out
}
