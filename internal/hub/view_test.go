package hub

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// testView drops messages whose plain payload lacks keep, and derives a
// message with a new plain frame from the others when derive is set,
// counting its calls.
type testView struct {
	keep   string
	derive bool
	calls  atomic.Int64
}

func (v *testView) Apply(m *message.Message) *message.Message {
	v.calls.Add(1)
	p, _ := wsframe.TextPayload(m.Frames[message.ShapePlain])
	if !strings.Contains(string(p), v.keep) {
		return nil
	}
	if !v.derive {
		return m
	}
	d := &message.Message{Key: m.Key, Offset: m.Offset, Partition: m.Partition, Origin: m.Origin}
	d.Frames[message.ShapePlain] = wsframe.Text([]byte("derived " + string(p)))
	return d
}

// queued returns what c holds, in order.
func queued(c *Client) []*message.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(append([]*message.Message(nil), c.backlog...), c.queue...)
}

func TestViewAppliedOnceAndShared(t *testing.T) {
	h := New(Config{})
	v := &testView{keep: "hot", derive: true}
	other := &testView{keep: "hot", derive: true}
	a := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, View: v}})
	b := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, View: v}})
	c := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, View: other}})
	plain := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true}})
	msgs := []*message.Message{msg("k", "hot 1"), msg("k", "cold"), msg("k", "hot 2")}
	h.Wants()
	h.Publish(msgs)

	qa, qb, qc := queued(a), queued(b), queued(c)
	if len(qa) != 2 || len(qb) != 2 || len(qc) != 2 {
		t.Fatalf("queued %d, %d, %d messages, want 2 each (the cold one filtered)", len(qa), len(qb), len(qc))
	}
	for i := range qa {
		if qa[i] != qb[i] || &qa[i].Frames[message.ShapePlain][0] != &qb[i].Frames[message.ShapePlain][0] {
			t.Fatalf("message %d: two clients of one view got different derived messages", i)
		}
		if qa[i] == qc[i] {
			t.Fatalf("message %d: clients of two views share a derived message", i)
		}
		if qa[i] == msgs[0] || qa[i] == msgs[2] {
			t.Fatalf("message %d: the derived message is not the view's", i)
		}
	}
	if got := string(qa[1].Frames[message.ShapePlain][2:]); got != "derived hot 2" {
		t.Fatalf("second message %q", got)
	}
	if n := v.calls.Load(); n != 3 {
		t.Fatalf("the view was applied %d times to 3 messages for 2 clients, want 3", n)
	}
	if q := queued(plain); len(q) != 3 || q[0] != msgs[0] {
		t.Fatal("a client without a view did not get every published message itself")
	}
}

func TestFilterAloneSharesTheMessage(t *testing.T) {
	h := New(Config{})
	v := &testView{keep: "hot"}
	a := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, View: v}})
	m := msg("k", "hot")
	h.Wants()
	h.Publish([]*message.Message{m})
	if q := queued(a); len(q) != 1 || q[0] != m {
		t.Fatal("a filter that keeps a message did not queue the message itself")
	}
}

// TestViewAfterKeysAndGrant: a view sees only what the client's keys and
// grant select, and cannot widen them.
func TestViewAfterKeysAndGrant(t *testing.T) {
	h := New(Config{})
	v := &testView{keep: ""}
	keys := h.AddClient(nil, ClientOptions{Sub: Subscription{Keys: []string{"a"}, View: v}})
	granted := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, Grant: []string{"b*"}, View: v}})
	h.Wants()
	h.Publish([]*message.Message{msg("a", "1"), msg("b1", "2"), msg("c", "3"), msg("\x00", "4")})
	if q := queued(keys); len(q) != 1 || string(q[0].Key) != "a" {
		t.Fatalf("keys client got %d messages, want only key a", len(q))
	}
	if q := queued(granted); len(q) != 1 || string(q[0].Key) != "b1" {
		t.Fatalf("granted client got %d messages, want only key b1", len(q))
	}
	if n := v.calls.Load(); n != 2 {
		t.Fatalf("the view was applied to %d messages, want the 2 some client's keys and grant selected", n)
	}
}

