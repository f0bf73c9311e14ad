package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wsdest/wsdest/internal/wsframe"
)

// maxCarry is the largest partial-frame buffer a reading client keeps once
// it is empty again: a client that once received a large frame gives that
// memory back, since thousands of idle clients should not cost much.
const maxCarry = 4 << 10

// maxOrderKeys bounds the per-client memory of the order check: with more
// keys than this duplicates and reordering are not tracked.
const maxOrderKeys = 1 << 16

// clientStats are one reading client's counters. The goroutine reading the
// client owns them (see client); only received is read concurrently (by the
// progress reporter).
type clientStats struct {
	received   atomic.Int64 // deliveries carrying ts and seq
	duplicates int64
	outOfOrder int64
	unparsed   int64 // data messages without ts and seq
	misrouted  int64 // deliveries for a key the client did not ask for
	hist       Histogram
	lastSeq    []uint32 // per key slot: last seq seen + 1, 0 for none
}

// client is one WebSocket connection. A reading client is a
// netpoll.Handler: one of its group's pollers reads the socket (one epoll
// loop for many clients, no goroutine each, so that the load tool's own
// CPU per delivery stays low beside the server's) and hands it the bytes.
// OnData and OnEOF run on that poller's goroutine, one call at a time; it
// owns the fields below stats until the poller is closed.
type client struct {
	conn    net.Conn
	stalled bool
	key     int // key filter in the URL, or -1
	keys    int // number of keys the producer cycles through
	pending []byte
	maskKey uint32 // xorshift state for masking our control frames

	stats *clientStats // nil for stalled clients

	inflaters *sync.Pool // the group's *wsframe.Inflater, for permessage-deflate

	// Owned by the reading goroutine.
	carry      []byte // the start of a frame not complete yet
	inFragment bool   // inside a fragmented message (its first frame was counted)
	zbuf       []byte // an inflated message
	done       bool   // the read side ended; later bytes are ignored

	// Set by the reading goroutine when the read side ends.
	closedByServer bool // close frame, EOF or reset from the server
	err            error
	ended          atomic.Bool // set last, when the read side is done
}

// endReason classifies how a read loop ended.
type endReason uint8

const (
	endServerClose endReason = iota // close frame, EOF or connection reset
	endError                        // protocol error, timeout, or our own Close
)

// OnData parses the frames in b (after what was carried over from earlier
// reads), answering pings and recording every data message with the time
// of this read. It allocates only to carry a partial frame over.
func (c *client) OnData(b []byte) {
	if c.done {
		return
	}
	now := time.Now().UnixNano()
	if len(c.carry) > 0 {
		c.carry = append(c.carry, b...)
		b = c.carry
	}
	r := 0
	for r < len(b) {
		f, size, err := ParseFrame(b[r:])
		if err != nil {
			c.end(endError, err)
			return
		}
		if size > len(b)-r {
			break
		}
		r += size
		if !c.frame(f, now) {
			return
		}
	}
	if r == len(b) {
		c.carry = c.carry[:0]
		if cap(c.carry) > maxCarry {
			c.carry = nil
		}
		return
	}
	// copy, which append uses, handles b aliasing c.carry.
	c.carry = append(c.carry[:0], b[r:]...)
}

// frame handles one complete frame received at nowNs; false means the read
// side ended.
func (c *client) frame(f Frame, nowNs int64) bool {
	var ctl [2 + 4 + 125]byte
	switch f.Op {
	case wsframe.OpText, wsframe.OpBinary:
		if !c.inFragment {
			p := f.Payload
			if f.Compressed {
				var err error
				if p, err = c.inflate(p, &c.zbuf); err != nil {
					c.end(endError, err)
					return false
				}
			}
			c.stats.deliver(p, nowNs, c.key, c.keys)
		}
		c.inFragment = !f.Fin
	case wsframe.OpContinuation:
		c.inFragment = !f.Fin
	case wsframe.OpPing:
		if err := c.writeControl(ctl[:0], wsframe.OpPong, f.Payload); err != nil {
			c.end(endError, err)
			return false
		}
	case wsframe.OpClose:
		c.replyClose(ctl[:0], f.Payload)
		c.end(endServerClose, nil)
		return false
	}
	return true
}

