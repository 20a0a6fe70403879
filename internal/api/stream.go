package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/recledger/recledger/internal/ledger"
)

// How the event stream paces and bounds itself unless Options say otherwise.
const (
	defaultStreamPoll      = 250 * time.Millisecond // how often an idle stream looks for new events
	defaultStreamHeartbeat = 15 * time.Second       // a comment line so proxies keep the connection open
	defaultMaxStreams      = 100
	// A write that cannot complete in this time means the reader does not
	// keep up: it is dropped and resumes later with Last-Event-ID.
	defaultStreamWriteTimeout = 10 * time.Second
	// The socket send buffer of a stream's connection. Left to the kernel,
	// it grows to megabytes for a reader that does not read (500 such
	// streams held 644 MB in the server's send queues); Linux doubles it.
	defaultStreamSocketBuffer = 64 << 10
	// streamPageBytes bounds what a stream has read from the store and not
	// yet written: one page, encoded (its buffer is allocated at 1.5 times
	// that, so the encoded page, a little larger than its estimate, fits).
	streamPageBytes = 32 << 10
	// streamRetryAfter is the Retry-After of a stream refused at the cap.
	streamRetryAfter = "10"
	// streamRetry is the reconnection delay (ms) a stream asks of its
	// client: browsers default to about 3 s; a restart takes longer.
	streamRetry = "5000"
)

// streamReaders is how many streams read the store at once unless Options
// say otherwise: a quarter of the cores, at least one. The others wait
// their turn, so streams replaying a backlog leave the callbacks most of
// the machine (measured: BENCHMARKS.md, "Event streams").
func streamReaders() int { return max(1, runtime.GOMAXPROCS(0)/4) }

// errTooManyStreams refuses a stream beyond Options.MaxStreams.
var errTooManyStreams = errors.New("too many event streams are open; retry later")

// connKey is the context key under which ConnContext keeps the connection.
type connKey struct{}

// ConnContext is an http.Server's ConnContext: it lets the event stream
// bound its connection's socket buffer. Without it the kernel sizes it.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// OpenStreams is how many event streams are being served now.
func (a *API) OpenStreams() int { return int(a.streams.open.Load()) }

// StreamsRefused counts streams answered 503 at the cap.
func (a *API) StreamsRefused() int64 { return a.streams.refused.Load() }

// StreamsDropped counts streams ended because a write did not complete
// within the write timeout.
func (a *API) StreamsDropped() int64 { return a.streams.dropped.Load() }

// streamState is the API's bookkeeping of its streams.
type streamState struct {
	open, refused, dropped atomic.Int64
	readers                chan struct{} // a slot per stream allowed to read the store at once
}

