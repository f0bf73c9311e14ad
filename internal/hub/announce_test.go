package hub

import (
	"testing"
	"testing/synctest"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// announcement is a message with a frame for the envelope shape only, as
// encode.Announcement builds (plain clients get none).
func announcement(text string) *message.Message {
	m := &message.Message{Partition: -1}
	m.Frames[message.ShapeEnvelope] = wsframe.Text([]byte(text))
	return m
}

// An announcement reaches every client with a frame of its shape,
// whatever its subscription; a standing one also reaches clients added
// later, until the next announcement replaces it, and no client gets both
// the broadcast and the standing copy.
func TestAnnounce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := New(Config{PingInterval: -1})
		plain, keyed, all := newRecConn(), newRecConn(), newRecConn()
		add(h, plain, Subscription{All: true}, nil)
		add(h, keyed, Subscription{Keys: []string{"k"}, Shape: message.ShapeEnvelope}, nil)
		add(h, all, Subscription{All: true, Shape: message.ShapeEnvelope}, nil)

		down := announcement("down")
		h.Announce(down, true)
		late := newRecConn()
		add(h, late, Subscription{Keys: []string{"x*"}, Shape: message.ShapeEnvelope}, nil)
		synctest.Wait()
		want := string(down.Frames[message.ShapeEnvelope])
		for name, c := range map[string]*recConn{"keyed": keyed, "all": all, "late": late} {
			if got := c.all(); got != want {
				t.Errorf("%s client wrote %q, want the announcement once", name, got)
			}
		}
		if got := plain.all(); got != "" {
			t.Errorf("plain client wrote %q, want nothing", got)
		}

		up := announcement("up")
		h.Announce(up, false)
		after := newRecConn()
		add(h, after, Subscription{All: true, Shape: message.ShapeEnvelope}, nil)
		synctest.Wait()
		if got := late.all(); got != want+string(up.Frames[message.ShapeEnvelope]) {
			t.Errorf("late client wrote %q, want both announcements in order", got)
		}
		if got := after.all(); got != "" {
			t.Errorf("client added after a non-standing announcement wrote %q, want nothing", got)
		}
	})
}
