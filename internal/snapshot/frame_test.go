package snapshot

import (
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/message"
)

// Every snapshot frame carries the snapshot point, whatever shapes were
// wanted when the record was published or seeded, JSON or not, and no
// message that has a frame of the shape is left out.
func TestFrameCarriesThePoint(t *testing.T) {
	enc := encode.New(encode.Options{Logger: discard()})
	for _, value := range []string{`{"v":1}`, `not json`} {
		for wi, want := range [][message.NumShapes]bool{
			{},
			{message.ShapeSSEEnvelope: true},
			{message.ShapeSSEPlain: true},
			{message.ShapeEnvelope: true, message.ShapeSSEEnvelope: true, message.ShapeSSEPlain: true},
		} {
			for _, seeded := range []bool{false, true} {
				pos := &wsdest.Cursor{Offsets: []int64{0}}
				if seeded {
					pos = nil
				}
				rec := &wsdest.Record{Topic: "t", Partition: 0, Offset: 7, Key: []byte("k"), Value: []byte(value), Timestamp: time.Now()}
				m := Latest(enc.EncodeKept(nil, rec, want, pos))
				for _, shape := range []message.Shape{message.ShapeEnvelope, message.ShapeSSEEnvelope, message.ShapeSSEPlain} {
					f := Frame(m, shape, "POINTXYZ")
					switch {
					case f == nil && encode.Deliverable(m, shape):
						t.Errorf("value %q want#%d seeded=%v shape %v: a deliverable message left out", value, wi, seeded, shape)
					case f != nil && !strings.Contains(string(f.Frames[shape]), "POINTXYZ"):
						t.Errorf("value %q want#%d seeded=%v shape %v: frame %q lacks the point", value, wi, seeded, shape, f.Frames[shape])
					}
				}
			}
		}
	}
}
