package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// How the event stream paces itself unless Options say otherwise.
const (
	defaultStreamPoll      = 250 * time.Millisecond // how often an idle stream looks for new events
	defaultStreamHeartbeat = 15 * time.Second       // a comment line so proxies keep the connection open
)

// stream serves GET /v1/events/stream: the raw log as server-sent events,
// from after the Last-Event-ID header (or the after parameter), then live.
// Each event's id is its seq, so a client that reconnects with the last id
// it saw continues without gaps or repeats.
func (a *API) stream(w http.ResponseWriter, r *http.Request) error {
	after, err := intParam(r.URL.Query().Get("after"), "after", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if after, err = intParam(id, "Last-Event-ID", 0, 0, 1<<62); err != nil {
			return err
		}
	}
	// A stream outlives the server's write timeout: each write extends it.
	ctl := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	write := func(format string, args ...any) error {
		ctl.SetWriteDeadline(time.Now().Add(a.opts.StreamHeartbeat + 10*time.Second))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return ctl.Flush()
	}
	if err := write(": recledger event stream from seq %d\n\n", after); err != nil {
		return nil
	}
	poll := time.NewTicker(a.opts.StreamPoll)
	defer poll.Stop()
	lastWrite := time.Now()
	last := int64(after)
	for {
		events, err := a.store.Events(r.Context(), last, 500)
		if err != nil {
			if r.Context().Err() == nil {
				a.opts.Logger.Warn("event stream", "err", err)
			}
			return nil // the headers are sent: end the stream, the client reconnects
		}
		for _, e := range events {
			var data bytes.Buffer
			enc := json.NewEncoder(&data)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(e); err != nil {
				return nil
			}
			if err := write("id: %d\nevent: callback\ndata: %s\n\n", e.Seq, bytes.TrimSpace(data.Bytes())); err != nil {
				return nil
			}
			last, lastWrite = e.Seq, time.Now()
		}
		if len(events) == 500 {
			continue // a backlog: no pause
		}
		select {
		case <-r.Context().Done():
			return nil
		case <-a.opts.Stopping:
			return nil // the server is shutting down: the client reconnects elsewhere or later
		case <-poll.C:
		}
		if time.Since(lastWrite) >= a.opts.StreamHeartbeat {
			if err := write(": heartbeat %s\n\n", strconv.FormatInt(time.Now().UnixMilli(), 10)); err != nil {
				return nil
			}
			lastWrite = time.Now()
		}
	}
}
