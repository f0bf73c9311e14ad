package hub

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// deadlineConn is slowConn that honours the write deadline, as a socket
// does: a write that would take past it writes what fits and fails.
type deadlineConn struct {
	timedConn
	bps float64
	dmu sync.Mutex
	dl  time.Time
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	c.dl = t
	c.dmu.Unlock()
	return nil
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	need := time.Duration(float64(len(b)) / c.bps * float64(time.Second))
	c.dmu.Lock()
	dl := c.dl
	c.dmu.Unlock()
	if !dl.IsZero() && time.Now().Add(need).After(dl) {
		time.Sleep(time.Until(dl))
		return 0, os.ErrDeadlineExceeded
	}
	time.Sleep(need)
	return c.timedConn.Write(b)
}

// A rated client whose link is slower than its rate is not closed for it,
// with the default WriteTimeout and SLOW_CLIENTS=close, on a connection
// that honours the write deadline: what it holds (one message per key,
// here 500 keys of 100 bytes, 50 KB) is written in pieces that a 2 KB/s
// link finishes within WriteTimeout, not in one write.
func TestRatedSlowLinkWithinWriteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1}) // defaults: WriteTimeout 10 s, MaxQueueBytes 4 MiB, close
		dc := &deadlineConn{bps: 2000}
		c := h.AddClient(dc, ClientOptions{Sub: Subscription{All: true, MaxRate: 0.1}})
		const keys = 500
		pad := strings.Repeat("x", 70)
		for i := range 20_000 { // 100 s, every key every 2.5 s
			k := fmt.Sprint("k", i%keys)
			m := ratedMsg(k, i)
			m.Frames[message.ShapePlain] = wsframe.Text([]byte(fmt.Sprintf(`{"k":%q,"i":%d,"p":%q}`, k, i, pad)))
			h.Publish([]*message.Message{m})
			time.Sleep(5 * time.Millisecond)
		}
		synctest.Wait()
		if c.isClosing() {
			t.Fatalf("a rated client whose link (2 KB/s) carries each of its 500 keys every 50 s was closed (%s)", c.reason)
		}
		c.Abort(ReasonClientClosed)
		time.Sleep(time.Minute) // the write in flight ends
		synctest.Wait()
	})
}
