// Package verifier checks that the files RC says it uploaded are in the
// customer's storage (--verify-storage), and tells destinations what it
// found. It works in three steps, each resumable from what the store
// keeps (ledger.Verifications), so a restart loses nothing:
//
//  1. Queue: it reads the feed from its cursor; every successful upload
//     (a type 4 callback with code 200, or none; not a duplicate) names a
//     file, whose current URL (the recording's, not the callback's: a
//     later upload replaces it) is queued as a pending check, due now.
//     The checks and the cursor are stored in one transaction. At first
//     the cursor is 0, so uploads from before verification was on are
//     checked too.
//  2. Check: each check due is made (storagecheck.Checker, a few at once;
//     the checker bounds requests per host). A final answer sets the
//     state; a transient failure keeps the check pending and makes it due
//     again after storagecheck.NextWait, until the retries run out
//     (unreachable). A URL that changed since the check was queued is
//     queued again under its new hash instead.
//  3. Announce: a verified file is announced as recording.file_verified,
//     a missing or wrongly sized one as recording.file_missing, through
//     the projection engine (Announcer), which numbers it among the
//     recording's events; unreachable is announced as nothing (we do not
//     know). Where another instance projects, the announcement waits.
//
// Only the instance that projects runs the steps (Announcer.Projecting),
// so two instances never check the same files. A URL's query string
// (a presigned URL's credentials) is never logged or stored: logs and
// errors show storagecheck.Redact's form.
package verifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/recledger/recledger/internal/delivery"
	"github.com/recledger/recledger/internal/ledger"
	"github.com/recledger/recledger/internal/storagecheck"
)

// Store is what the verifier reads and keeps: the feed, the recordings
// (for each file's current URL and RC's size), and the checks.
type Store interface {
	Events(ctx context.Context, after int64, limit int) ([]ledger.Event, error)
	Recording(ctx context.Context, recordID string) (ledger.State, error)
	ledger.Verifications
}

// Announcer announces a check's outcome through the projection engine
// (engine.Engine.AnnounceFile, by way of the store).
type Announcer interface {
	// AnnounceFile announces t for the file once; it fails with
	// engine.ErrNotLeader where another instance projects, and with
	// engine.ErrNoFile when the file is no longer stored.
	AnnounceFile(ctx context.Context, recordID, fileName string, t delivery.Type, v ledger.Verification) error
	// Projecting reports whether this instance projects: only it checks.
	Projecting() bool
}

// Checker checks one URL (storagecheck.Checker).
type Checker interface {
	Check(ctx context.Context, fileURL string, wantSize *int64) storagecheck.Result
}

// Options configure a Verifier; zero fields take the defaults.
type Options struct {
	Store     Store
	Announcer Announcer
	Checker   Checker
	// Waits is the retry schedule of transient failures (nil:
	// storagecheck.DefaultWaits).
	Waits   []time.Duration
	Workers int           // checks at once (default 4)
	Poll    time.Duration // how often Run looks for work (default 1 s)
	Now     func() time.Time
	Logger  *slog.Logger
	// Checked, when set, is told each check's outcome (a final state, or
	// "retry") and how long it took, for metrics.
	Checked func(outcome string, took time.Duration)
	// IsNoFile and IsNotLeader classify Announcer errors (the engine's
	// ErrNoFile and ErrNotLeader; the verifier does not import the engine).
	IsNoFile, IsNotLeader func(error) bool
}

// feedPage is how many feed events one read takes; queueMax bounds the
// pages one pass queues, so checks are not starved by a long backlog.
const (
	feedPage = 500
	queueMax = 20
	// dueBatch is how many due checks one pass takes, per worker.
	dueBatch = 16
	// announceBatch is how many outcomes one pass announces.
	announceBatch = 200
)

// Verifier runs storage verification. Run it under serve's supervisor.
type Verifier struct {
	o    Options
	wake chan struct{}

	mu sync.Mutex
	// cursor is the feed cursor as this pass stored it: a check re-queued
	// under a new URL keeps it where it is.
	cursor  int64
	failing bool // the last pass failed: its first failure is logged, then the recovery
}

