package hub

import "sync/atomic"

// CloseReason is why the hub closed a client, or why the client went away.
type CloseReason string

// Close reasons. Every reason has a counter from the start, at zero.
const (
	ReasonQueueFull     CloseReason = "queue_full"     // send queue over MaxQueueBytes: closed 1008 "too slow"
	ReasonWriteTimeout  CloseReason = "write_timeout"  // a write did not finish within WriteTimeout
	ReasonWriteError    CloseReason = "write_error"    // the connection failed while writing
	ReasonPingTimeout   CloseReason = "ping_timeout"   // nothing read for two ping intervals
	ReasonClientClosed  CloseReason = "client_closed"  // the client sent a close frame or hung up
	ReasonProtocol      CloseReason = "protocol_error" // the client broke the WebSocket protocol
	ReasonMessageTooBig CloseReason = "message_too_big"
	ReasonShutdown      CloseReason = "shutdown" // the service is stopping: 1001 "going away"
	ReasonReadError     CloseReason = "read_error"
	ReasonHandshake     CloseReason = "handshake_failed" // the WebSocket handshake did not complete
	ReasonControlFlood  CloseReason = "control_flood"    // over 100 pings in a second: closed 1008 "too many pings"
	ReasonCatchUp       CloseReason = "catch_up_failed"  // Kafka could not serve a resuming client's past: 1011
	ReasonTokenExpired  CloseReason = "token_expired"    // the client's token reached its exp: 1008 "token expired"
	ReasonRevoked       CloseReason = "revoked"          // the client's API key left the keys file: 1008 "credential revoked"
)

var allReasons = [...]CloseReason{
	ReasonQueueFull, ReasonWriteTimeout, ReasonWriteError, ReasonPingTimeout,
	ReasonClientClosed, ReasonProtocol, ReasonMessageTooBig, ReasonShutdown, ReasonReadError,
	ReasonHandshake, ReasonControlFlood, ReasonCatchUp, ReasonTokenExpired, ReasonRevoked,
}

// counters are the hub's live counters; all fields are atomics.
type counters struct {
	published    atomic.Uint64 // messages handed to Publish
	enqueued     atomic.Uint64 // frames queued for some client
	written      atomic.Uint64 // frames fully written to sockets
	writes       atomic.Uint64 // writes to sockets: each batch's, and the blocking rest of one a socket took only part of
	bytes        atomic.Uint64 // bytes written
	accepted     atomic.Uint64 // clients ever added
	clients      atomic.Int64  // clients now connected
	closes       [len(allReasons)]atomic.Uint64
	reasonIdx    map[CloseReason]int
	dropFrames   atomic.Uint64 // frames discarded with a closed client's queue
	oversized    atomic.Uint64 // frames larger than MaxQueueBytes, never queued
	blocked      atomic.Uint64 // non-blocking writes the socket took only part of
	deflated     atomic.Uint64 // frames compressed for permessage-deflate (once per message and shape)
	deflateSaved atomic.Uint64 // bytes those compressions saved, per frame (not per client)
	superseded   atomic.Uint64 // messages a rated or conflating client dropped for a newer one of their key
	conflating   atomic.Int64  // clients in conflated mode now
	conflations  atomic.Uint64 // times a client entered conflated mode
}

func newCounters() *counters {
	c := &counters{reasonIdx: make(map[CloseReason]int, len(allReasons))}
	for i, r := range allReasons {
		c.reasonIdx[r] = i
	}
	return c
}

func (c *counters) closed(r CloseReason) {
	if i, ok := c.reasonIdx[r]; ok {
		c.closes[i].Add(1)
	}
}

// Stats is a snapshot of the hub's counters.
type Stats struct {
	Clients int64 `json:"clients"`
	// ByShape counts the connected clients of each shape, by Shape.String.
	ByShape       map[string]int64 `json:"by_shape"`
	Accepted      uint64           `json:"accepted"`
	Published     uint64           `json:"published"`
	Enqueued      uint64           `json:"enqueued"`
	Written       uint64           `json:"written"`
	Writes        uint64           `json:"writes"`
	Bytes         uint64           `json:"bytes"`
	DroppedFrames uint64           `json:"dropped_frames"`
	Oversized     uint64           `json:"oversized"`
	BlockedWrites uint64           `json:"blocked_writes"`
	// Deflated counts frames compressed once for permessage-deflate
	// clients; DeflateSaved the bytes saved by those compressions, each
	// counted once however many clients the frame went to.
	Deflated     uint64                 `json:"deflated"`
	DeflateSaved uint64                 `json:"deflate_saved_bytes"`
	Closes       map[CloseReason]uint64 `json:"closes"`
	// Superseded counts messages a client with max_rate or in conflated
	// mode dropped because a newer one of their key replaced them;
	// Conflating the clients in conflated mode now, Conflations the times
	// a client entered it.
	Superseded  uint64 `json:"superseded"`
	Conflating  int64  `json:"conflating"`
	Conflations uint64 `json:"conflations"`
}

func (c *counters) snapshot() Stats {
	s := Stats{
		Clients:       c.clients.Load(),
		Accepted:      c.accepted.Load(),
		Published:     c.published.Load(),
		Enqueued:      c.enqueued.Load(),
		Written:       c.written.Load(),
		Writes:        c.writes.Load(),
		Bytes:         c.bytes.Load(),
		DroppedFrames: c.dropFrames.Load(),
		Oversized:     c.oversized.Load(),
		BlockedWrites: c.blocked.Load(),
		Deflated:      c.deflated.Load(),
		DeflateSaved:  c.deflateSaved.Load(),
		Superseded:    c.superseded.Load(),
		Conflating:    c.conflating.Load(),
		Conflations:   c.conflations.Load(),
		Closes:        make(map[CloseReason]uint64, len(allReasons)),
	}
	for i, r := range allReasons {
		s.Closes[r] = c.closes[i].Load()
	}
	return s
}
