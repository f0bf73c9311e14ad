package hub

import "github.com/wsdest/wsdest/internal/wsframe"

// Transport supplies the control framing of a client's protocol: what its
// keepalive is, how a ping is answered, and how the stream ends. The
// writer, the queue and the slow-client policy are the same for every
// transport; data frames come already framed for the client's Shape.
//
// Implementations must be safe for concurrent use and cheap: the writer
// calls them on its hot path.
type Transport interface {
	// Name names the transport in logs ("websocket", "sse").
	Name() string
	// Keepalive returns the bytes sent every PingInterval (a WebSocket
	// ping, an SSE comment), or nil for none. The result is shared and
	// must not be modified.
	Keepalive() []byte
	// PeerAnswers reports whether the peer answers keepalives; a client of
	// such a transport from which nothing was read for two PingIntervals
	// is dropped (ReasonPingTimeout).
	PeerAnswers() bool
	// Pong returns the answer to a peer's ping carrying payload, or nil
	// when the transport has none.
	Pong(payload []byte) []byte
	// CloseFrame returns the bytes that end the stream with code and
	// reason, or nil when the transport just ends it.
	CloseFrame(code uint16, reason string) []byte
	// CloseHandshake reports whether, after the close frame, the
	// connection is half-closed and kept until the peer hangs up or
	// CloseGrace passes (WebSocket's closing handshake), instead of being
	// closed at once.
	CloseHandshake() bool
}

// WebSocket is the RFC 6455 transport: ping frames as keepalive, pong
// frames answering pings, a close frame and the closing handshake. It is
// the transport of clients added without one.
type WebSocket struct{}

var _ Transport = WebSocket{}

// Name returns "websocket".
func (WebSocket) Name() string { return "websocket" }

// pingFrame is the empty ping every WebSocket client is sent as keepalive.
var pingFrame = wsframe.Control(wsframe.OpPing, nil)

// Keepalive returns an empty ping frame, the same bytes for every client.
func (WebSocket) Keepalive() []byte { return pingFrame }

// PeerAnswers reports true: a WebSocket peer answers pings with pongs.
func (WebSocket) PeerAnswers() bool { return true }

// Pong returns a pong frame echoing payload.
func (WebSocket) Pong(payload []byte) []byte { return wsframe.Control(wsframe.OpPong, payload) }

// CloseFrame returns a close frame with code and reason.
func (WebSocket) CloseFrame(code uint16, reason string) []byte { return wsframe.Close(code, reason) }

// CloseHandshake reports true: the peer answers the close frame.
func (WebSocket) CloseHandshake() bool { return true }