// New returns a Verifier with o, defaults filled in.
func New(o Options) *Verifier {
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.IsNoFile == nil {
		o.IsNoFile = func(error) bool { return false }
	}
	if o.IsNotLeader == nil {
		o.IsNotLeader = func(error) bool { return false }
	}
	return &Verifier{o: o, wake: make(chan struct{}, 1)}
}

// Wake makes Run look for work now (a re-check was queued).
func (v *Verifier) Wake() {
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// Run verifies until ctx ends. A failing pass (the store unavailable) is
// logged and retried at the next poll; Run returns nil when ctx ends.
func (v *Verifier) Run(ctx context.Context) error {
	poll := time.NewTicker(v.o.Poll)
	defer poll.Stop()
	for {
		more := false
		if v.o.Announcer.Projecting() {
			var err error
			more, err = v.Pass(ctx)
			if ctx.Err() != nil {
				return nil
			}
			v.report(err)
		}
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-poll.C:
		case <-v.wake:
		}
	}
}

func (v *Verifier) report(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case err != nil && !v.failing:
		v.o.Logger.Error("storage verification failed; retrying", "err", err)
		v.failing = true
	case err == nil && v.failing:
		v.o.Logger.Info("storage verification recovered")
		v.failing = false
	}
}

// Pass runs the three steps once: it queues what the feed holds, makes
// one batch of the checks due and announces what is final. more says a
// step left work for another pass at once.
func (v *Verifier) Pass(ctx context.Context) (more bool, err error) {
	queued, err := v.queue(ctx)
	if err != nil {
		return false, fmt.Errorf("queue uploads: %w", err)
	}
	checked, err := v.checkDue(ctx)
	if err != nil {
		return false, fmt.Errorf("check files: %w", err)
	}
	announced, err := v.announce(ctx)
	if err != nil {
		return false, fmt.Errorf("announce outcomes: %w", err)
	}
	return queued || checked || announced, nil
}

// queue reads the feed after the cursor and queues a check for each
// successful upload; it reports whether the feed has more.
func (v *Verifier) queue(ctx context.Context) (bool, error) {
	// Read each pass, not kept: another instance may have projected (and
	// queued) meanwhile.
	cursor, err := v.o.Store.VerificationCursor(ctx)
	if err != nil {
		return false, err
	}
	v.setCursor(cursor)
	for range queueMax {
		evs, err := v.o.Store.Events(ctx, cursor, feedPage)
		if err != nil {
			return false, fmt.Errorf("read the feed after %d: %w", cursor, err)
		}
		if len(evs) == 0 {
			v.setCursor(cursor)
			return false, nil
		}
		now := v.o.Now().UnixMilli()
		var checks []ledger.FileCheck
		states := map[string]*ledger.State{} // the page's recordings, read once
		uploads := map[[2]string]int64{}     // (recording, file): the page's latest upload's arrival
		sized := map[[2]string]int64{}       // (recording, file): RC's size, given by a segment or end in the page
		for _, ev := range evs {
			upload := uploaded(ev)
			if !upload && !sizing(ev) {
				continue
			}
			st, ok := states[ev.RecordID]
			if !ok {
				s, err := v.o.Store.Recording(ctx, ev.RecordID)
				switch {
				case errors.Is(err, ledger.ErrNotFound): // removed since
				case err != nil:
					return false, fmt.Errorf("read recording %s: %w", ev.RecordID, err)
				default:
					st = &s
				}
				states[ev.RecordID] = st
			}
			if st == nil {
				continue
			}
			f, ok := st.Files[ev.FileName]
			if !ok || f.URL == "" {
				continue
			}
			if !upload {
				if f.Size != nil {
					sized[[2]string{st.RecordID, ev.FileName}] = *f.Size
				}
				continue
			}
			checks = append(checks, ledger.FileCheck{RecordID: st.RecordID, FileName: ev.FileName, AppKey: st.AppKey,
				URLHash: ledger.URLHash(f.URL), Verification: ledger.Verification{State: ledger.VerifyPending}, NextAt: now})
			k := [2]string{st.RecordID, ev.FileName}
			uploads[k] = max(uploads[k], ev.ReceivedAt)
		}
		// Before the cursor moves past them: a crash in between reads the
		// page again, and a re-check twice is harmless.
		if err := v.recheckReuploads(ctx, uploads, sized, now); err != nil {
			return false, err
		}
		last := evs[len(evs)-1].Seq
		if err := v.o.Store.QueueVerifications(ctx, checks, last); err != nil {
			return false, fmt.Errorf("queue %d checks up to feed seq %d: %w", len(checks), last, err)
		}
		cursor = last
		v.setCursor(cursor)
		if len(evs) < feedPage {
			return false, nil
		}
	}
	return true, nil
}

