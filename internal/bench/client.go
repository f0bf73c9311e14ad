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

// Read buffer sizes of a reading client: it starts small, since thousands
// of idle clients should not cost much memory, and doubles each time a read
// fills it, so a busy client gets many frames per syscall.
const (
	minReadBuffer = 4 << 10
	maxReadBuffer = 64 << 10
)

// maxOrderKeys bounds the per-client memory of the order check: with more
// keys than this duplicates and reordering are not tracked.
const maxOrderKeys = 1 << 16

// clientStats are one reading client's counters. The reader goroutine owns
// them until it exits; only received is read concurrently (by the progress
// reporter).
type clientStats struct {
	received   atomic.Int64 // deliveries carrying ts and seq
	duplicates int64
	outOfOrder int64
	unparsed   int64 // data messages without ts and seq
	misrouted  int64 // deliveries for a key the client did not ask for
	hist       Histogram
	lastSeq    []uint32 // per key slot: last seq seen + 1, 0 for none
	// With max_rate (GroupConfig.LatestWins): per key slot, when its last
	// delivery arrived (unix ns), and the shortest time between two
	// deliveries of one key.
	lastAt []int64
	minGap int64
}

// client is one WebSocket connection.
type client struct {
	conn    net.Conn
	stalled bool
	key     int // key filter in the URL, or -1
	keys    int // number of keys the producer cycles through
	pending []byte
	maskKey uint32 // xorshift state for masking our control frames

	stats *clientStats // nil for stalled clients

	inflaters *sync.Pool // the group's *wsframe.Inflater, for permessage-deflate

	// Set by the reader goroutine before it exits.
	closedByServer bool // close frame, EOF or reset from the server
	err            error
	ended          atomic.Bool // set last, when the read loop is done
}

// endReason classifies how a read loop ended.
type endReason uint8

const (
	endServerClose endReason = iota // close frame, EOF or connection reset
	endError                        // protocol error, timeout, or our own Close
)

// readLoop reads frames until the connection ends, answering pings and
// recording every data message. It allocates only when the buffer grows.
func (c *client) readLoop() {
	st := c.stats
	buf := make([]byte, max(minReadBuffer, len(c.pending)))
	w := copy(buf, c.pending)
	c.pending = nil
	r := 0
	inFragment := false
	var ctl [2 + 4 + 125]byte
	var zbuf []byte // an inflated message
	for {
		if w > r {
			now := time.Now().UnixNano()
			for {
				f, size, err := ParseFrame(buf[r:w])
				if err != nil {
					c.end(endError, err)
					return
				}
				if size > w-r {
					if size > len(buf) {
						nb := make([]byte, max(size, min(2*len(buf), maxReadBuffer)))
						w = copy(nb, buf[r:w])
						buf, r = nb, 0
					}
					break
				}
				r += size
				switch f.Op {
				case wsframe.OpText, wsframe.OpBinary:
					if !inFragment {
						p := f.Payload
						if f.Compressed {
							if p, err = c.inflate(p, &zbuf); err != nil {
								c.end(endError, err)
								return
							}
						}
						st.deliver(p, now, c.key, c.keys)
					}
					inFragment = !f.Fin
				case wsframe.OpContinuation:
					inFragment = !f.Fin
				case wsframe.OpPing:
					if err := c.writeControl(ctl[:0], wsframe.OpPong, f.Payload); err != nil {
						c.end(endError, err)
						return
					}
				case wsframe.OpClose:
					c.replyClose(ctl[:0], f.Payload)
					c.end(endServerClose, nil)
					return
				}
			}
			if r == w {
				r, w = 0, 0
			} else if r > 0 && w == len(buf) {
				w = copy(buf, buf[r:w])
				r = 0
			}
		}
		n, err := c.conn.Read(buf[w:])
		w += n
		if err != nil {
			c.endRead(err)
			return
		}
		if w == len(buf) && r == 0 && len(buf) < maxReadBuffer {
			nb := make([]byte, 2*len(buf))
			copy(nb, buf[:w])
			buf = nb
		}
	}
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
	c.closedByServer = reason == endServerClose
	c.err = err
	c.ended.Store(true)
}

// writeControl writes one masked control frame. The deadline keeps a
// server that stopped reading from blocking the reader forever.
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
	if st.lastAt != nil {
		if at := st.lastAt[slot]; at != 0 && (st.minGap == 0 || nowNs-at < st.minGap) {
			st.minGap = max(1, nowNs-at)
		}
		st.lastAt[slot] = nowNs
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

func newClientStats(key, keys int, latestWins bool) *clientStats {
	st := &clientStats{}
	switch {
	case key >= 0:
		st.lastSeq = make([]uint32, 1)
	case keys <= maxOrderKeys:
		st.lastSeq = make([]uint32, keys)
	}
	if latestWins && st.lastSeq != nil {
		st.lastAt = make([]int64, len(st.lastSeq))
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
