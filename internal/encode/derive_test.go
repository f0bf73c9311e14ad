package encode

import (
	"bytes"
	"testing"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/message"
)

// TestDerive: a message derived with a new value gets, in every shape,
// the frames the encoder builds for a record of that value, from a
// message kept with its head (EncodeKept) and from one built with its
// envelope frame (EncodeAt) alike, Quix rows included; and Reframe builds
// it again for another cursor as it builds the original.
func TestDerive(t *testing.T) {
	const value = `{"x":1}`
	hs := []wsdest.Header{{Key: "h", Value: []byte("v")}}
	recs := []*wsdest.Record{
		{Value: []byte(`{"a":1,"x":2}`), Headers: hs, Key: []byte("k")},
		{Value: []byte(tsPayload), Headers: append(quixHeaders("TimeseriesData", "JT"), hs...), Key: []byte("q")},
	}
	e := New(Options{})
	for _, r := range recs {
		r.Topic, r.Partition, r.Offset, r.Timestamp = "t", 1, 100, time.UnixMilli(1700000000000)
		start := wsdest.Cursor{Topic: wsdest.NewTopicIdentity("t", [16]byte{9}), Since: time.UnixMilli(1)}
		livePos, keptPos, wantPos := start.Clone(), start.Clone(), start.Clone()
		live := e.EncodeAt(nil, r, allShapes, &livePos)
		kept := e.EncodeKept(nil, r, plainOnly, &keptPos)
		// What the encoder builds for the record with the derived value.
		w := *r
		w.Value = []byte(value)
		w.Headers = hs
		want := e.EncodeAt(nil, &w, allShapes, &wantPos)[0]
		for i := range live {
			for name, m := range map[string]*message.Message{"live": live[i], "kept": kept[i]} {
				head, ok := Head(m)
				if !ok {
					t.Fatalf("%s row %d: no head", name, i)
				}
				for sh := range message.NumShapes {
					d := Derive(m, sh, head, []byte(value))
					if d.Origin != m.Origin || d.Row != m.Row || d.Rows != m.Rows || string(d.Key) != string(m.Key) {
						t.Fatalf("%s row %d %v: not the record's place", name, i, sh)
					}
					if got := textOf(t, d.Frames[message.ShapePlain]); got != value {
						t.Fatalf("%s row %d %v: plain %s", name, i, sh, got)
					}
					if i > 0 || len(live) > 1 {
						continue // a row's envelope differs from a record's in its cursor only: checked by Reframe below
					}
					if !bytes.Equal(d.Frames[sh], want.Frames[sh]) {
						t.Fatalf("%s %v:\n%q\nwant\n%q", name, sh, d.Frames[sh], want.Frames[sh])
					}
				}
				for _, sh := range []message.Shape{message.ShapeEnvelope, message.ShapeSSEPlain, message.ShapeSSEEnvelope} {
					d := Derive(m, sh, head, []byte(value))
					if got, again := Reframe(d, sh, "NEW").Frames[sh], Reframe(Derive(m, sh, head, []byte(value)), sh, "NEW").Frames[sh]; got == nil || !bytes.Equal(got, again) || !bytes.Contains(got, []byte("NEW")) {
						t.Fatalf("%s row %d %v: reframed %q", name, i, sh, got)
					}
					if sh != message.ShapeSSEPlain && !bytes.Contains(Reframe(d, sh, "NEW").Frames[sh], []byte(`"value":`+value+`,"cursor":"NEW"}`)) {
						t.Fatalf("%s row %d %v: reframed without the derived value", name, i, sh)
					}
				}
			}
		}
	}
	if Derive(&message.Message{}, message.ShapeEnvelope, nil, []byte(value)) != nil {
		t.Fatal("an envelope derived without a head")
	}
}