// recheckReuploads makes a file's check due again when the page brings
// news the check could not have seen:
//   - RC reported another upload of it after the check found it absent,
//     of another size, or could not make it: the storage was fixed and RC
//     uploaded again, most likely to the same URL, which
//     QueueVerifications leaves as it is (a verified file stays verified;
//     a check not made yet sees the new upload anyway);
//   - RC gave the file's size (a segment or end callback arriving after
//     the upload's) and the check verified it with another size, not
//     knowing RC's.
func (v *Verifier) recheckReuploads(ctx context.Context, uploads, sized map[[2]string]int64, now int64) error {
	recs := map[string]bool{}
	for k := range uploads {
		recs[k[0]] = true
	}
	for k := range sized {
		recs[k[0]] = true
	}
	for rec := range recs {
		stored, err := v.o.Store.FileVerifications(ctx, rec)
		if err != nil {
			return fmt.Errorf("read the checks of %s: %w", rec, err)
		}
		for name, c := range stored {
			k := [2]string{rec, name}
			why := ""
			if at, ok := uploads[k]; ok && c.State.Final() && c.State != ledger.VerifyVerified && c.CheckedAt != nil && *c.CheckedAt < at {
				why = "a file found " + string(c.State) + " was uploaded again"
			}
			if size, ok := sized[k]; ok && c.State == ledger.VerifyVerified && c.Size != nil && *c.Size != size {
				why = "RC gave a verified file's size after its check, another than the storage's"
			}
			if why == "" {
				continue
			}
			if _, err := v.o.Store.Recheck(ctx, ledger.RecheckFilter{RecordID: rec, FileName: name}, now); err != nil {
				return fmt.Errorf("check %q of %s again: %w", name, rec, err)
			}
			v.o.Logger.Info(why+"; checking it again", "record_id", rec, "file", name)
		}
	}
	return nil
}

func (v *Verifier) setCursor(c int64) {
	v.mu.Lock()
	v.cursor = c
	v.mu.Unlock()
}

// sizing reports whether a feed event may have given a file's size: a
// segment or an end naming a file.
func sizing(ev ledger.Event) bool {
	return (ev.Type == 2 || ev.Type == 3) && !ev.Duplicate && !ev.Removed && ev.FileName != "" && ev.RecordID != ""
}

// uploaded reports whether a feed event is an upload that succeeded.
func uploaded(ev ledger.Event) bool {
	return ev.Type == 4 && !ev.Duplicate && !ev.Removed && (ev.Code == 200 || ev.Code == 0) && ev.FileName != "" && ev.RecordID != ""
}

// announce announces the final outcomes not announced yet; it reports
// whether more are waiting.
func (v *Verifier) announce(ctx context.Context) (bool, error) {
	cs, err := v.o.Store.Unannounced(ctx, announceBatch)
	if err != nil {
		return false, err
	}
	for _, c := range cs {
		var t delivery.Type
		switch c.State {
		case ledger.VerifyVerified:
			t = delivery.FileVerified
		case ledger.VerifyMissing, ledger.VerifySizeMismatch:
			t = delivery.FileMissing
		}
		if t != "" {
			err := v.o.Announcer.AnnounceFile(ctx, c.RecordID, c.FileName, t, c.Verification)
			switch {
			case err == nil:
			case v.o.IsNoFile(err): // removed since: nothing to announce
			case v.o.IsNotLeader(err):
				return false, nil // the projecting instance announces it
			default:
				return false, fmt.Errorf("announce %s of %s: %w", t, c.FileName, err)
			}
		}
		if err := v.o.Store.MarkAnnounced(ctx, c); err != nil {
			return false, fmt.Errorf("mark %s announced: %w", c.FileName, err)
		}
	}
	return len(cs) == announceBatch, nil
}
