package main

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/recledger/recledger/internal/api"
)

// TestSimulateStorageFaults is issue 16's proof: a server verifying storage
// against the simulator's test storage, with a short
// --max-recording-length, gets recordings with every scenario fault, and
// `simulate --verify` finds exactly the verification states and findings
// the faults imply (it fails on any other): three files missing, three of
// another size, three recordings not ended, three segments missing. On
// both backends.
func TestSimulateStorageFaults(t *testing.T) {
	backends := map[string]func(t *testing.T) []string{
		"sqlite":   func(*testing.T) []string { return nil },
		"postgres": func(t *testing.T) []string { return []string{"--db", postgresURL(t)} },
	}
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			storage := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			const maxOpen = "2s" // the no-end recordings are past it by the time the storage checks are done
			srv := startServer(t, t.TempDir(), append(backends[name](t), "--app", testApp+"="+testSecret,
				"--verify-storage", "--storage-hosts", storage, "--max-recording-length", maxOpen)...)
			// No reordering or delays: a wrong-size file's upload acknowledged
			// before its size may be verified without it, which the oracle
			// allows but would make the counts below vary.
			out, stderr, code := runBinary(t, "", "simulate", "--to", "http://"+srv.addr+"/v1/callbacks/recording",
				"--app", testApp+"="+testSecret, "--recordings", "30", "--upload-failures", "0.2",
				"--faults", "absent=3,wrong-size=3,no-end=3,missing-segment=3,dup=0.1,badsig=0.05,malformed=0.05,unknown=0.05",
				"--storage-addr", storage, "--max-recording-length", maxOpen, "--verify", "--verify-wait", "60s")
			if code != 0 {
				t.Fatalf("simulate --verify: exit %d\n%s%s", code, out, stderr)
			}
			for _, want := range []string{
				"absent 3", "missing-segment 3", "no-end 3", "wrong-size 3", // injected
				"verify: 30 recordings match what was acknowledged",
				"missing ×3", "size_mismatch ×3", "0 whole GET, 0 refused",
				"not_ended ×3", "segment_gap ×3",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("simulate output lacks %q:\n%s", want, out)
				}
			}
			// The filters agree with what each recording shows.
			var list api.RecordingList
			apiGet(t, srv.addr, "", "/v1/recordings?finding=not_ended&limit=500", &list)
			if len(list.Items) != 3 {
				t.Errorf("?finding=not_ended lists %d recordings, want the 3 without an end", len(list.Items))
			}
			// The stored findings (the column the engine writes as files
			// arrive) list the recordings that show them: one gap per
			// missing segment, and as many with missing files as the views
			// show.
			apiGet(t, srv.addr, "", "/v1/recordings?finding=segment_gap&limit=500", &list)
			if len(list.Items) != 3 {
				t.Errorf("?finding=segment_gap lists %d recordings, want the 3 missing a segment", len(list.Items))
			}
			missingFiles := 0
			if m := regexp.MustCompile(`missing_files ×(\d+)`).FindStringSubmatch(out); m != nil {
				missingFiles, _ = strconv.Atoi(m[1])
			}
			apiGet(t, srv.addr, "", "/v1/recordings?finding=missing_files&limit=500", &list)
			if len(list.Items) != missingFiles {
				t.Errorf("?finding=missing_files lists %d recordings, want the %d that show it", len(list.Items), missingFiles)
			}
			apiGet(t, srv.addr, "", "/v1/recordings?verification=missing&limit=500", &list)
			if n := len(list.Items); n < 1 || n > 3 {
				t.Errorf("?verification=missing lists %d recordings, want those of the 3 absent files", n)
			}
		})
	}
}

// TestSimulateStorageNeedsAVerifyingServer: with its test storage,
// `simulate --verify` wants every uploaded file verified, so a server that
// does not verify storage fails it, every mismatch a missing verification,
// with a hint at the flags.
func TestSimulateStorageNeedsAVerifyingServer(t *testing.T) {
	srv := startServer(t, t.TempDir(), "--app", testApp+"="+testSecret)
	storage := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	out, stderr, code := runBinary(t, "", "simulate", "--to", "http://"+srv.addr+"/v1/callbacks/recording",
		"--app", testApp+"="+testSecret, "--recordings", "5", "--seed", "3", "--storage-addr", storage, "--verify")
	if code == 0 {
		t.Fatalf("simulate --verify passed against a server that verifies no storage:\n%s", out)
	}
	if !strings.Contains(out, "by kind: verification missing ×") || strings.Count(out, " ×") != 1 {
		t.Errorf("want missing verifications and nothing else:\n%s%s", out, stderr)
	}
	if want := "is recledger running with --verify-storage --storage-hosts " + storage + "?"; !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
	for _, bad := range [][]string{{"--print", "jsonl"}, {"--rate", "10", "--duration", "1s"}} {
		args := append([]string{"simulate", "--to", "http://" + srv.addr + "/v1/callbacks/recording", "--app", testApp + "=" + testSecret,
			"--storage-addr", storage}, bad...)
		if _, stderr, code := runBinary(t, "", args...); code == 0 || !strings.Contains(stderr, "--storage-addr") {
			t.Errorf("simulate %v with --storage-addr: exit %d, %s", bad, code, stderr)
		}
	}
}