// stream serves GET /v1/events/stream: the raw log as server-sent events,
// then live. It starts after the Last-Event-ID header, else after the
// after parameter, else at the from parameter (from=0 replays the whole
// log), else at the end of the log: a new reader wants what happens next,
// not a replay of everything it would have to skip. Each event's id is its
// seq, so a client that reconnects with the last id it saw continues
// without gaps or repeats.
func (a *API) stream(w http.ResponseWriter, r *http.Request) error {
	after, err := a.streamStart(r)
	if err != nil {
		return err
	}
	if a.streams.open.Add(1) > int64(a.opts.MaxStreams) {
		a.streams.open.Add(-1)
		a.streams.refused.Add(1)
		w.Header().Set("Retry-After", streamRetryAfter)
		return errTooManyStreams
	}
	defer a.streams.open.Add(-1)
	if c, ok := r.Context().Value(connKey{}).(*net.TCPConn); ok {
		c.SetWriteBuffer(a.opts.StreamSocketBuffer) // best effort: the write timeout still bounds a slow reader
	}

	ctl := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	// write sends b and flushes it. A stream outlives the server's write
	// timeout, so each write sets its own deadline; one that passes means
	// the reader does not keep up, and the stream ends.
	write := func(b []byte) bool {
		ctl.SetWriteDeadline(time.Now().Add(a.opts.StreamWriteTimeout))
		_, err := w.Write(b)
		if err == nil {
			err = ctl.Flush()
		}
		// (net/http cancels the request's context when a write fails, so
		// the error itself says whether the deadline passed.)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			a.streams.dropped.Add(1)
		}
		return err == nil
	}
	// The opening block carries the start as its id: EventSource keeps an
	// id even from a block without data, so a client dropped before its
	// first event reconnects from here instead of from the (later) end.
	start := strconv.FormatInt(after, 10)
	if !write([]byte(": recledger event stream after seq " + start + "\nid: " + start + "\nretry: " + streamRetry + "\n\n")) {
		return nil
	}
	poll := time.NewTicker(a.opts.StreamPoll)
	defer poll.Stop()
	lastWrite := time.Now()
	last := after
	for {
		page, next, more, err := a.streamPage(r.Context(), last)
		if err != nil {
			if r.Context().Err() == nil && !errors.Is(err, errStopping) {
				a.opts.Logger.Warn("event stream", "err", err)
			}
			return nil // the headers are sent: end the stream, the client reconnects
		}
		if page != nil {
			ok := write(page.Bytes())
			putPage(page)
			if !ok {
				return nil
			}
			last, lastWrite = next, time.Now()
		}
		if more {
			continue // a backlog: the next page as soon as a reader slot is free
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-a.opts.Stopping:
			return nil // the server is shutting down: the client reconnects elsewhere or later
		case <-poll.C:
		}
		// A stream outlives the check that let it in: a token changed by a
		// reload, or a logout, ends it too.
		if a.access.Recheck(r) != nil {
			return nil
		}
		if time.Since(lastWrite) >= a.opts.StreamHeartbeat {
			if !write([]byte(": heartbeat " + strconv.FormatInt(time.Now().UnixMilli(), 10) + "\n\n")) {
				return nil
			}
			lastWrite = time.Now()
		}
	}
}

// streamStart returns the seq a stream starts after (see stream). A
// position past the newest event is refused: ids from another log (a
// store rebuilt or replaced, another server) would otherwise wait, without
// a word, for events that already exist under smaller seqs.
func (a *API) streamStart(r *http.Request) (int64, error) {
	q := r.URL.Query()
	if q.Has("after") && q.Has("from") {
		return 0, &badParam{"from", "give after or from, not both"}
	}
	name, after := "", 0
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		n, err := intParam(id, "Last-Event-ID", 0, 0, 1<<62)
		if err != nil {
			return 0, err
		}
		name, after = "Last-Event-ID", n
	} else if q.Has("after") {
		n, err := intParam(q.Get("after"), "after", 0, 0, 1<<62)
		if err != nil {
			return 0, err
		}
		name, after = "after", n
	} else if q.Has("from") {
		n, err := intParam(q.Get("from"), "from", 0, 0, 1<<62)
		if err != nil {
			return 0, err
		}
		name, after = "from", max(n-1, 0)
	}
	ctx, cancel := context.WithTimeout(r.Context(), queryTimeout)
	defer cancel()
	latest, err := a.store.LatestEvents(ctx, 1)
	if err != nil {
		return 0, err
	}
	var newest int64
	if len(latest) > 0 {
		newest = latest[0].Seq
	}
	if name == "" {
		return newest, nil
	}
	if int64(after) > newest {
		pos := strconv.Itoa(after)
		if name == "from" {
			pos = strconv.Itoa(after + 1)
		}
		return 0, &badParam{name, pos + " is past the newest event (seq " + strconv.FormatInt(newest, 10) +
			"): it is not from this server's log; reconnect without it to follow from the end, or with ?from=0 to replay the log"}
	}
	return int64(after), nil
}

// errStopping ends a stream waiting for a reader slot at shutdown.
var errStopping = errors.New("shutting down")

// pages holds encoded pages between streams: a stream holds one only
// while it writes it, not while it waits for events or a reader slot.
var pages = sync.Pool{New: func() any { return bytes.NewBuffer(make([]byte, 0, streamPageBytes*3/2)) }}

func putPage(b *bytes.Buffer) {
	if b.Cap() <= 2*streamPageBytes { // one huge event: do not keep its buffer
		b.Reset()
		pages.Put(b)
	}
}

