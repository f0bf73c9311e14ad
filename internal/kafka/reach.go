package kafka

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// reach tracks whether any broker is reachable, from franz-go's connection
// hooks, and logs the transitions: one warning when the last reachable
// broker is lost, one info line (with the outage length) when one is back.
// franz-go retries on its own, so per-attempt failures are not logged.
//
// A broker counts as up after a successful connect or response, and stops
// counting when a connection to it closes or fails. The service is down
// only after a connection attempt fails while no broker is up: an idle
// connection being reaped, or one broker of several failing, is not an
// outage. Seed brokers (negative node ids) make the service up but are not
// remembered as up: franz-go talks to the real node ids after the first
// metadata, and a silently dead seed connection would otherwise hide an
// outage until the seed happens to be used again.
//
// The hooks run on franz-go's goroutines; all state is guarded by mu except
// up and closing, which Ready and Close read without it.
type reach struct {
	logger *slog.Logger
	now    func() time.Time

	up        atomic.Bool  // some broker is up
	closing   atomic.Bool  // the client is being closed: failures are expected
	lastHeard atomic.Int64 // unix ns of the last response from any broker; 0 = never

	mu        sync.Mutex
	upNodes   map[int32]bool
	connected bool      // was ever up
	down      bool      // an outage has been logged and has not ended
	downSince time.Time // start of the current outage: the last answer before it
	lastErr   string    // why the broker is unreachable, for the reminders and /readyz
	lastAddr  string    // the broker address of the last failed attempt
}

var (
	_ kgo.HookBrokerConnect    = (*reach)(nil)
	_ kgo.HookBrokerRead       = (*reach)(nil)
	_ kgo.HookBrokerDisconnect = (*reach)(nil)
)

func newReach(logger *slog.Logger) *reach {
	return &reach{logger: logger, now: time.Now, upNodes: make(map[int32]bool)}
}

// OnBrokerConnect sees every connection attempt, including the ApiVersions
// and SASL exchange.
func (r *reach) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		r.failed(meta, err)
		return
	}
	r.heard()
	r.ok(meta)
}

// heard notes that a broker answered.
func (r *reach) heard() { r.lastHeard.Store(r.now().UnixNano()) }

// outageStart is when the broker was last heard from, the true start of an
// outage that is noticed only later; now if it never was.
func (r *reach) outageStart() time.Time {
	if ns := r.lastHeard.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return r.now()
}

// OnBrokerRead marks a broker up when a response arrives, except for the
// responses of the connection set-up (ApiVersions, SASL): those arrive
// before authentication has succeeded, and OnBrokerConnect reports its end.
func (r *reach) OnBrokerRead(meta kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		return
	}
	r.heard()
	switch kmsg.Key(key) {
	case kmsg.ApiVersions, kmsg.SASLHandshake, kmsg.SASLAuthenticate:
		return
	}
	r.ok(meta)
}

// OnBrokerDisconnect forgets a broker until it answers again.
func (r *reach) OnBrokerDisconnect(meta kgo.BrokerMetadata, _ net.Conn) {
	r.mu.Lock()
	delete(r.upNodes, meta.NodeID)
	r.mu.Unlock()
}

func (r *reach) ok(meta kgo.BrokerMetadata) {
	r.mu.Lock()
	if meta.NodeID >= 0 {
		r.upNodes[meta.NodeID] = true
	}
	if r.up.Load() {
		r.mu.Unlock()
		return
	}
	r.up.Store(true)
	first, wasDown, since := !r.connected, r.down, r.downSince
	r.connected, r.down = true, false
	r.mu.Unlock()

	switch {
	case wasDown:
		r.logger.Info("kafka broker reachable again", "broker", addr(meta), "outage", r.now().Sub(since).Round(time.Millisecond).String())
	case first:
		r.logger.Info("kafka broker connected", "broker", addr(meta))
	}
}

func (r *reach) failed(meta kgo.BrokerMetadata, err error) {
	if r.closing.Load() || errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return
	}
	r.mu.Lock()
	delete(r.upNodes, meta.NodeID)
	if len(r.upNodes) > 0 {
		r.mu.Unlock()
		return
	}
	r.lastErr, r.lastAddr = err.Error(), addr(meta)
	if r.down {
		r.mu.Unlock()
		return
	}
	r.up.Store(false)
	r.down, r.downSince = true, r.outageStart()
	r.mu.Unlock()

	msg := "kafka broker unreachable; retrying"
	if authError(err) {
		msg = "kafka broker rejected the client's credentials; retrying"
	}
	r.logger.Warn(msg, "broker", addr(meta), "err", err)
}

// silent is called by the watchdog when no broker has answered anything,
// not even its probe, for the probe timeout: the brokers are frozen (TCP
// open, no answers) or the network drops packets, which franz-go alone
// notices only when its request timeouts expire, tens of seconds later.
func (r *reach) silent(brokers []string, quiet time.Duration) {
	if r.closing.Load() {
		return
	}
	r.mu.Lock()
	if r.down {
		r.mu.Unlock()
		return
	}
	clear(r.upNodes)
	r.up.Store(false)
	r.down, r.downSince = true, r.outageStart()
	r.lastErr = "no answer for " + quiet.Round(time.Millisecond).String()
	r.mu.Unlock()
	r.logger.Warn("kafka broker not answering; retrying", "brokers", brokers, "silent_for", quiet.Round(time.Millisecond).String())
}

// outage reports whether an outage is going on, since when and why.
func (r *reach) outage() (down bool, since time.Time, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.down, r.downSince, r.lastErr
}

// lastFailure returns the address and the error of the last failed
// attempt, "" when none has failed yet.
func (r *reach) lastFailure() (address, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastAddr, r.lastErr
}

func authError(err error) bool {
	return errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.IllegalSaslState) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism)
}

func addr(meta kgo.BrokerMetadata) string {
	return net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
}
