package snapshot

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/sseframe"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// View is what the table held at one moment: the latest message of each
// key, immutable. It is shared by every client that snapshots while the
// table does not change (Table.ViewOf). Safe for concurrent use.
type View struct {
	keys map[string]*message.Message // never modified
	sort sync.Once
	msgs []*message.Message // by partition, then offset, once sorted

	// framed holds, per shape, the frames built for one snapshot point
	// (SharedFrame), shared by every client that snapshots at it, up to
	// maxSharedBytes in all; guarded by fmu.
	fmu    sync.Mutex
	framed [message.NumShapes]sharedFrames
	fbytes int
}

// sharedFrames are the frames of one shape built at cursor.
type sharedFrames struct {
	cursor string
	m      map[*message.Message]*message.Message
}

// maxSharedBytes bounds the frames a View keeps for sharing: past it,
// frames are built for each client alone (Frame), so that a view of many
// keys costs at most this beside what its clients' backlogs hold.
const maxSharedBytes = 16 << 20

// SharedFrame is Frame, built once per message, shape and cursor and
// shared by every client of the view that snapshots at cursor (up to
// maxSharedBytes of frames per view).
func (v *View) SharedFrame(m *message.Message, shape message.Shape, cursor string) *message.Message {
	if shape == message.ShapePlain {
		return Frame(m, shape, cursor) // no cursor in it: m itself
	}
	v.fmu.Lock()
	c := &v.framed[shape]
	if c.cursor == cursor && c.m != nil {
		if f, ok := c.m[m]; ok {
			v.fmu.Unlock()
			return f
		}
	}
	v.fmu.Unlock()
	f := Frame(m, shape, cursor)
	v.fmu.Lock()
	defer v.fmu.Unlock()
	if c.cursor != cursor || c.m == nil {
		if c.m != nil {
			return f // another point holds the cache: this one's frames are the caller's
		}
		c.cursor, c.m = cursor, make(map[*message.Message]*message.Message)
	}
	if g, ok := c.m[m]; ok {
		return g // built meanwhile by another client: share it
	}
	if f != nil && v.fbytes+len(f.Frames[shape]) > maxSharedBytes {
		return f
	}
	c.m[m] = f
	if f != nil {
		v.fbytes += len(f.Frames[shape])
	}
	return f
}

// Len returns the number of keys in the view.
func (v *View) Len() int { return len(v.keys) }

// Get returns key's latest message in the view, or nil.
func (v *View) Get(key []byte) *message.Message { return v.keys[string(key)] }

// Messages returns the view's messages whose key match takes, in
// partition and offset order.
func (v *View) Messages(match func(key []byte) bool) []*message.Message {
	v.sort.Do(func() {
		v.msgs = slices.SortedFunc(maps.Values(v.keys), func(a, b *message.Message) int {
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

// Frame returns m (from Messages) as a client of shape gets it in a
// snapshot taken at cursor: with cursor as its cursor (the envelope's
// "cursor", the SSE event's id), built for the caller alone; a plain
// WebSocket message, which carries no cursor, as it is. It returns nil
// when m has no frame of the shape, or none that can carry the point. Callers frame a snapshot a little at
// a time as they push it (history), so that the framed copies a client
// holds are bounded by its backlog, not by the number of keys.
func Frame(m *message.Message, shape message.Shape, cursor string) *message.Message {
	switch {
	case shape == message.ShapePlain:
		if m.Frames[shape] == nil {
			return nil
		}
		return m
	case !encode.Deliverable(m, shape):
		return nil
	}
	if f := encode.Reframe(m, shape, cursor); f != m {
		return f
	}
	return nil // a frame that cannot carry the point is never sent as one
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
