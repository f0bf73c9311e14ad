package hub

import (
	"context"
	"runtime"
	"sync"
)

// pool is the writers for raw sockets: long-lived goroutines (workers, one
// per CPU but one, see workers) taking clients in stateQueued from one FIFO
// run queue and giving each one non-blocking writev of what it has, up to
// maxBatch frames (Client.flushOne). A client is in the run queue at most
// once, so the queue is bounded by the number of
// clients with something to write; idle clients are not in it.
//
// The run queue is also the pacing: when the workers keep up, a client is
// written as soon as it is queued; when they do not, a client waits for its
// turn while its frames accumulate, and its next write carries all of them.
type pool struct {
	mu      sync.Mutex
	running bool      // workers are taking clients; guarded by mu
	runq    []*Client // clients due, in order; guarded by mu
	next    []*Client // the array runq is swapped with; guarded by mu
	notify  chan struct{}
}

func newPool() *pool {
	return &pool{notify: make(chan struct{}, workers())}
}

// workers is the number of pool workers: one per CPU (GOMAXPROCS) but one,
// and at least one. A worker with a backlog never blocks, so workers on
// every P would make the Kafka consumer, the publisher and the epoll loop
// wait for the scheduler to preempt one before the records the workers are
// to write could even arrive (docs/design.md, the writer).
func workers() int { return max(1, runtime.GOMAXPROCS(0)-1) }

// push appends c to the run queue and reports true, or reports false when
// the pool is not running (the caller then writes from a goroutine). The
// caller holds c.mu and has set c.state to stateQueued.
func (p *pool) push(c *Client) bool {
	p.mu.Lock()
	if !p.running {
		p.mu.Unlock()
		return false
	}
	p.runq = append(p.runq, c)
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
	return true
}

// take moves up to max clients from the front of the run queue into dst.
func (p *pool) take(dst []*Client, max int) []*Client {
	p.mu.Lock()
	n := min(max, len(p.runq))
	dst = append(dst, p.runq[:n]...)
	if n == len(p.runq) {
		clear(p.runq)
		p.runq = p.runq[:0]
	} else {
		// Keep the order: move the rest to the other array.
		rest := append(p.next[:0], p.runq[n:]...)
		clear(p.runq)
		p.next = p.runq[:0]
		p.runq = rest
	}
	p.mu.Unlock()
	return dst
}

// takeMax is how many clients a worker takes from the run queue at once:
// few enough that the workers share a burst, enough to take the lock
// rarely.
const takeMax = 32

// run runs the workers until ctx is done. Then every client still in the
// run queue gets a goroutine of its own, so that what is queued (and
// shutdown's close frames) still goes out, and push reports false from
// then on.
func (p *pool) run(ctx context.Context) {
	p.mu.Lock()
	p.running = true
	p.mu.Unlock()
	var wg sync.WaitGroup
	for range workers() {
		wg.Go(func() {
			var (
				b     batch
				ws    writeScratch
				batch []*Client
			)
			for {
				batch = p.take(batch[:0], takeMax)
				if len(batch) == 0 {
					select {
					case <-p.notify:
						continue
					case <-ctx.Done():
						return
					}
				}
				for _, c := range batch {
					c.flushOne(&b, &ws)
				}
				clear(batch)
				if cap(b.frames) > 4096 {
					b.frames = nil
				}
				if ctx.Err() != nil {
					return
				}
				// A worker with a long run queue never blocks, so it
				// would keep its P until the scheduler preempts it (10 ms);
				// with GOMAXPROCS 1 the Kafka consumer, the publisher and
				// the epoll loop would wait that long for a turn. Yield
				// between batches.
				runtime.Gosched()
			}
		})
	}
	wg.Wait()
	p.stop()
}

// stop makes push report false from now on and hands every client still in
// the run queue to a goroutine of its own.
func (p *pool) stop() {
	p.mu.Lock()
	p.running = false
	left := p.runq
	p.runq = nil
	p.mu.Unlock()
	for _, c := range left {
		c.mu.Lock()
		if c.state == stateQueued {
			go c.writeLoop()
		}
		c.mu.Unlock()
	}
}