// streamPage reads the events after seq `after` and encodes them as
// server-sent events, at most streamPageBytes of them (at least one),
// holding one of the reader slots while it reads and encodes. It returns
// the page (nil without events; putPage it once written), the seq of its
// last event and whether more events follow.
func (a *API) streamPage(ctx context.Context, after int64) (page *bytes.Buffer, last int64, more bool, err error) {
	select {
	case a.streams.readers <- struct{}{}:
	case <-ctx.Done():
		return nil, after, false, ctx.Err()
	case <-a.opts.Stopping:
		return nil, after, false, errStopping
	}
	defer func() { <-a.streams.readers }()
	events, more, err := a.eventPage(ctx, after, 500, streamPageBytes)
	if err != nil || len(events) == 0 {
		return nil, after, false, err
	}
	page = pages.Get().(*bytes.Buffer)
	enc := json.NewEncoder(page)
	enc.SetEscapeHTML(false) // bodies as received
	for _, e := range events {
		page.WriteString("id: ")
		page.WriteString(strconv.FormatInt(e.Seq, 10))
		page.WriteString("\nevent: callback\ndata: ")
		if err := enc.Encode(e); err != nil { // one line: JSON has no raw newlines
			putPage(page)
			return nil, after, false, err
		}
		page.WriteString("\n") // Encode ended the data line; this ends the event
		last = e.Seq
	}
	return page, last, more, nil
}

// eventPage reads the events after seq `after`: at most limit of them, and
// no more than budget bytes (eventSize) but always at least one. more says
// whether the log holds events past the page. It reads in sub-pages sized
// by the largest event seen (at most maxChunk events), so what it holds
// beyond the budget is a few events' worth when events are alike, and at
// worst maxChunk of the largest callback body accepted.
func (a *API) eventPage(ctx context.Context, after int64, limit, budget int) (events []ledger.Event, more bool, err error) {
	const maxChunk = 32
	used, largest := 0, 1024
	for len(events) < limit {
		room := budget - used
		if len(events) == 0 {
			room = max(room, largest)
		}
		chunk := min(max(room/largest, 1), maxChunk, limit-len(events)+1) // +1: to see whether more follow
		got, err := a.store.Events(ctx, after, chunk)
		if err != nil {
			return nil, false, err
		}
		for _, e := range got {
			size := eventSize(e)
			largest = max(largest, size)
			if len(events) == limit || (len(events) > 0 && used+size > budget) {
				return events, true, nil
			}
			events, used, after = append(events, e), used+size, e.Seq
		}
		if len(got) < chunk {
			return events, false, nil // the end of the log
		}
	}
	return events, true, nil
}

// tailPage returns the newest events of the log, at most n and within
// budget bytes (the newest one always), in arrival order. It reads back
// from the end in chunks sized like eventPage's, so a request holds about
// budget bytes however large the events are, where LatestEvents(n) would
// hold n of them whole.
func (a *API) tailPage(ctx context.Context, n, budget int) ([]ledger.Event, error) {
	const maxChunk = 32
	latest, err := a.store.LatestEvents(ctx, 1)
	if err != nil || len(latest) == 0 {
		return latest, err
	}
	newestFirst := []ledger.Event{latest[0]}
	used, largest := eventSize(latest[0]), max(eventSize(latest[0]), 1024)
	hi := latest[0].Seq - 1 // what is still to read: seqs up to hi
	for len(newestFirst) < n && hi > 0 && used < budget {
		chunk := int64(min(max((budget-used)/largest, 1), maxChunk, n-len(newestFirst)))
		lo := max(hi-chunk, 0) // this chunk: seqs in (lo, hi]
		got, err := a.store.Events(ctx, lo, int(hi-lo))
		if err != nil {
			return nil, err
		}
		for i := len(got) - 1; i >= 0; i-- {
			e := got[i]
			if e.Seq > hi { // seqs are gapless; should a store leave a gap, no event twice
				continue
			}
			size := eventSize(e)
			largest = max(largest, size)
			if used+size > budget || len(newestFirst) == n {
				hi = 0
				break
			}
			newestFirst, used = append(newestFirst, e), used+size
		}
		hi = min(hi, lo)
	}
	slices.Reverse(newestFirst)
	return newestFirst, nil
}

// eventSize is about what an event weighs in memory and encoded: its body
// and strings, and the rest of its fields.
func eventSize(e ledger.Event) int {
	return len(e.Body) + len(e.AppKey) + len(e.RecordID) + len(e.FileName) + len(e.ErrorMessage) + 200
}
