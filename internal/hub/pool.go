package hub

import (
	"context"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// wheelSlots is the number of 1 ms slots of the timing wheel; it must
// exceed maxSpacing in milliseconds.
const wheelSlots = 512

// pool writes to clients from a few long-lived goroutines with
// non-blocking vectored writes, so that the common write costs no
// goroutine start, no timer and no deadline. A write that would block
// hands the client to a goroutine of its own (Client.writeRest).
type pool struct {
	ready chan *Client

	mu      sync.Mutex
	stopped bool                  // the workers are gone: writes go to goroutines
	wheel   [wheelSlots][]*Client // clients due in that millisecond
	pending int                   // clients in the wheel
	next    int64                 // first millisecond not yet swept
	wake    chan struct{}         // signalled when the wheel goes from empty to not
}

func newPool() *pool {
	return &pool{ready: make(chan *Client, 1<<16), wake: make(chan struct{}, 1)}
}

// run runs the workers and the wheel until ctx is done.
func (p *pool) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			var ws writeScratch
			for {
				select {
				case c := <-p.ready:
					c.flushFast(&ws)
				case <-ctx.Done():
					return
				}
			}
		})
	}
	p.sweep(ctx)
	wg.Wait()
	// Hand whoever is still waiting to goroutines of their own, so that
	// shutdown's close frames go out.
	p.mu.Lock()
	p.stopped = true
	var left []*Client
	for i := range p.wheel {
		left = append(left, p.wheel[i]...)
		p.wheel[i] = nil
	}
	p.pending = 0
	p.mu.Unlock()
drain:
	for {
		select {
		case c := <-p.ready:
			left = append(left, c)
		default:
			break drain
		}
	}
	for _, c := range left {
		go c.write()
	}
}

// sweep moves clients from the wheel to the ready queue as they fall due.
func (p *pool) sweep(ctx context.Context) {
	t := time.NewTimer(time.Millisecond)
	defer t.Stop()
	var due []*Client
	for {
		p.mu.Lock()
		idle := p.pending == 0
		p.mu.Unlock()
		if idle {
			select {
			case <-p.wake:
			case <-ctx.Done():
				return
			}
		}
		t.Reset(time.Millisecond)
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		now := time.Now().UnixMilli()
		p.mu.Lock()
		if p.next == 0 || now-p.next > wheelSlots {
			p.next = now - wheelSlots + 1
		}
		for ; p.next <= now; p.next++ {
			s := &p.wheel[p.next%wheelSlots]
			due = append(due, *s...)
			p.pending -= len(*s)
			clear(*s)
			*s = (*s)[:0]
		}
		p.mu.Unlock()
		for _, c := range due {
			p.push(c)
		}
		clear(due)
		due = due[:0]
	}
}

// push hands c to a worker, or to a goroutine of its own when the workers
// are that far behind.
func (p *pool) push(c *Client) {
	p.mu.Lock()
	if !p.stopped {
		select {
		case p.ready <- c:
			p.mu.Unlock()
			return
		default:
		}
	}
	p.mu.Unlock()
	go c.write()
}

// later queues c for its due time.
func (p *pool) later(c *Client, due time.Time) {
	ms := due.UnixMilli()
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		go c.write()
		return
	}
	if p.next != 0 && ms < p.next {
		ms = p.next
	}
	p.wheel[ms%wheelSlots] = append(p.wheel[ms%wheelSlots], c)
	p.pending++
	first := p.pending == 1
	p.mu.Unlock()
	if first {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// kick starts writing for a client whose writer flag the caller has just
// set: at once, or when the write spacing allows.
func (h *Hub) kick(c *Client) {
	if c.raw == nil || !h.poolRunning.Load() {
		go c.write()
		return
	}
	if due := c.nextWrite(); due.After(time.Now()) {
		h.pool.later(c, due)
		return
	}
	h.pool.push(c)
}

// flushFast writes a client's queue with one non-blocking writev.
func (c *Client) flushFast(ws *writeScratch) {
	c.mu.Lock()
	if len(c.queue) == 0 || c.closing {
		c.mu.Unlock()
		go c.write() // the blocking writer handles exits and closes
		return
	}
	batch := c.takeBatchLocked()
	c.mu.Unlock()

	st := c.hub.stats
	n, rest, err := writevNonblock(c.raw, batch, ws)
	st.writes.Add(1)
	st.bytes.Add(uint64(n))
	if err != nil && err != syscall.EAGAIN {
		clear(batch)
		c.teardown(c.reasonOr(ReasonWriteError))
		return
	}
	if len(rest) > 0 {
		st.blocked.Add(1)
		go c.writeRest(rest, batch)
		return
	}
	st.written.Add(uint64(len(batch)))
	c.lastWrite = time.Now()
	c.recycle(batch)
	c.mu.Lock()
	switch {
	case len(c.queue) == 0 && !c.closing:
		c.idleLocked()
		c.mu.Unlock()
	case c.closing:
		c.mu.Unlock()
		go c.write()
	default:
		c.mu.Unlock()
		c.hub.kick(c)
	}
}

// writeRest finishes, blocking, a batch the socket took only part of, then
// carries on as the client's blocking writer.
func (c *Client) writeRest(rest net.Buffers, batch [][]byte) {
	frames := len(batch)
	wt := c.hub.cfg.WriteTimeout
	c.deadline = time.Now().Add(wt)
	_ = c.conn.SetWriteDeadline(c.deadline)
	n, err := rest.WriteTo(c.conn)
	c.hub.stats.bytes.Add(uint64(n))
	c.recycle(batch)
	if err != nil {
		c.teardown(c.reasonOr(writeErrReason(err)))
		return
	}
	c.hub.stats.written.Add(uint64(frames))
	c.lastWrite = time.Now()
	c.write()
}

// recycle clears an written batch and keeps it as the next queue's array
// unless it grew large.
func (c *Client) recycle(batch [][]byte) {
	clear(batch)
	if cap(batch) <= maxSpareCap {
		c.mu.Lock()
		c.spare = batch[:0]
		c.mu.Unlock()
	}
}
