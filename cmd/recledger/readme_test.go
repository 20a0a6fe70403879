package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// readme is the README's text.
func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readmeFirstCommand is the first line of the first code block of the
// README's section titled heading, without its comment.
func readmeFirstCommand(t *testing.T, heading string) []string {
	t.Helper()
	text := readme(t)
	i := strings.Index(text, "\n## "+heading+"\n")
	if i < 0 {
		t.Fatalf("README has no section %q", heading)
	}
	j := strings.Index(text[i:], "```sh\n")
	if j < 0 {
		t.Fatalf("README section %q has no sh block", heading)
	}
	line, _, _ := strings.Cut(text[i+j+len("```sh\n"):], "\n")
	line, _, _ = strings.Cut(line, "#")
	return strings.Fields(line)
}

// TestReadmeInstallBeforeFirstUse: the README says how to get the binary
// (and that the first go run compiles a while) before it first writes a
// bare `recledger` command, and keeps its two first commands.
func TestReadmeInstallBeforeFirstUse(t *testing.T) {
	text := readme(t)
	if !strings.HasPrefix(text, "# recledger\n\n```sh\ngo run ./cmd/recledger serve ") || !strings.Contains(text, "\ngo test ./...  ") {
		t.Errorf("the README's two first commands changed:\n%.200s", text)
	}
	install := strings.Index(text, "go install github.com/recledger/recledger/cmd/recledger@latest")
	build := strings.Index(text, "make build")
	compiles := strings.Index(text, "takes a minute or two")
	var names []string
	for _, c := range newRootCmd().Commands() {
		names = append(names, c.Name())
	}
	firstUse := regexp.MustCompile("(\\n|`)recledger (" + strings.Join(names, "|") + ")\\b").FindStringIndex(text)
	if install < 0 || build < 0 || compiles < 0 || firstUse == nil {
		t.Fatalf("README lacks go install (%d), make build (%d), the compile note (%d) or any bare recledger command", install, build, compiles)
	}
	for name, at := range map[string]int{"go install": install, "make build": build, "the compile note": compiles} {
		if at > firstUse[0] {
			t.Errorf("%s comes after the first bare command %q", name, text[firstUse[0]:firstUse[1]])
		}
	}
}

// TestReadmeStatesMatchHelp: the README explains the states in the words
// of recordings ls --help.
func TestReadmeStatesMatchHelp(t *testing.T) {
	if !strings.Contains(readme(t), strings.TrimPrefix(statusHelp, "\n")) {
		t.Errorf("the README lacks recordings ls --help's explanation of the states:\n%s", statusHelp)
	}
}

// TestReadmeListsEverySetting: the README's configuration table has a row
// for each setting serve reads, with its environment variable and file
// key, so a new flag cannot land undocumented.
func TestReadmeListsEverySetting(t *testing.T) {
	text := readme(t)
	rows := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "| `--") {
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "| `--"), "`")
			name, _, _ = strings.Cut(name, " ")
			rows[name] = line
		}
	}
	for _, s := range settings {
		row, ok := rows[s.flag]
		if !ok {
			t.Errorf("the README's configuration table has no row for --%s", s.flag)
			continue
		}
		if !strings.Contains(row, "`"+s.env+"`") || !strings.Contains(row, "`"+s.key+"`") {
			t.Errorf("the README's row for --%s does not name %s and %s:\n%s", s.flag, s.env, s.key, row)
		}
	}
}
