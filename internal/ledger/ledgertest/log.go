package ledgertest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/rc"
)

// Log: the raw callback log, appended by the acknowledged commit: every callback kept byte-exact and in order, across restarts.

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

func testPing(t *testing.T, open Opener) {
	s := open()
	defer closeStore(t, s)
	if err := s.Ping(context.Background()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
