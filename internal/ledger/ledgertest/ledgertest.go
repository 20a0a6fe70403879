// Package ledgertest is the conformance suite every ledger.Store backend
// must pass: ExerciseStore runs it against a backend's constructor.
package ledgertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// Opener opens a backend's store on the same database each time it is
// called (after the previous one was closed): that is how the suite checks
// what survives a restart. Each call of ExerciseStore's newOpener must
// return an Opener on a fresh, empty database.
type Opener func() ledger.Store

// ExerciseStore runs the conformance suite.
func ExerciseStore(t *testing.T, newOpener func(t *testing.T) Opener) {
	tests := []struct {
		name string
		run  func(t *testing.T, open Opener)
	}{
		{"AppendAndProject", testAppendAndProject},
		{"Duplicates", testDuplicates},
		{"NotFound", testNotFound},
		{"EventsPaging", testEventsPaging},
		{"ConcurrentAppends", testConcurrentAppends},
		{"SurvivesReopen", testSurvivesReopen},
		{"ReplayMemory", testReplayMemory},
		{"Quarantine", testQuarantine},
		{"RebuildEqualsLive", testRebuildEqualsLive},
		{"ListRecordings", testListRecordings},
		{"PagesStableUnderInserts", testPagesStableUnderInserts},
		{"FileRecordings", testFileRecordings},
		{"Stats", testStats},
		{"UploadStateFilter", testUploadStateFilter},
		{"Activity", testActivity},
		{"StatsAgreeWithRecordings", testStatsAgreeWithRecordings},
		{"Ping", testPing},
		{"HostileStrings", testHostileStrings},
		{"RevokedSessions", testRevokedSessions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.run(t, newOpener(t))
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

func testAppendAndProject(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	cbs := Recording(t, "rec-a", 3, false)
	at := time.Now()
	got := appendAll(t, s, cbs, at)
	for i, a := range got {
		if a.Seq != 0 && a.Seq != int64(i+1) { // 0: the log numbers rows as it projects them
			t.Fatalf("Append #%d = %+v, want seq %d (or 0)", i, a, i+1)
		}
	}
	if diff := cmp.Diff(fold(cbs, at), mustRecording(t, s, "rec-a")); diff != "" {
		t.Errorf("stored state differs from Apply's (-want +got):\n%s", diff)
	}
	r := mustRecording(t, s, "rec-a").View(at)
	if r.Status != ledger.StatusComplete || r.FileCount != 3 || r.UploadedCount != 3 {
		t.Errorf("view: status %s, %d files, %d uploaded; want complete, 3, 3", r.Status, r.FileCount, r.UploadedCount)
	}
	evs, err := s.RecordingEvents(context.Background(), "rec-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(cbs) {
		t.Fatalf("RecordingEvents: %d, want %d", len(evs), len(cbs))
	}
	for i, e := range evs {
		want := ledger.NewEvent(cbs[i], at.Add(time.Duration(i)*time.Millisecond))
		want.Seq = int64(i + 1)
		if diff := cmp.Diff(want, e); diff != "" {
			t.Fatalf("event %d (-want +got):\n%s", i, diff)
		}
	}
}

func testDuplicates(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	cbs := Recording(t, "rec-d", 2, false)
	at := time.Now()
	appendAll(t, s, cbs, at)
	before := mustRecording(t, s, "rec-d")
	// The same callbacks again, later, and a reparse of one (a new body copy).
	again := appendAll(t, s, append(cbs, Callback(t, "rec-d", rc.TypeEnd, 60*time.Minute, "sess_room_u1_rec-d_2.mp4", 200)), at.Add(time.Hour))
	for i, a := range again {
		if a.Seq != 0 && a.Seq != int64(len(cbs)+i+1) {
			t.Errorf("redelivery #%d = %+v, want seq %d (or 0)", i, a, len(cbs)+i+1)
		}
	}
	if diff := cmp.Diff(before, mustRecording(t, s, "rec-d")); diff != "" {
		t.Errorf("duplicates changed the recording (-before +after):\n%s", diff)
	}
	evs, err := s.RecordingEvents(context.Background(), "rec-d")
	if err != nil {
		t.Fatal(err)
	}
	dups := 0
	for i, e := range evs {
		if e.Duplicate {
			dups++
		}
		if e.Duplicate != (i >= len(cbs)) || e.Seq != int64(i+1) {
			t.Errorf("event %d: seq %d, duplicate %v; want seq %d, duplicate %v", i, e.Seq, e.Duplicate, i+1, i >= len(cbs))
		}
	}
	if len(evs) != 2*len(cbs)+1 || dups != len(cbs)+1 {
		t.Errorf("log holds %d events, %d duplicate; want %d and %d", len(evs), dups, 2*len(cbs)+1, len(cbs)+1)
	}
	// The same identity with another code is another callback, not a duplicate.
	if _, err := s.Append(context.Background(), ledger.Incoming{Callback: Callback(t, "rec-d", rc.TypeEnd, 60*time.Minute, "sess_room_u1_rec-d_2.mp4", 500), ReceivedAt: at}); err != nil {
		t.Fatal(err)
	}
	if evs, err := s.RecordingEvents(context.Background(), "rec-d"); err != nil || len(evs) != 2*len(cbs)+2 || evs[len(evs)-1].Duplicate {
		t.Errorf("end with another code: %d events (%v), the last duplicate; want %d, an original", len(evs), err, 2*len(cbs)+2)
	}
}

func testNotFound(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	if _, err := s.Recording(context.Background(), "nope"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("Recording(unknown) = %v, want ErrNotFound", err)
	}
	evs, err := s.RecordingEvents(context.Background(), "nope")
	if err != nil || len(evs) != 0 {
		t.Errorf("RecordingEvents(unknown) = %d events, %v", len(evs), err)
	}
}

func testEventsPaging(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	appendAll(t, s, Recording(t, "rec-p", 4, true), time.Now())
	var seqs []int64
	after := int64(0)
	for {
		page, err := s.Events(context.Background(), after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 3 {
			t.Fatalf("page of %d, limit 3", len(page))
		}
		for _, e := range page {
			seqs = append(seqs, e.Seq)
		}
		after = page[len(page)-1].Seq
	}
	for i, seq := range seqs {
		if seq != int64(i+1) {
			t.Fatalf("seqs %v: want 1, 2, 3... without gaps", seqs)
		}
	}
	if len(seqs) != 9 {
		t.Errorf("paged through %d events, want 9", len(seqs))
	}
	latest, err := s.LatestEvents(context.Background(), 4)
	if err != nil || len(latest) != 4 || latest[0].Seq != 6 || latest[3].Seq != 9 {
		t.Errorf("LatestEvents(4) = %d events from %v, %v; want seqs 6-9 in order", len(latest), latest, err)
	}
}

// testConcurrentAppends sends many recordings' callbacks, each twice, from
// 32 goroutines at once: every state must equal Apply's, and the log must
// hold each callback once as an original.
func testConcurrentAppends(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	const recordings = 40
	all := map[string][]rc.Callback{}
	var work []rc.Callback
	for i := range recordings {
		id := fmt.Sprintf("rec-c%02d", i)
		all[id] = Recording(t, id, 1+i%4, i%3 == 0)
		work = append(work, all[id]...)
		work = append(work, all[id]...)
	}
	at := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan rc.Callback)
	for range 32 {
		wg.Go(func() {
			for cb := range jobs {
				if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cb, ReceivedAt: at}); err != nil {
					t.Errorf("Append: %v", err)
				}
			}
		})
	}
	for _, cb := range work {
		jobs <- cb
	}
	close(jobs)
	wg.Wait()
	evs, err := s.Events(context.Background(), 0, 2*len(work))
	if err != nil || len(evs) != len(work) {
		t.Fatalf("Events: %d, %v; want %d", len(evs), err, len(work))
	}
	origins := 0
	for _, e := range evs {
		if !e.Duplicate {
			origins++
		}
	}
	if origins != len(work)/2 {
		t.Errorf("%d originals for %d distinct callbacks", origins, len(work)/2)
	}
	for id, cbs := range all {
		var want ledger.State
		for _, cb := range cbs {
			want = ledger.Apply(want, cb, at.UnixMilli())
		}
		if diff := cmp.Diff(want, mustRecording(t, s, id)); diff != "" {
			t.Fatalf("%s (-Apply +stored):\n%s", id, diff)
		}
	}
}

func testSurvivesReopen(t *testing.T, open Opener) {
	s := open()
	cbs := Recording(t, "rec-r", 2, false)
	at := time.Now()
	appendAll(t, s, cbs, at)
	want := mustRecording(t, s, "rec-r")
	// A signed callback: the verifier remembers its signature, then ingest
	// appends it.
	signed := Callback(t, "rec-r2", rc.TypeStart, 0, "", 200)
	sig := rc.ReplayKey{AppKey: "app", Nonce: "n1", Timestamp: fmt.Sprint(at.UnixMilli())}
	if v, err := s.Remember(context.Background(), sig, sha256.Sum256(signed.Raw), at.Add(time.Hour)); err != nil || v != rc.ReplayFirst {
		t.Fatalf("Remember = %v, %v", v, err)
	}
	appendAll(t, s, []rc.Callback{signed}, at)
	closeStore(t, s)

	s = open()
	defer closeStore(t, s)
	if diff := cmp.Diff(want, mustRecording(t, s, "rec-r")); diff != "" {
		t.Errorf("after reopen (-before +after):\n%s", diff)
	}
	evs, err := s.Events(context.Background(), 0, 100)
	if err != nil || len(evs) != len(cbs)+1 {
		t.Errorf("after reopen: %d events, %v; want %d", len(evs), err, len(cbs)+1)
	}
	if v, err := s.Remember(context.Background(), sig, [32]byte{2}, at.Add(time.Hour)); err != nil || v != rc.ReplayOtherBody {
		t.Errorf("after reopen, the signature with another body = %v, %v; want ReplayOtherBody", v, err)
	}
	if _, err := s.Append(context.Background(), ledger.Incoming{Callback: cbs[0], ReceivedAt: at}); err != nil {
		t.Fatal(err)
	}
	evs, err = s.RecordingEvents(context.Background(), "rec-r")
	if err != nil || len(evs) != len(cbs)+1 || !evs[len(cbs)].Duplicate || evs[len(cbs)].Seq != int64(len(cbs)+2) {
		t.Errorf("after reopen, a redelivery: %+v, %v; want the last of %d events a duplicate with seq %d", evs, err, len(cbs)+1, len(cbs)+2)
	}
}

func testReplayMemory(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	now := time.Now()
	k := rc.ReplayKey{AppKey: "app", Nonce: "abc", Timestamp: "1530027865231"}
	steps := []struct {
		key    rc.ReplayKey
		digest byte
		want   rc.ReplayVerdict
	}{
		{k, 1, rc.ReplayFirst}, {k, 1, rc.ReplaySameBody}, {k, 2, rc.ReplayOtherBody},
		{rc.ReplayKey{AppKey: "app", Nonce: "abd", Timestamp: k.Timestamp}, 2, rc.ReplayFirst},
		{rc.ReplayKey{AppKey: "other", Nonce: "abc", Timestamp: k.Timestamp}, 2, rc.ReplayFirst},
	}
	for i, st := range steps {
		if v, err := s.Remember(ctx, st.key, [32]byte{st.digest}, now.Add(time.Minute)); err != nil || v != st.want {
			t.Errorf("step %d: Remember = %v, %v; want %v", i, v, err, st.want)
		}
	}
}

func testQuarantine(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), ledger.MaxQuarantineBody+100)
	for i := range 5 {
		r := ledger.Rejection{At: int64(1000 + i), Status: 401, Reason: "bad_signature", Message: fmt.Sprint("attempt ", i),
			Remote: "127.0.0.1:5555", Method: "POST", Path: "/v1/callbacks/recording",
			Header: http.Header{"Signature": {"***"}}, Body: []byte(`{"n":1}`), BodySize: 7}
		if i == 4 {
			r.Body, r.BodySize = big, int64(len(big))
		}
		if err := s.Quarantine(ctx, r); err != nil {
			t.Fatalf("Quarantine: %v", err)
		}
	}
	page, err := s.QuarantineList(ctx, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 3 || page[0].Message != "attempt 4" || page[2].Message != "attempt 2" {
		t.Fatalf("newest page = %+v", page)
	}
	if len(page[0].Body) != ledger.MaxQuarantineBody || page[0].BodySize != int64(len(big)) {
		t.Errorf("kept %d of a %d-byte body (size %d), want %d", len(page[0].Body), len(big), page[0].BodySize, ledger.MaxQuarantineBody)
	}
	if page[1].Header.Get("Signature") != "***" || page[1].Remote != "127.0.0.1:5555" || page[1].Status != 401 {
		t.Errorf("rejection fields lost: %+v", page[1])
	}
	rest, err := s.QuarantineList(ctx, page[2].ID, 10)
	if err != nil || len(rest) != 2 || rest[0].Message != "attempt 1" {
		t.Errorf("next page = %+v, %v", rest, err)
	}
}

