package ingest

import (
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// refusalLog lets one "callback refused" line through per second, so that
// a flood of refused requests (each of them kept in the quarantine) cannot
// flood the log too; the lines it holds back are counted by reason and
// claimed app key and logged as one line when the next refusal is let
// through, or at the end of the second when none comes. A wrong secret
// then shows in the log however many requests carried it.
type refusalLog struct {
	logger *slog.Logger

	mu       sync.Mutex
	next     time.Time // no line before then
	held     int
	byReason map[string]int
	byAppKey map[string]int
	timer    *time.Timer // the pending flush, while lines are held
}

// maxHeldAppKeys bounds the app keys counted by name between two flushes:
// each request chooses its own, and a flood of distinct ones must not grow
// the memory or the summary line. The rest are counted together.
const maxHeldAppKeys = 16

// otherAppKeys and noAppKey name the summary's buckets for app keys not
// counted by name and for requests that claimed none.
const (
	otherAppKeys = "(others)"
	noAppKey     = "(none)"
)

// allow reports whether to log a refusal for reason and appKey (cleaned by
// the caller) now; when not, it is counted for the summary.
func (l *refusalLog) allow(now time.Time, reason, appKey string) bool {
	l.mu.Lock()
	if !now.Before(l.next) {
		l.next = now.Add(time.Second)
		held := l.take()
		l.mu.Unlock()
		l.logHeld(held) // before the line let through: it is older news
		return true
	}
	defer l.mu.Unlock()
	if l.held == 0 {
		l.byReason, l.byAppKey = map[string]int{}, map[string]int{}
		l.timer = time.AfterFunc(l.next.Sub(now), l.flush)
	}
	l.held++
	l.byReason[reason]++
	switch {
	case appKey == "":
		appKey = noAppKey
	case l.byAppKey[appKey] == 0 && len(l.byAppKey) >= maxHeldAppKeys:
		appKey = otherAppKeys
	}
	l.byAppKey[appKey]++
	return false
}

// heldBack is what a summary line reports.
type heldBack struct {
	n                  int
	byReason, byAppKey map[string]int
}

// take returns the lines held so far and forgets them; l.mu is held.
func (l *refusalLog) take() heldBack {
	h := heldBack{l.held, l.byReason, l.byAppKey}
	l.held, l.byReason, l.byAppKey = 0, nil, nil
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	return h
}

// flush logs the lines held back when no refusal came to carry them.
func (l *refusalLog) flush() {
	l.mu.Lock()
	held := l.take()
	l.mu.Unlock()
	l.logHeld(held)
}

func (l *refusalLog) logHeld(h heldBack) {
	if h.n == 0 {
		return
	}
	l.logger.Warn(fmt.Sprintf("%d refused-request lines held back", h.n), "held", h.n,
		"by_reason", counts(h.byReason), "by_appKey", counts(h.byAppKey))
}

// counts writes m as "a=3 b=1", most first, ties by name; a name with a
// space, '=' or '"' in it is quoted, so the line reads one way.
func counts(m map[string]int) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if m[names[i]] != m[names[j]] {
			return m[names[i]] > m[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, k := range names {
		name := k
		if strings.ContainsAny(k, ` ="`) {
			name = strconv.Quote(k)
		}
		parts[i] = fmt.Sprintf("%s=%d", name, m[k])
	}
	return strings.Join(parts, " ")
}
