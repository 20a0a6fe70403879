package removal

import (
	"context"
	"log/slog"
	"time"

	"github.com/recledger/recledger/internal/ledger"
)

// Retention removes recordings whose last callback arrived longer ago
// than Recordings (server clock; whatever their status, so a recording
// that never ended goes by the same rule), and quarantine rows older than
// Quarantine. A zero limit keeps those forever.
type Retention struct {
	Store      ledger.Remover
	Recordings time.Duration
	Quarantine time.Duration
	// Every is how often a pass runs (default 1 minute); Pause is the
	// least rest between two batches of a pass (default 100 ms), so the
	// writers take callbacks between them. A batch that took longer is
	// followed by a rest as long as it took: a long first pass then holds
	// the store at most half the time, however slow the machine.
	Every, Pause time.Duration
	Now          func() time.Time // default time.Now
	Logger       *slog.Logger
	// OnBatch, when set, is told what each batch removed as it commits,
	// so metrics move during a long first pass (enabling --retain on a
	// year of data), not only at its end; OnPass is told each pass's
	// total and time when it ends.
	OnBatch func(removed ledger.Removed, quarantine int64)
	OnPass  func(p Pass)

	sleep func(ctx context.Context, d time.Duration) bool // tests stand in for the rest
}

// Pass is what one retention pass removed.
type Pass struct {
	At         time.Time
	Removed    ledger.Removed
	Quarantine int64
	Err        error
}

func (r *Retention) defaults() {
	if r.Every <= 0 {
		r.Every = time.Minute
	}
	if r.Pause <= 0 {
		r.Pause = 100 * time.Millisecond
	}
	if r.Now == nil {
		r.Now = time.Now
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	if r.sleep == nil {
		r.sleep = func(ctx context.Context, d time.Duration) bool {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-ctx.Done():
				return false
			case <-t.C:
				return true
			}
		}
	}
}

// Run runs a pass at once and then every Every, until ctx ends.
func (r *Retention) Run(ctx context.Context) error {
	r.defaults()
	if r.Recordings <= 0 && r.Quarantine <= 0 {
		return nil
	}
	tick := time.NewTicker(r.Every)
	defer tick.Stop()
	for {
		p := r.Pass(ctx)
		if p.Err != nil && ctx.Err() == nil {
			r.Logger.Error("retention pass failed; retrying at the next", "err", p.Err)
		}
		if p.Removed.Recordings > 0 || p.Quarantine > 0 {
			r.Logger.Info("retention removed old data", "recordings", p.Removed.Recordings, "log_rows", p.Removed.LogRows,
				"files", p.Removed.Files, "outbound", p.Removed.Outbound, "quarantine_rows", p.Quarantine)
		}
		if r.OnPass != nil {
			r.OnPass(p)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Pass removes what is past the limits now, Batch at a time, and
// returns what it removed.
func (r *Retention) Pass(ctx context.Context) Pass {
	r.defaults()
	now := r.Now()
	p := Pass{At: now}
	pause := func(took time.Duration) bool { return r.sleep(ctx, max(r.Pause, took)) }
	if r.Recordings > 0 {
		cutoff := now.Add(-r.Recordings)
		for {
			ids, err := r.Store.Expired(ctx, cutoff, Batch)
			if err != nil {
				p.Err = err
				return p
			}
			if len(ids) == 0 {
				break
			}
			start := r.Now()
			got, err := r.Store.Forget(ctx, ids)
			took := r.Now().Sub(start)
			p.Removed = p.Removed.Add(got)
			if r.OnBatch != nil && got != (ledger.Removed{}) {
				r.OnBatch(got, 0)
			}
			if err != nil {
				p.Err = err
				return p
			}
			if got.Recordings == 0 {
				// Every instance runs retention: another may have removed
				// these meanwhile. Stuck only if they are still listed.
				again, err := r.Store.Expired(ctx, cutoff, Batch)
				if err != nil {
					p.Err = err
					return p
				}
				if overlap(ids, again) {
					p.Err = ErrStuck
					return p
				}
				continue
			}
			if len(ids) < Batch || !pause(took) {
				break
			}
		}
	}
	if r.Quarantine > 0 {
		cutoff := now.Add(-r.Quarantine)
		for {
			n, err := r.Store.PruneQuarantine(ctx, cutoff, 10*Batch)
			p.Quarantine += n
			if r.OnBatch != nil && n > 0 {
				r.OnBatch(ledger.Removed{}, n)
			}
			if err != nil {
				p.Err = err
				return p
			}
			if n < 10*Batch || !pause(0) {
				break
			}
		}
	}
	return p
}

// overlap reports whether a and b share an id.
func overlap(a, b []string) bool {
	in := make(map[string]bool, len(a))
	for _, id := range a {
		in[id] = true
	}
	for _, id := range b {
		if in[id] {
			return true
		}
	}
	return false
}
