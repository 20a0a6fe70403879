package storesql

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestHealthCheck walks readiness through a failing and recovering store:
// a failed commit fails it at once without a probe; once the store is idle
// a probe decides; a commit that ends while a probe runs has the last word.
func TestHealthCheck(t *testing.T) {
	ctx := context.Background()
	full := errors.New("database or disk is full")
	var h Health
	probes := 0
	probe := func(err error) func(context.Context) error {
		return func(context.Context) error { probes++; return err }
	}

	if err := h.Check(ctx, probe(full)); err != nil || probes != 0 {
		t.Fatalf("fresh: %v after %d probes; want ready without a probe", err, probes)
	}
	refused := errors.New("value refused")
	commit := Track(&h, func(_ context.Context, items []int) ([]int, error) {
		switch {
		case items[0] == 0:
			return nil, refused
		case items[0] < 0:
			return nil, full
		}
		return items, nil
	}, func(err error) bool { return errors.Is(err, refused) })
	commit(ctx, []int{1})
	if err := h.Check(ctx, probe(full)); err != nil || probes != 0 {
		t.Fatalf("after a commit: %v after %d probes; want ready without a probe", err, probes)
	}
	commit(ctx, []int{-1})
	if err := h.Check(ctx, probe(nil)); err == nil || !strings.Contains(err.Error(), "the last write failed: database or disk is full") || probes != 0 {
		t.Fatalf("right after a failed commit: %v after %d probes; want the failure, no probe", err, probes)
	}

	h.wroteAt = time.Now().Add(-ProbeAfter) // idle since the failure
	if err := h.Check(ctx, probe(full)); err == nil || probes != 1 {
		t.Fatalf("idle, probe fails: %v after %d probes; want the failure after 1 probe", err, probes)
	}
	if err := h.Check(ctx, probe(nil)); err == nil || probes != 1 {
		t.Fatalf("right after a failed probe: %v after %d probes; want the failure, no new probe", err, probes)
	}
	h.wroteAt = time.Now().Add(-ProbeAfter)
	if err := h.Check(ctx, probe(nil)); err != nil || probes != 2 {
		t.Fatalf("idle, probe succeeds: %v after %d probes; want ready after 2 probes", err, probes)
	}

	// A commit that fails while the probe runs is newer than the probe.
	commit(ctx, []int{-1})
	h.wroteAt = time.Now().Add(-ProbeAfter)
	racing := func(context.Context) error { commit(ctx, []int{-1}); return nil }
	if err := h.Check(ctx, racing); err == nil {
		t.Fatal("a probe that succeeded beside a failing commit made the store ready")
	}

	commit(ctx, []int{1})
	h.Projected(errors.New("project: disk I/O error"))
	if err := h.Check(ctx, probe(nil)); err == nil || !strings.Contains(err.Error(), "the last projection failed: project: disk I/O error") {
		t.Fatalf("projection failed: %v; want its failure", err)
	}
	h.Projected(nil)
	if err := h.Check(ctx, probe(nil)); err != nil {
		t.Fatalf("projection recovered: %v", err)
	}

	// A commit refused because of one of its items (the group commit then
	// isolates the item) says nothing against the store.
	commit(ctx, []int{-1})
	commit(ctx, []int{0})
	if err := h.Check(ctx, probe(full)); err != nil || probes != 2 {
		t.Fatalf("after an item's refusal: %v after %d probes; want ready without a probe", err, probes)
	}
}
