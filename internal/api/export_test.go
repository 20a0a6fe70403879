package api

import "time"

// SetStreamPacing shortens the event stream's pauses for a test and
// returns a function restoring them.
func SetStreamPacing(poll, heartbeat time.Duration) func() {
	p, h := streamPoll, streamHeartbeat
	streamPoll, streamHeartbeat = poll, heartbeat
	return func() { streamPoll, streamHeartbeat = p, h }
}