// TestNoticesPassViews: a notice reaches a client whose view drops
// everything, once.
func TestNoticesPassViews(t *testing.T) {
	h := New(Config{})
	v := &testView{keep: "never"}
	for _, sub := range []Subscription{
		{All: true, View: v, Shape: message.ShapeEnvelope},
		{Keys: []string{"a"}, View: v, Shape: message.ShapeEnvelope},
	} {
		c := h.AddClient(nil, ClientOptions{Sub: sub})
		n := &message.Message{Partition: -1}
		n.Frames[message.ShapeEnvelope] = wsframe.Text([]byte(`{"notice":"x"}`))
		h.Wants()
		h.Publish([]*message.Message{msg("a", "1"), n})
		if q := queued(c); len(q) != 1 || q[0] != n {
			t.Fatalf("%+v: queued %d messages, want the notice once", sub, len(q))
		}
		c.Abort(ReasonClientClosed)
	}
}

func TestViewsForgottenWithTheirClients(t *testing.T) {
	h := New(Config{})
	v := &testView{}
	a := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, View: v}})
	b := h.AddClient(nil, ClientOptions{Sub: Subscription{Keys: []string{"x"}, View: v}})
	if w := h.Wants(); !w[message.ShapePlain] {
		t.Fatal("clients with a view do not make the plain frame wanted")
	}
	a.Abort(ReasonClientClosed)
	b.Abort(ReasonClientClosed)
	h.views.mu.Lock()
	n := len(h.views.slots)
	h.views.mu.Unlock()
	if n != 0 || h.viewed.Load() != 0 {
		t.Fatalf("%d view slots, %d viewed clients left after every client left", n, h.viewed.Load())
	}
}

// TestCompiledSizeClass: the view pointer keeps the compiled subscription
// a client with keys allocates in the 80-byte size class it had before
// views, so that clients without a view cost what they did (the Client
// itself has no field for views; clients that take everything share one
// compiled subscription).
func TestCompiledSizeClass(t *testing.T) {
	if n := unsafe.Sizeof(compiled{}); n > 80 {
		t.Fatalf("compiled is %d bytes: past the 80-byte size class", n)
	}
}

// TestViewLongPublish: a Publish longer than a piece (a record of many
// rows) is applied once per message and view, and every client of the
// view gets all of it, in order.
func TestViewLongPublish(t *testing.T) {
	h := New(Config{MaxQueueBytes: 1 << 30})
	v := &testView{keep: "hot"}
	a := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, View: v}})
	b := h.AddClient(nil, ClientOptions{Sub: Subscription{All: true, View: v}})
	var msgs []*message.Message
	for i := range 3*maxBatch + 7 {
		msgs = append(msgs, msg("k", fmt.Sprintf("hot %d", i)))
	}
	h.Wants()
	h.Publish(msgs)
	if n := v.calls.Load(); n != int64(len(msgs)) {
		t.Fatalf("the view was applied %d times to %d messages", n, len(msgs))
	}
	for _, c := range []*Client{a, b} {
		q := queued(c)
		if len(q) != len(msgs) {
			t.Fatalf("queued %d of %d", len(q), len(msgs))
		}
		for i := range q {
			if q[i] != msgs[i] {
				t.Fatalf("message %d out of order", i)
			}
		}
	}
	for _, s := range h.views.slots {
		if cap(s.out) > maxBatch {
			t.Fatalf("the view held %d results at once, want a piece at most (%d)", cap(s.out), maxBatch)
		}
		for _, d := range s.out[:cap(s.out)] {
			if d != nil {
				t.Fatal("the view still holds a result of a queued Publish")
			}
		}
	}
}

// A client with both a view and a rate gets its view's messages through
// the rate: latest wins per key, as for a client without a view.
func TestViewWithRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1, WriteTimeout: time.Hour})
		rc := &timedConn{}
		h.AddClient(rc, ClientOptions{Sub: Subscription{All: true, MaxRate: 1, View: &testView{keep: `"k"`}}})
		h.Publish([]*message.Message{ratedMsg("a", 0), ratedMsg("a", 1), ratedMsg("a", 2)})
		synctest.Wait()
		if ds := rc.deliveries(); len(ds) != 1 || ds[0].text != `{"k":"a","i":0}` {
			t.Fatalf("at once: %v, want only the first message of the key", ds)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if ds := rc.deliveries(); len(ds) != 2 || ds[1].text != `{"k":"a","i":2}` {
			t.Fatalf("after a second: %v, want the key's latest message", ds)
		}
	})
}