// OnEOF ends the read side: err nil is the server's end of stream.
func (c *client) OnEOF(err error) {
	if c.done {
		return
	}
	if err == nil {
		err = io.EOF
	}
	c.endRead(err)
}

// drainStalled is the final read of a stalled client: it reads and discards
// what the server had queued until the connection ends or the deadline
// passes, to learn whether the server closed it.
func (c *client) drainStalled(deadline time.Time) {
	if err := c.conn.SetReadDeadline(deadline); err != nil {
		c.end(endError, err)
		return
	}
	buf := make([]byte, max(16<<10, len(c.pending)))
	w := copy(buf, c.pending)
	c.pending = nil
	r := 0
	for {
		for {
			f, size, err := ParseFrame(buf[r:w])
			if err != nil {
				c.end(endError, err)
				return
			}
			if size > w-r {
				if size > len(buf) {
					nb := make([]byte, size)
					w = copy(nb, buf[r:w])
					buf, r = nb, 0
				} else if r > 0 {
					w = copy(buf, buf[r:w])
					r = 0
				}
				break
			}
			r += size
			if f.Op == wsframe.OpClose {
				c.end(endServerClose, nil)
				return
			}
		}
		n, err := c.conn.Read(buf[w:])
		w += n
		if err != nil {
			c.endRead(err)
			return
		}
	}
}

func (c *client) endRead(err error) {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		c.end(endServerClose, nil)
		return
	}
	c.end(endError, err)
}

func (c *client) end(reason endReason, err error) {
	c.done = true
	c.closedByServer = reason == endServerClose
	c.err = err
	c.ended.Store(true)
}

// writeControl writes one masked control frame. The deadline keeps a
// server that stopped reading from blocking the reader (and so the other
// clients of its poller) for more than a few seconds.
func (c *client) writeControl(buf []byte, op byte, payload []byte) error {
	c.maskKey ^= c.maskKey << 13
	c.maskKey ^= c.maskKey >> 17
	c.maskKey ^= c.maskKey << 5
	var key [4]byte
	binary.LittleEndian.PutUint32(key[:], c.maskKey)
	if err := c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	_, err := c.conn.Write(AppendClientFrame(buf, op, payload, key))
	return err
}

// replyClose echoes the server's close status, completing the closing
// handshake; failures do not matter as the connection is ending anyway.
func (c *client) replyClose(buf []byte, payload []byte) {
	if len(payload) > 2 {
		payload = payload[:2]
	}
	_ = c.writeControl(buf, wsframe.OpClose, payload)
}

// deliver records one data message received at nowNs.
func (st *clientStats) deliver(p []byte, nowNs int64, key, keys int) {
	ts, seq, ok := scanTsSeq(p)
	if !ok {
		st.unparsed++
		return
	}
	st.received.Add(1)
	st.hist.Record(nowNs - ts)
	k := int(seq % int64(keys))
	slot := k
	if key >= 0 {
		if k != key {
			st.misrouted++
			return
		}
		slot = 0
	}
	if st.lastSeq == nil || seq >= 1<<32-1 {
		return
	}
	last := st.lastSeq[slot]
	switch {
	case last == 0 || uint32(seq) >= last:
		st.lastSeq[slot] = uint32(seq) + 1
	case uint32(seq)+1 == last:
		st.duplicates++
	default:
		st.outOfOrder++
	}
}

func newClientStats(key, keys int) *clientStats {
	st := &clientStats{}
	switch {
	case key >= 0:
		st.lastSeq = make([]uint32, 1)
	case keys <= maxOrderKeys:
		st.lastSeq = make([]uint32, keys)
	}
	return st
}

// inflate decompresses a permessage-deflate payload into *buf, with an
// inflater from the group's pool (one per client would cost tens of
// kilobytes each).
func (c *client) inflate(p []byte, buf *[]byte) ([]byte, error) {
	f, _ := c.inflaters.Get().(*wsframe.Inflater)
	if f == nil {
		f = new(wsframe.Inflater)
	}
	defer c.inflaters.Put(f)
	out, err := f.Inflate((*buf)[:0], p)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	*buf = out
	return out, nil
}
