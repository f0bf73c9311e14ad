package snapshot

import (
	"cmp"
	"slices"
	"strconv"
	"sync"

	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/sseframe"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// View is what the table held at one moment: the latest message of each
// key. It is shared by every client that snapshots while the table does
// not change, and so are the frames it builds for them (Frames). Safe for
// concurrent use.
type View struct {
	version uint64
	sort    sync.Once
	msgs    []*message.Message // by partition, then offset, once sorted

	// mu guards the frames built for point, the cursor of the last
	// snapshot taken of the view.
	mu     sync.Mutex
	point  string
	framed [message.NumShapes]map[*message.Message]*message.Message
}

// Len returns the number of keys in the view.
func (v *View) Len() int { return len(v.msgs) }

// Messages returns the view's messages whose key match takes, in
// partition and offset order.
func (v *View) Messages(match func(key []byte) bool) []*message.Message {
	v.sort.Do(func() {
		slices.SortFunc(v.msgs, func(a, b *message.Message) int {
			return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
		})
	})
	var out []*message.Message
	for _, m := range v.msgs {
		if match(m.Key) {
			out = append(out, m)
		}
	}
	return out
}

// Frames returns the messages of msgs (from Messages) as a client of
// shape gets them in a snapshot taken at cursor: each with cursor as its
// cursor (the envelope's "cursor", the SSE event's id), built once per
// message, shape and cursor and shared by every client that snapshots the
// view at that cursor; plain WebSocket messages, which carry no cursor,
// as they are. Messages that have no frame of the shape are left out.
func (v *View) Frames(msgs []*message.Message, shape message.Shape, cursor string) []*message.Message {
	out := make([]*message.Message, 0, len(msgs))
	if shape == message.ShapePlain {
		for _, m := range msgs {
			if m.Frames[shape] != nil {
				out = append(out, m)
			}
		}
		return out
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.point != cursor {
		v.point = cursor
		clear(v.framed[:])
	}
	built := v.framed[shape]
	if built == nil {
		built = make(map[*message.Message]*message.Message, len(msgs))
		v.framed[shape] = built
	}
	for _, m := range msgs {
		f, ok := built[m]
		if !ok {
			if encode.Deliverable(m, shape) {
				f = encode.Reframe(m, shape, cursor)
			}
			built[m] = f
		}
		if f != nil {
			out = append(out, f)
		}
	}
	return out
}

// End returns the notice that ends a snapshot of keys messages taken at
// cursor, for a client of shape ({"notice":"snapshot_end","keys":N,
// "cursor":"..."}; an SSE event whose id is cursor, so that an EventSource
// that reconnects after an empty snapshot resumes from it); nil for plain
// WebSocket clients, which get no notices.
func End(shape message.Shape, keys int, cursor string) *message.Message {
	b := []byte(`{"notice":"snapshot_end","keys":`)
	b = strconv.AppendInt(b, int64(keys), 10)
	b = append(b, `,"cursor":"`...)
	b = append(b, cursor...) // base64url: nothing to escape
	b = append(b, `"}`...)
	m := &message.Message{Partition: -1}
	switch shape {
	case message.ShapeEnvelope:
		m.Frames[shape] = wsframe.Text(b)
	case message.ShapeSSEPlain, message.ShapeSSEEnvelope:
		m.Frames[shape] = sseframe.Event(cursor, b)
	default:
		return nil
	}
	return m
}
