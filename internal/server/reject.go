package server

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsdest/wsdest/internal/ratelog"
)

// RejectReason is why a request was refused before it became a client.
type RejectReason string

// Rejection reasons. Every reason has a counter from the start, at zero.
const (
	RejectUnauthorized        RejectReason = "auth"                   // missing or invalid credentials: closed 1008
	RejectOrigin              RejectReason = "origin"                 // browser Origin not in ALLOWED_ORIGINS: 403
	RejectMaxConnections      RejectReason = "max_connections"        // MAX_CONNECTIONS reached: 503
	RejectMaxConnectionsPerIP RejectReason = "max_connections_per_ip" // MAX_CONNECTIONS_PER_IP reached: 429
	RejectBadRequest          RejectReason = "bad_request"            // unreadable subscription or over its limits: 400
	RejectHandshake           RejectReason = "handshake"              // the WebSocket handshake failed
	RejectOutOfScope          RejectReason = "out_of_scope"           // an exact key outside the credential's grant: 403
)

// RejectReasons lists every reason, in a stable order.
var RejectReasons = [...]RejectReason{
	RejectUnauthorized, RejectOrigin, RejectMaxConnections, RejectMaxConnectionsPerIP,
	RejectBadRequest, RejectHandshake, RejectOutOfScope,
}

// Rate limits of the rejection log. Each rejection is logged at debug, at
// most rejectDebugBurst lines per reason per second; a burst beyond it is
// summed up in the next line. A flood is reported as one warning per reason
// at most every rejectWarnEvery, when more than rejectFlood rejections
// happened in that time (for the connection limits, which an operator must
// hear about, the first rejection already warns).
const (
	rejectDebugBurst = 10
	rejectWarnEvery  = time.Minute
	rejectFlood      = 100
)

// rejections counts and logs refused requests. Safe for concurrent use.
type rejections struct {
	log      *slog.Logger
	now      func() time.Time
	count    [len(RejectReasons)]atomic.Uint64
	debug    *ratelog.Limiter // debug lines, by reason
	connects *ratelog.Limiter // "client connected" lines

	mu    sync.Mutex
	state [len(RejectReasons)]floodWindow // guarded by mu
}

// floodWindow counts one reason's rejections in a window of
// rejectWarnEvery, for the flood warning.
type floodWindow struct {
	start    time.Time // start of the current warning window
	inWindow int       // rejections in it
	warned   bool      // the window's warning is out
}

func newRejections(log *slog.Logger) *rejections {
	return &rejections{log: log, now: time.Now,
		debug:    ratelog.New(time.Second, rejectDebugBurst),
		connects: ratelog.New(time.Second, rejectDebugBurst)}
}

func reasonIndex(r RejectReason) int {
	for i, x := range RejectReasons {
		if x == r {
			return i
		}
	}
	return len(RejectReasons) - 1
}

// counts returns the counters, every reason present.
func (j *rejections) counts() map[RejectReason]uint64 {
	m := make(map[RejectReason]uint64, len(RejectReasons))
	for i, r := range RejectReasons {
		m[r] = j.count[i].Load()
	}
	return m
}

// reject counts one refused request and logs it within the limits above.
// remote is the client's address; attrs never carry what it sent.
func (j *rejections) reject(ctx context.Context, why RejectReason, remote string, msg string, attrs ...any) {
	i := reasonIndex(why)
	j.count[i].Add(1)
	now := j.now()
	debug := j.log.Enabled(ctx, slog.LevelDebug)

	logDebug, suppressed := false, 0
	if debug {
		suppressed, logDebug = j.debug.AllowAt(string(why), now)
	}
	threshold := rejectFlood
	if why == RejectMaxConnections || why == RejectMaxConnectionsPerIP {
		threshold = 1
	}
	j.mu.Lock()
	st := &j.state[i]
	if now.Sub(st.start) >= rejectWarnEvery {
		st.start, st.inWindow, st.warned = now, 0, false
	}
	st.inWindow++
	warn, n := false, 0
	if !st.warned && st.inWindow >= threshold {
		warn, n, st.warned = true, st.inWindow, true
	}
	j.mu.Unlock()

	if logDebug {
		j.log.Debug(msg, append([]any{"reason", string(why), "remote", remote, "suppressed", suppressed}, attrs...)...)
	}
	if warn {
		j.log.Warn("clients rejected", "reason", string(why), "count", n, "within", rejectWarnEvery.String(), "remote", remote,
			"note", "at most one such line per minute and reason; each rejection is logged at debug")
	}
}

// connected logs a client's arrival at debug, within the same per-second
// limit as each rejection reason.
func (j *rejections) connected(ctx context.Context, attrs ...any) {
	if !j.log.Enabled(ctx, slog.LevelDebug) {
		return
	}
	if suppressed, ok := j.connects.AllowAt("", j.now()); ok {
		j.log.Debug("client connected", append(attrs, "suppressed", suppressed)...)
	}
}
