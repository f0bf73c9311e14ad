package hub

import (
	"context"
	"time"

	"github.com/wsdest/wsdest/internal/sseframe"
)

// SSE is the Server-Sent Events transport: a comment line as keepalive,
// nothing to answer (the peer sends nothing), and no close frame: the
// stream simply ends, the connection closed after the last bytes.
type SSE struct{}

var _ Transport = SSE{}

// Name returns "sse".
func (SSE) Name() string { return "sse" }

// Keepalive returns the heartbeat comment ":\n\n".
func (SSE) Keepalive() []byte { return sseframe.Heartbeat }

// PeerAnswers reports false: an EventSource never writes, so silence is
// no sign of a dead peer (a dead connection fails the heartbeat's write).
func (SSE) PeerAnswers() bool { return false }

// Pong returns nil: SSE has no pings.
func (SSE) Pong([]byte) []byte { return nil }

// CloseFrame returns nil: an SSE stream ends without one.
func (SSE) CloseFrame(uint16, string) []byte { return nil }

// CloseHandshake reports false: the connection is closed at once.
func (SSE) CloseHandshake() bool { return false }

// Heartbeat sends the keepalive of tr's clients every interval until ctx is
// done, for a transport whose keepalive is due more often than the hub's
// PingInterval (SSE heartbeats, 15 s by default). It returns nil.
func (h *Hub) Heartbeat(ctx context.Context, every time.Duration, tr Transport) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			for _, c := range h.clients() {
				if c.tr == tr {
					c.sendKeepalive()
				}
			}
		}
	}
}