// testRebuildEqualsLive runs a mixed workload (several recordings, failures,
// redeliveries, unknown types) and checks that rebuilding the projections
// from the log gives exactly the live ones.
func testRebuildEqualsLive(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ids := []string{"rb-1", "rb-2", "rb-3", "rb-4"}
	at := time.Now()
	var all []rc.Callback
	for i, id := range ids {
		all = append(all, Recording(t, id, i+1, i%2 == 1)...)
	}
	all = append(all, Callback(t, "rb-1", rc.Type(9), time.Hour, "", 200), Callback(t, "rb-5", rc.TypeStart, 0, "", 503))
	appendAll(t, s, all, at)
	appendAll(t, s, all[:7], at.Add(time.Minute)) // redeliveries
	live := map[string]ledger.State{}
	for _, id := range append(ids, "rb-5") {
		live[id] = mustRecording(t, s, id)
	}
	before, err := s.ListRecordings(context.Background(), ledger.RecordingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	feed, err := s.Events(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Rebuild(context.Background())
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if n != int64(len(all)) {
		t.Errorf("Rebuild applied %d events, want %d originals", n, len(all))
	}
	for id, want := range live {
		if diff := cmp.Diff(want, mustRecording(t, s, id)); diff != "" {
			t.Errorf("%s after rebuild (-live +rebuilt):\n%s", id, diff)
		}
	}
	after, err := s.ListRecordings(context.Background(), ledger.RecordingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(recordIDs(before.Items), recordIDs(after.Items)); diff != "" {
		t.Errorf("list order changed by the rebuild (-live +rebuilt):\n%s", diff)
	}
	// The feed too: the same seqs, bodies and duplicate marks.
	rebuilt, err := s.Events(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(feed, rebuilt); diff != "" || len(feed) != 2*len(all)-len(all)+7 {
		t.Errorf("feed of %d events changed by the rebuild (-live +rebuilt):\n%s", len(feed), diff)
	}
	// The store goes on working after a rebuild.
	if _, err := s.Append(context.Background(), ledger.Incoming{Callback: Callback(t, "rb-6", rc.TypeStart, 0, "", 200), ReceivedAt: at}); err != nil {
		t.Errorf("Append after Rebuild: %v", err)
	}
}

func testPing(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// callbackIn is Callback with the recording's room, session, user and mode
// set, for the filter tests.
func callbackIn(t testing.TB, recordID, room, session, user string, mode rc.Mode, typ rc.Type, offset time.Duration, file string, code int) rc.Callback {
	t.Helper()
	cb := Callback(t, recordID, typ, offset, file, code)
	body := strings.NewReplacer(`"roomId":"room"`, fmt.Sprintf(`"roomId":%q`, room), `"sessionId":"sess"`, fmt.Sprintf(`"sessionId":%q`, session),
		`"userId":"u1"`, fmt.Sprintf(`"userId":%q`, user), `"mode":0`, fmt.Sprintf(`"mode":%d`, mode)).Replace(string(cb.Raw))
	out, err := rc.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func recordIDs(states []ledger.State) []string {
	var out []string
	for _, s := range states {
		out = append(out, s.RecordID)
	}
	return out
}

func testListRecordings(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now()
	// In order of first arrival: l1 .. l5.
	cbs := []rc.Callback{
		callbackIn(t, "l1", "roomA", "s1", "u1", rc.ModeAudioVideo, rc.TypeStart, 0, "", 200),
		callbackIn(t, "l2", "roomA", "s1", "", rc.ModeMixAudioVideo, rc.TypeStart, time.Minute, "", 200),
		callbackIn(t, "l3", "roomB", "s2", "u2", rc.ModeAudioVideo, rc.TypeStart, 2*time.Minute, "", 500),
		callbackIn(t, "l4", "roomB", "s2", "u1", rc.ModeUserAudioVideo, rc.TypeEnd, 3*time.Minute, "f4.mp4", 200),
		callbackIn(t, "l5", "roomC", "s3", "u3", rc.ModeAudioVideo, rc.TypeUpload, 4*time.Minute, "f5.mp4", 200),
	}
	appendAll(t, s, cbs, at)
	mode := rc.ModeAudioVideo
	since, until := base.Add(time.Minute).UnixMilli(), base.Add(3*time.Minute).UnixMilli()
	recent := at.Add(3 * time.Millisecond).UnixMilli() // l4 and l5 have no start: first seen counts
	tests := []struct {
		name string
		f    ledger.RecordingFilter
		want []string
	}{
		{"all, newest first", ledger.RecordingFilter{}, []string{"l5", "l4", "l3", "l2", "l1"}},
		{"room", ledger.RecordingFilter{RoomID: "roomA"}, []string{"l2", "l1"}},
		{"session", ledger.RecordingFilter{SessionID: "s2"}, []string{"l4", "l3"}},
		{"user", ledger.RecordingFilter{UserID: "u1"}, []string{"l4", "l1"}},
		{"app", ledger.RecordingFilter{AppKey: "app"}, []string{"l5", "l4", "l3", "l2", "l1"}},
		{"other app", ledger.RecordingFilter{AppKey: "nope"}, nil},
		{"status failed", ledger.RecordingFilter{Status: ledger.StatusFailed}, []string{"l3"}},
		{"status ended", ledger.RecordingFilter{Status: ledger.StatusEnded}, []string{"l4"}},
		{"status recording", ledger.RecordingFilter{Status: ledger.StatusRecording}, []string{"l5", "l2", "l1"}},
		{"mode", ledger.RecordingFilter{Mode: &mode}, []string{"l5", "l3", "l1"}},
		{"started since..until", ledger.RecordingFilter{Since: &since, Until: &until}, []string{"l3", "l2"}},
		{"first seen since", ledger.RecordingFilter{Since: &recent}, []string{"l5", "l4"}},
		{"room and user", ledger.RecordingFilter{RoomID: "roomB", UserID: "u2"}, []string{"l3"}},
	}
	for _, tt := range tests {
		page, err := s.ListRecordings(ctx, tt.f)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if diff := cmp.Diff(tt.want, recordIDs(page.Items)); diff != "" || page.Next != "" {
			t.Errorf("%s (-want +got):\n%s next %q", tt.name, diff, page.Next)
		}
	}
	for _, bad := range []ledger.RecordingFilter{{Limit: -1}, {Limit: ledger.MaxPage + 1}} {
		if _, err := s.ListRecordings(ctx, bad); !errors.Is(err, ledger.ErrBadLimit) {
			t.Errorf("limit %d: %v, want ErrBadLimit", bad.Limit, err)
		}
	}
	first, err := s.ListRecordings(ctx, ledger.RecordingFilter{RoomID: "roomA", Limit: 1})
	if err != nil || first.Next == "" {
		t.Fatalf("first page of roomA: %+v, %v", first, err)
	}
	if _, err := s.ListRecordings(ctx, ledger.RecordingFilter{RoomID: "roomB", Cursor: first.Next}); !errors.Is(err, ledger.ErrBadCursor) {
		t.Errorf("roomA's cursor used for roomB: %v, want ErrBadCursor", err)
	}
	for _, c := range []string{"garbage", "cjE6LTE", "eDox"} {
		if _, err := s.ListRecordings(ctx, ledger.RecordingFilter{Cursor: c}); !errors.Is(err, ledger.ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
}

// testPagesStableUnderInserts pages through recordings two at a time while
// new recordings and new callbacks of listed ones arrive between pages: the
// pages must hold every recording that existed at the first page exactly once.
func testPagesStableUnderInserts(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now()
	var existing []string
	for i := range 9 {
		id := fmt.Sprintf("p%02d", i)
		existing = append(existing, id)
		appendAll(t, s, []rc.Callback{Callback(t, id, rc.TypeStart, time.Duration(i)*time.Minute, "", 200)}, at)
	}
	seen := map[string]int{}
	f := ledger.RecordingFilter{Limit: 2}
	for round := 0; ; round++ {
		page, err := s.ListRecordings(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range page.Items {
			seen[st.RecordID]++
		}
		if page.Next == "" {
			break
		}
		if round > 20 {
			t.Fatal("paging does not end")
		}
		// Between pages: a new recording, and more callbacks for an old one.
		appendAll(t, s, []rc.Callback{
			Callback(t, fmt.Sprintf("new%02d", round), rc.TypeStart, time.Hour, "", 200),
			Callback(t, existing[round%len(existing)], rc.TypeEnd, time.Hour, fmt.Sprintf("f%d.mp4", round), 200),
		}, at.Add(time.Second))
		f.Cursor = page.Next
	}
	for _, id := range existing {
		if seen[id] != 1 {
			t.Errorf("%s listed %d times, want once: %v", id, seen[id], seen)
		}
	}
}

func testFileRecordings(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now()
	appendAll(t, s, []rc.Callback{
		Callback(t, "fa", rc.TypeEnd, 0, "shared.mp4", 200),
		Callback(t, "fa", rc.TypeUpload, time.Second, "shared.mp4", 200),
		Callback(t, "fb", rc.TypeEnd, time.Minute, "only-b.mp4", 200),
		Callback(t, "fc", rc.TypeSegment, 2*time.Minute, "shared.mp4", 200),
	}, at)
	got, err := s.FileRecordings(ctx, "shared.mp4")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"fc", "fa"}, recordIDs(got)); diff != "" {
		t.Errorf("recordings holding shared.mp4, newest first (-want +got):\n%s", diff)
	}
	if len(got) == 2 {
		if f := got[1].FileView("shared.mp4"); f.FileURL == nil || *f.FileURL != "http://oss/shared.mp4" {
			t.Errorf("fa's file view: %+v", f)
		}
	}
	if none, err := s.FileRecordings(ctx, "unknown.mp4"); err != nil || len(none) != 0 {
		t.Errorf("unknown file: %v, %v", none, err)
	}
}

func testStats(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now()
	appendAll(t, s, Recording(t, "st-done", 2, false), at) // complete, 2 files uploaded
	appendAll(t, s, Recording(t, "st-stuck", 3, true), at) // ended, file 1 never uploaded
	appendAll(t, s, []rc.Callback{Callback(t, "st-live", rc.TypeStart, 0, "", 200)}, at)
	rej := ledger.Rejection{Header: http.Header{}, Body: []byte("12345")}
	if err := s.Quarantine(ctx, rej); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats(ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	want := map[ledger.Status]int64{ledger.StatusComplete: 1, ledger.StatusEnded: 1, ledger.StatusRecording: 1}
	if diff := cmp.Diff(want, st.RecordingsByStatus); diff != "" {
		t.Errorf("by status (-want +got):\n%s", diff)
	}
	if st.FilesPending != 1 || st.FilesOverdue != 0 || st.QuarantineCount != 1 || st.QuarantineBytes != ledger.PrepareRejection(rej).Size {
		t.Errorf("stats now: %+v", st)
	}
	if st.LoggedSeq == 0 || st.ProjectedSeq != st.LoggedSeq {
		t.Errorf("positions: logged %d, projected %d", st.LoggedSeq, st.ProjectedSeq)
	}
	wantUpload := map[ledger.UploadState]int64{ledger.UploadComplete: 1, ledger.UploadFailed: 1, ledger.UploadNone: 1}
	if diff := cmp.Diff(wantUpload, st.RecordingsByUpload); diff != "" {
		t.Errorf("by upload state (-want +got):\n%s", diff)
	}
	later, err := s.Stats(ctx, at.Add(ledger.OverdueAfter+time.Minute))
	if err != nil || later.FilesOverdue != 1 {
		t.Errorf("a day later: %+v, %v; want the stuck file overdue", later, err)
	}
	wantUpload = map[ledger.UploadState]int64{ledger.UploadComplete: 1, ledger.UploadOverdue: 1, ledger.UploadNone: 1}
	if diff := cmp.Diff(wantUpload, later.RecordingsByUpload); diff != "" {
		t.Errorf("a day later, by upload state (-want +got):\n%s", diff)
	}
}

// testUploadStateFilter: the uploadState filter agrees with View at the
// filter's clock, overdue included, and never mixes it with the rest.
func testUploadStateFilter(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	at := time.Now()
	appendAll(t, s, Recording(t, "up-done", 2, false), at)                               // complete
	appendAll(t, s, Recording(t, "up-stuck", 3, true), at)                               // failed, then overdue
	appendAll(t, s, []rc.Callback{Callback(t, "up-live", rc.TypeStart, 0, "", 200)}, at) // none
	appendAll(t, s, []rc.Callback{                                                       // pending, then overdue
		Callback(t, "up-wait", rc.TypeStart, 0, "", 200),
		Callback(t, "up-wait", rc.TypeEnd, time.Hour, "sess_room_u1_up-wait_1.mp4", 200),
	}, at)
	appendAll(t, s, []rc.Callback{ // partial, still recording: never overdue
		Callback(t, "up-part", rc.TypeSegment, time.Minute, "sess_room_u1_up-part_1.mp4", 200),
		Callback(t, "up-part", rc.TypeUpload, 2*time.Minute, "sess_room_u1_up-part_1.mp4", 200),
		Callback(t, "up-part", rc.TypeSegment, 3*time.Minute, "sess_room_u1_up-part_2.mp4", 200),
	}, at)
	later := at.Add(ledger.OverdueAfter + time.Minute)
	for _, tt := range []struct {
		state ledger.UploadState
		now   time.Time
		want  []string
	}{
		{ledger.UploadComplete, at, []string{"up-done"}},
		{ledger.UploadFailed, at, []string{"up-stuck"}},
		{ledger.UploadNone, at, []string{"up-live"}},
		{ledger.UploadPending, at, []string{"up-wait"}},
		{ledger.UploadPartial, at, []string{"up-part"}},
		{ledger.UploadOverdue, at, nil},
		{ledger.UploadOverdue, later, []string{"up-wait", "up-stuck"}},
		{ledger.UploadFailed, later, nil},
		{ledger.UploadPending, later, nil},
		{ledger.UploadPartial, later, []string{"up-part"}},
		{ledger.UploadComplete, later, []string{"up-done"}},
	} {
		page, err := s.ListRecordings(ctx, ledger.RecordingFilter{UploadState: tt.state, Now: tt.now})
		if err != nil {
			t.Fatalf("%s: %v", tt.state, err)
		}
		if diff := cmp.Diff(tt.want, recordIDs(page.Items)); diff != "" {
			t.Errorf("uploadState %s at +%v (-want +got):\n%s", tt.state, tt.now.Sub(at).Round(time.Hour), diff)
		}
		for _, st := range page.Items {
			if got := st.UploadState(tt.now); got != tt.state {
				t.Errorf("%s listed under %s but its view says %s", st.RecordID, tt.state, got)
			}
		}
	}
}

// testActivity: arrivals are counted in the minute of the server clock
// they arrived in, duplicates and rejections apart.
func testActivity(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	ctx := context.Background()
	m0 := ledger.MinuteOf(time.Now().Add(-10 * time.Minute).UnixMilli())
	at := func(minute, second int) time.Time {
		return time.UnixMilli(m0 + int64(minute)*60_000 + int64(second)*1000)
	}
	start := Callback(t, "act-1", rc.TypeStart, 0, "", 200)
	seg := Callback(t, "act-1", rc.TypeSegment, time.Minute, "sess_room_u1_act-1_1.mp4", 200)
	for _, in := range []ledger.Incoming{
		{Callback: start, ReceivedAt: at(0, 1)},
		{Callback: seg, ReceivedAt: at(0, 30)},
		{Callback: seg, ReceivedAt: at(0, 59)}, // a redelivery
		{Callback: Callback(t, "act-2", rc.TypeStart, 0, "", 200), ReceivedAt: at(2, 0)},
	} {
		if _, err := s.Append(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	for _, sec := range []int{5, 6} {
		if err := s.Quarantine(ctx, ledger.Rejection{At: at(2, sec).UnixMilli(), Header: http.Header{}, Reason: "bad_signature"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Activity(ctx, m0)
	if err != nil {
		t.Fatal(err)
	}
	want := []ledger.Minute{
		{Start: m0, Callbacks: 3, Duplicates: 1},
		{Start: m0 + 120_000, Callbacks: 1, Rejected: 2},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("activity (-want +got):\n%s", diff)
	}
	// since falls inside a minute: that whole minute counts.
	if got, err := s.Activity(ctx, m0+120_000+30_000); err != nil || len(got) != 1 || got[0].Start != m0+120_000 {
		t.Errorf("since within the last minute: %+v, %v", got, err)
	}
	if got, err := s.Activity(ctx, m0+180_000); err != nil || len(got) != 0 {
		t.Errorf("since after everything: %+v, %v", got, err)
	}
}

// testStatsAgreeWithRecordings: the totals a store keeps as it projects
// equal what its recordings' views add up to, at two clocks, under
// shuffled arrivals and redeliveries, after a rebuild and after a reopen.
func testStatsAgreeWithRecordings(t *testing.T, open Opener) {
	s := open()
	ctx := context.Background()
	now := time.Now()
	rnd := rand.New(rand.NewPCG(7, 11))
	var all []ledger.Incoming
	for i := range 30 {
		id := fmt.Sprintf("tot-%02d", i)
		cbs := Recording(t, id, 1+i%4, i%3 == 0)
		switch i % 5 {
		case 1: // still recording: no end
			cbs = cbs[:2]
		case 2: // a failed start
			cbs = []rc.Callback{Callback(t, id, rc.TypeStart, 0, "", 500)}
		case 3: // ended, uploads not reported
			var kept []rc.Callback
			for _, cb := range cbs {
				if cb.Type != rc.TypeUpload {
					kept = append(kept, cb)
				}
			}
			cbs = kept
		}
		at := now
		if i%2 == 0 {
			at = now.Add(-30 * time.Hour) // ended long ago: overdue where not uploaded
		}
		for j, cb := range cbs {
			all = append(all, ledger.Incoming{Callback: cb, ReceivedAt: at.Add(time.Duration(j) * time.Second)})
			if rnd.IntN(10) == 0 {
				all = append(all, ledger.Incoming{Callback: cb, ReceivedAt: at.Add(time.Duration(j)*time.Second + time.Minute)})
			}
		}
	}
	rnd.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for _, in := range all {
		if _, err := s.Append(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	check := func(stage string, s ledger.Store) {
		t.Helper()
		page, err := s.ListRecordings(ctx, ledger.RecordingFilter{Limit: ledger.MaxPage})
		if err != nil {
			t.Fatal(err)
		}
		for _, clock := range []time.Time{now, now.Add(26 * time.Hour)} {
			want := ledger.Stats{RecordingsByStatus: map[ledger.Status]int64{}, RecordingsByUpload: map[ledger.UploadState]int64{}}
			for _, st := range page.Items {
				v := st.View(clock)
				want.RecordingsByStatus[v.Status]++
				want.RecordingsByUpload[v.UploadState]++
				pending := int64(v.FileCount - v.UploadedCount)
				want.FilesPending += pending
				if st.Overdue(clock) {
					want.FilesOverdue += pending
				}
			}
			got, err := s.Stats(ctx, clock)
			if err != nil {
				t.Fatal(err)
			}
			got.QuarantineCount, got.QuarantineBytes, got.LoggedSeq, got.ProjectedSeq = 0, 0, 0, 0
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s, at +%v: stats differ from the recordings (-recordings +stats):\n%s", stage, clock.Sub(now).Round(time.Hour), diff)
			}
		}
	}
	check("live", s)
	if _, err := s.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	check("after rebuild", s)
	closeStore(t, s)
	s = open()
	defer closeStore(t, s)
	check("after reopen", s)
}
