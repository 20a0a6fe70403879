package pgstore

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/recledger/recledger/internal/engine"
)

// channel is the one NOTIFY channel the instances of every schema of a
// database share; a payload names its schema first. Notifications only
// speed things up: an instance that misses one still learns the watermark
// by polling (engine.Options.Poll, and every second).
const channel = "recledger"

// The payloads, tab-separated, the schema second:
//
//	projected <schema> <seq> <tx> <log id>  the projector saved a step (sent in its transaction)
//	nudge     <schema>                      a reader of a follower waits: project now
//	appended  <schema> <tx> <log id>        a follower committed callbacks: the projector has work
const (
	kindProjected = "projected"
	kindNudge     = "nudge"
	kindAppended  = "appended"
)

func projectedPayload(schema string, p engine.Position) string {
	return kindProjected + "\t" + schema + "\t" + strconv.FormatInt(p.Seq, 10) + "\t" +
		strconv.FormatUint(p.Log.Tx, 10) + "\t" + strconv.FormatInt(p.Log.ID, 10)
}

// signals tells the other instances what this one did, and this
// instance's engine what the others did.
type signals struct {
	pool   *pgxpool.Pool
	cfg    *pgx.ConnConfig // for the listening connection
	schema string
	eng    *engine.Engine
	log    *slog.Logger

	poke   chan struct{} // something to send
	mu     sync.Mutex
	nudge  bool
	newest engine.LogPos // newest row appended and not told yet; zero when none

	// deaf (tests): watermarks told by the others are not taken, so
	// nothing but the store itself drops the engine's cache.
	deaf atomic.Bool
}

func newSignals(pool *pgxpool.Pool, cfg *pgx.ConnConfig, schema string, log *slog.Logger) *signals {
	return &signals{pool: pool, cfg: cfg, schema: schema, log: log, poke: make(chan struct{}, 1)}
}

// Nudge is engine.Options.Nudge. The engine calls it on every poll while a
// reader waits; it never blocks, and nudges coalesce while one is sent.
func (g *signals) Nudge() {
	g.mu.Lock()
	g.nudge = true
	g.mu.Unlock()
	g.wake()
}

// appended tells the projecting instance, when it is another, that this
// one committed rows: it projects them within its gathering delay instead
// of at its next once-a-second look. Sent after the commit, outside it: a
// NOTIFY in the append's transaction would serialise every instance's
// commits on PostgreSQL's notification queue lock.
func (g *signals) appended(rows []engine.Row) {
	if !g.eng.Following() {
		return
	}
	g.mu.Lock()
	for _, r := range rows {
		if g.newest.Less(r.Log) {
			g.newest = r.Log
		}
	}
	g.mu.Unlock()
	g.wake()
}

func (g *signals) wake() {
	select {
	case g.poke <- struct{}{}:
	default:
	}
}

// send sends what was asked until ctx ends.
func (g *signals) send(ctx context.Context) {
	for {
		select {
		case <-g.poke:
		case <-ctx.Done():
			return
		}
		g.mu.Lock()
		nudge, appended := g.nudge, g.newest
		g.nudge, g.newest = false, engine.LogPos{}
		g.mu.Unlock()
		var payloads []string
		if nudge {
			payloads = append(payloads, kindNudge+"\t"+g.schema)
		}
		if appended != (engine.LogPos{}) {
			payloads = append(payloads, kindAppended+"\t"+g.schema+"\t"+strconv.FormatUint(appended.Tx, 10)+"\t"+strconv.FormatInt(appended.ID, 10))
		}
		for _, p := range payloads {
			sctx, cancel := context.WithTimeout(ctx, time.Second)
			if _, err := g.pool.Exec(sctx, `SELECT pg_notify($1, $2)`, channel, p); err != nil && ctx.Err() == nil {
				g.log.Debug("notify the other instances", "err", err)
			}
			cancel()
		}
	}
}

// listen follows the channel until ctx ends, reconnecting after a failure.
func (g *signals) listen(ctx context.Context) {
	for ctx.Err() == nil {
		err := g.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		g.log.Debug("listen for the other instances; retrying in a second", "err", err)
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
		}
	}
}

func (g *signals) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, g.cfg)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `LISTEN `+channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// The watermark may have moved while this instance was not listening.
	var p engine.Position
	var tx string
	if err := conn.QueryRow(ctx, `SELECT seq, tx::text, log_id FROM projection WHERE id = 1`).Scan(&p.Seq, &tx, &p.Log.ID); err == nil {
		if p.Log, err = logPos(tx, p.Log.ID); err == nil && !g.deaf.Load() {
			g.eng.Advance(p)
		}
	}
	for {
		// A connection a network dropped silently never errs: after a
		// quiet while, make sure it still answers.
		wctx, cancel := context.WithTimeout(ctx, listenQuiet)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			g.handle(n.Payload)
			continue
		}
		if ctx.Err() != nil || conn.IsClosed() {
			return err
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
}

// listenQuiet is how long the listener waits for a notification before
// it checks its connection.
const listenQuiet = 10 * time.Second

// handle acts on one notification.
func (g *signals) handle(payload string) {
	f := strings.Split(payload, "\t")
	if len(f) < 2 || f[1] != g.schema {
		return
	}
	switch {
	case f[0] == kindProjected && len(f) == 5:
		seq, err1 := strconv.ParseInt(f[2], 10, 64)
		pos, err2 := parsePos(f[3], f[4])
		if err1 == nil && err2 == nil && !g.deaf.Load() {
			g.eng.Advance(engine.Position{Seq: seq, Log: pos})
		}
	case f[0] == kindNudge:
		if !g.eng.Following() {
			g.eng.Urge()
		}
	case f[0] == kindAppended && len(f) == 4:
		// Noted as if committed here: the engine wakes and gathers as for
		// its own appends, and reads here then wait for the row too.
		if pos, err := parsePos(f[2], f[3]); err == nil && !g.eng.Following() {
			g.eng.Committed([]engine.Row{{Log: pos}}, nil)
		}
	}
}

func parsePos(tx, id string) (engine.LogPos, error) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return engine.LogPos{}, err
	}
	return logPos(tx, n)
}
