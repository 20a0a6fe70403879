// Package ledgertest is the conformance suite every ledger.Store backend
// must pass: ExerciseStore runs it against a backend's constructor.
package ledgertest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// Opener opens a backend's store on the same database each time it is
// called (after the previous one was closed): that is how the suite checks
// what survives a restart. Each call of ExerciseStore's newOpener must
// return an Opener on a fresh, empty database.
type Opener func() ledger.Store

// ExerciseStore runs the conformance suite, by role: the log (what the
// acknowledged commit keeps), the engine (what is derived from it), the
// queries, the completeness findings, the files list, the quarantine, the replay memory, the
// revoked sessions, removal (ledger.Remover), storage verification (ledger.Verifications) and
// the outbound side (delivery.Source).
func ExerciseStore(t *testing.T, newOpener func(t *testing.T) Opener) {
	type test struct {
		name string
		run  func(t *testing.T, open Opener)
	}
	roles := []struct {
		role  string
		tests []test
	}{
		{"Log", []test{
			{"EventsPaging", testEventsPaging},
			{"ConcurrentAppends", testConcurrentAppends},
			{"SurvivesReopen", testSurvivesReopen},
			{"Ping", testPing},
			{"HostileStrings", testHostileStrings},
		}},
		{"Engine", []test{
			{"AppendAndProject", testAppendAndProject},
			{"Duplicates", testDuplicates},
			{"RebuildEqualsLive", testRebuildEqualsLive},
		}},
		{"Queries", []test{
			{"NotFound", testNotFound},
			{"ListRecordings", testListRecordings},
			{"PagesStableUnderInserts", testPagesStableUnderInserts},
			{"FileRecordings", testFileRecordings},
			{"Stats", testStats},
			{"UploadStateFilter", testUploadStateFilter},
			{"Activity", testActivity},
			{"StatsAgreeWithRecordings", testStatsAgreeWithRecordings},
			{"FiltersFollowChanges", testFiltersFollowChanges},
		}},
		{"Findings", []test{
			{"Filter", testFindingFilter},
			{"Clear", testFindingsClear},
			{"PagesSkipCandidates", testFindingPagesSkipCandidates},
		}},
		{"Files", []test{
			{"List", testListFiles},
			{"PagesStableUnderInserts", testFilesPagesStableUnderInserts},
			{"AgreeWithStats", testFilesAgreeWithStats},
		}},
		{"Quarantine", []test{{"CapsAndOrder", testQuarantine}, {"ClaimedAppKey", testQuarantineAppKey}}},
		{"ReplayMemory", []test{{"Verdicts", testReplayMemory}}},
		{"Sessions", []test{{"Revoked", testRevokedSessions}}},
		{"Removal", []test{
			{"Forget", testForget},
			{"RebuildAfterForget", testRebuildAfterForget},
			{"CallbackAfterForget", testCallbackAfterForget},
			{"ForgetOutbound", testForgetOutbound},
			{"Expired", testExpired},
			{"NamingRecordings", testNamingRecordings},
			{"Quarantine", testQuarantineRemoval},
		}},
		{"Verifications", []test{
			{"Queue", testVerificationQueue},
			{"Due", testVerificationDue},
			{"Recheck", testVerificationRecheck},
			{"Announce", testVerificationAnnounce},
			{"Counts", testVerificationCounts},
			{"Lifecycle", testVerificationLifecycle},
			{"Drop", testVerificationDrop},
			{"Taken", testVerificationTaken},
			{"Hostile", testVerificationHostile},
		}},
		{"Outbound", []test{
			{"Outbox", testOutbox},
			{"OutboxOnAtStart", testOutboxOnAtStart},
			{"Destinations", testDestinations},
			{"Progress", testDeliveryProgress},
			{"PruneOutbox", testPruneOutbox},
			{"AnnounceFile", testAnnounceFile},
		}},
	}
	for _, r := range roles {
		t.Run(r.role, func(t *testing.T) {
			for _, tt := range r.tests {
				t.Run(tt.name, func(t *testing.T) {
					tt.run(t, newOpener(t))
				})
			}
		})
	}
}

var base = time.UnixMilli(1530027865231)

// Callback builds a valid callback body the way RC would and parses it, so
// stores see exactly what ingest gives them.
func Callback(t testing.TB, recordID string, typ rc.Type, offset time.Duration, file string, code int) rc.Callback {
	t.Helper()
	ts := base.Add(offset).UnixMilli()
	output := ""
	switch typ {
	case rc.TypeStart:
		output = `,"config":{"trigger":1,"mixLayout":2,"slicesMin":30,"audioFormat":"aac","videoFormat":"mp4"},` +
			`"output":{"fileName":"tmp.mp4","audioSample":48000,"videoResoulation":"640x480"}`
	case rc.TypeSegment, rc.TypeEnd:
		output = fmt.Sprintf(`,"output":{"fileName":%q,"fileSize":%d}`, file, 1000+len(file))
	case rc.TypeUpload:
		output = fmt.Sprintf(`,"output":{"fileName":%q,"fileUrl":"http://oss/%s"}`, file, file)
	default:
		output = fmt.Sprintf(`,"output":{"fileName":%q}`, file)
	}
	body := fmt.Sprintf(`{"timestamp":%d,"type":%d,"appKey":"app","recordId":%q,"roomId":"room","sessionId":"sess",`+
		`"userId":"u1","mode":0,"extra":"","code":%d,"errorMessage":"msg"%s}`, ts, typ, recordID, code, output)
	cb, err := rc.Parse([]byte(body))
	if err != nil {
		t.Fatalf("test callback does not parse: %v\n%s", err, body)
	}
	return cb
}

// Recording returns the callbacks of one recording of n segments, with an
// end, uploads (the first one failing once) and, for variety, a failed
// segment upload left unretried when fail is set.
func Recording(t testing.TB, recordID string, n int, fail bool) []rc.Callback {
	t.Helper()
	cbs := []rc.Callback{Callback(t, recordID, rc.TypeStart, 0, "", 200)}
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("sess_room_u1_%s_%d.mp4", recordID, i)
		kind := rc.TypeSegment
		if i == n {
			kind = rc.TypeEnd
		}
		at := time.Duration(i) * 30 * time.Minute
		cbs = append(cbs, Callback(t, recordID, kind, at, name, 200))
		if i == 1 {
			cbs = append(cbs, Callback(t, recordID, rc.TypeUpload, at+time.Second, name, 500))
		}
		if !(fail && i == 1) {
			cbs = append(cbs, Callback(t, recordID, rc.TypeUpload, at+11*time.Second, name, 200))
		}
	}
	return cbs
}

func appendAll(t *testing.T, s ledger.Store, cbs []rc.Callback, at time.Time) []ledger.Appended {
	t.Helper()
	out := make([]ledger.Appended, len(cbs))
	for i, cb := range cbs {
		a, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: at.Add(time.Duration(i) * time.Millisecond)})
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		out[i] = a
	}
	return out
}

// fold is what a store must hold for these callbacks: Apply over them.
func fold(cbs []rc.Callback, at time.Time) ledger.State {
	var s ledger.State
	for i, cb := range cbs {
		s = ledger.Apply(s, cb, at.Add(time.Duration(i)*time.Millisecond).UnixMilli())
	}
	return s
}

func mustRecording(t *testing.T, s ledger.Store, id string) ledger.State {
	t.Helper()
	st, err := s.Recording(context.Background(), id)
	if err != nil {
		t.Fatalf("Recording(%s): %v", id, err)
	}
	return st
}

func closeStore(t *testing.T, s ledger.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
