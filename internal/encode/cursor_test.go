package encode

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

var allShapes = [message.NumShapes]bool{true, true, true, true}

func textOf(t *testing.T, f []byte) string {
	t.Helper()
	p, ok := wsframe.TextPayload(f)
	if !ok {
		t.Fatalf("not a text frame: %q", f)
	}
	return string(p)
}

func TestEncodeAtCursor(t *testing.T) {
	e := New(Options{})
	pos := wsdest.Cursor{Topic: wsdest.NewTopicIdentity("t", [16]byte{7})}
	tests := []struct {
		name  string
		value string
		plain bool
	}{
		{"json", `{"a":1}`, true},
		{"multi-line json", "{\n\"a\": 1\n}", true},
		{"text", "hello", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &wsdest.Record{Topic: "t", Partition: 1, Offset: int64(10 + i), Timestamp: time.UnixMilli(5), Key: []byte("k"), Value: []byte(tt.value)}
			msgs := e.EncodeAt(nil, rec, allShapes, &pos)
			if len(msgs) != 1 {
				t.Fatalf("%d messages", len(msgs))
			}
			m := msgs[0]
			want := wsdest.Cursor{Topic: pos.Topic, Offsets: []int64{wsdest.Unknown, rec.Offset + 1}}
			if m.Cursor() != want.String() {
				t.Fatalf("cursor %q, want %q", m.Cursor(), want.String())
			}
			env := textOf(t, m.Frames[message.ShapeEnvelope])
			var v map[string]any
			if err := json.Unmarshal([]byte(env), &v); err != nil || v["cursor"] != m.Cursor() {
				t.Fatalf("envelope %s: %v, cursor %v", env, err, v["cursor"])
			}
			if !strings.HasSuffix(env, `,"cursor":"`+m.Cursor()+`"}`) {
				t.Fatalf("cursor is not the last member: %s", env)
			}
			sse := string(m.Frames[message.ShapeSSEEnvelope])
			if !strings.HasPrefix(sse, "id: "+m.Cursor()+"\ndata: ") || !strings.HasSuffix(sse, "\n\n") {
				t.Fatalf("SSE event %q", sse)
			}
			if got := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(sse, "id: "+m.Cursor()+"\ndata: "), "\n\n"), "\ndata: ", "\n"); got != env {
				t.Fatalf("SSE data %q != envelope %q", got, env)
			}
			if tt.plain != (m.Frames[message.ShapeSSEPlain] != nil) || tt.plain != (m.Frames[message.ShapePlain] != nil) {
				t.Fatalf("plain frames: ws %v sse %v, want %v", m.Frames[message.ShapePlain] != nil, m.Frames[message.ShapeSSEPlain] != nil, tt.plain)
			}
			for sh := range message.NumShapes {
				r := Reframe(m, sh, "NEW")
				if sh == message.ShapePlain {
					if r != m {
						t.Fatal("Reframe of plain copied")
					}
					continue
				}
				if r.Frames[sh] == nil && m.Frames[sh] != nil {
					t.Fatalf("Reframe %v lost the frame", sh)
				}
				if want := strings.ReplaceAll(string(m.Frames[sh]), m.Cursor(), "NEW"); m.Frames[sh] != nil && sh != message.ShapeEnvelope && string(r.Frames[sh]) != want {
					t.Fatalf("Reframe %v = %q, want %q", sh, r.Frames[sh], want)
				}
			}
			if got := textOf(t, Reframe(m, message.ShapeEnvelope, "NEW").Frames[message.ShapeEnvelope]); got != strings.ReplaceAll(env, m.Cursor(), "NEW") {
				t.Fatalf("Reframe envelope = %s", got)
			}
		})
	}
}

func TestEncodeAtRowsAndSkips(t *testing.T) {
	e := New(Options{})
	var pos wsdest.Cursor
	// A Quix protocol message yields nothing, but the position moves.
	proto := &wsdest.Record{Partition: 0, Offset: 3, Value: []byte(`{"C":"JT","K":"StreamEnd","V":{},"S":1,"E":2}`)}
	if msgs := e.EncodeAt(nil, proto, allShapes, &pos); len(msgs) != 0 {
		t.Fatalf("%d messages for a protocol record", len(msgs))
	}
	if o, _ := pos.Next(0); o != 4 {
		t.Fatalf("position %d after a skipped record, want 4", o)
	}
	rows := &wsdest.Record{Partition: 0, Offset: 4, Value: []byte(`{"C":"JT","K":"ParameterData","V":{"NumericValues":{"a":[1,2,3]},"Timestamps":[1,2,3]},"S":1,"E":2}`)}
	msgs := e.EncodeAt(nil, rows, allShapes, &pos)
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	for i, m := range msgs {
		c, err := wsdest.ParseCursor(m.Cursor())
		if err != nil {
			t.Fatal(err)
		}
		o, r := c.Next(0)
		wantO, wantR := int64(4), int32(i+1)
		if i == 2 {
			wantO, wantR = 5, 0
		}
		if o != wantO || r != wantR || m.Row != int32(i) || m.Rows != 3 {
			t.Fatalf("row %d: cursor at %d/%d, row %d/%d; want %d/%d", i, o, r, m.Row, m.Rows, wantO, wantR)
		}
	}
}

func TestNotices(t *testing.T) {
	tests := []struct {
		name string
		json []byte
		want string
	}{
		{"gap", GapNotice(2, 10, 20), `{"notice":"gap","partition":2,"from":10,"to":20}`},
		{"reset", ResetNotice("topic_recreated"), `{"notice":"reset","reason":"topic_recreated"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.json) != tt.want {
				t.Fatalf("%s, want %s", tt.json, tt.want)
			}
			if Notice(message.ShapePlain, tt.json) != nil {
				t.Fatal("plain clients get notices")
			}
			if got := textOf(t, Notice(message.ShapeEnvelope, tt.json).Frames[message.ShapeEnvelope]); got != tt.want {
				t.Fatalf("envelope notice %s", got)
			}
			if got := string(Notice(message.ShapeSSEPlain, tt.json).Frames[message.ShapeSSEPlain]); got != "data: "+tt.want+"\n\n" {
				t.Fatalf("SSE notice %q", got)
			}
		})
	}
}

// TestEncodeKeptReframe: a message built by EncodeKept while only plain
// clients are subscribed (no envelope frame, the envelope's head kept)
// gives, through Reframe, byte for byte the frames EncodeAt builds for
// clients subscribed at publish time, in every shape, with its own cursor
// or another; so do non-JSON values (kept with their envelope frame) and
// the rows of a Quix record, with headers and a key.
func TestEncodeKeptReframe(t *testing.T) {
	hs := []wsdest.Header{{Key: "h", Value: []byte("v")}, {Key: "bin", Value: []byte{0xff}}, {Key: "h", Value: []byte("w\"\n")}}
	recs := []*wsdest.Record{
		{Value: []byte(`{"a":1}`), Headers: hs},
		{Value: []byte("plain text, not JSON"), Key: nil},
		{Value: []byte{0xff, 0x00}},
		{Value: nil}, // a tombstone
		{Value: []byte(tsPayload), Headers: append(quixHeaders("TimeseriesData", "JT"), hs...)},
		{Value: gz(strings.Repeat(" ", 70000) + `[{"Timestamp":1,"Id":"a","Value":"x"},{"Timestamp":2,"Id":"b","Value":"` + strings.Repeat("y", 70000) + `"}]`),
			Headers: quixHeaders("EventData[]", "[GZIP]J")}, // a row too long for the gap before it
		{Value: []byte(`[1,2,3]`)},
	}
	for i, r := range recs {
		r.Topic, r.Partition, r.Offset, r.Timestamp = "t", int32(i%2), int64(100+i), time.UnixMilli(int64(1700000000000+i))
		if r.Key == nil && i != 1 {
			r.Key = []byte(fmt.Sprintf("k%d", i))
		}
	}
	e := New(Options{})
	start := wsdest.Cursor{Topic: wsdest.NewTopicIdentity("t", [16]byte{9}), Since: time.UnixMilli(1)}
	livePos, keptPos := start.Clone(), start.Clone()
	var live, kept []*message.Message
	for _, r := range recs {
		live = e.EncodeAt(live, r, allShapes, &livePos)
		kept = e.EncodeKept(kept, r, plainOnly, &keptPos)
	}
	if len(live) != len(kept) || len(live) != 9 {
		t.Fatalf("%d live messages, %d kept, want 9", len(live), len(kept))
	}
	if livePos.String() != keptPos.String() {
		t.Fatalf("positions after: %s live, %s kept", livePos.String(), keptPos.String())
	}
	for i, k := range kept {
		l := live[i]
		if k.Cursor() != l.Cursor() || k.Cursor() == "" {
			t.Fatalf("message %d: cursor %q, live %q", i, k.Cursor(), l.Cursor())
		}
		if !bytes.Equal(k.Frames[message.ShapePlain], l.Frames[message.ShapePlain]) {
			t.Fatalf("message %d: plain frame %q, live %q", i, k.Frames[message.ShapePlain], l.Frames[message.ShapePlain])
		}
		if k.Frames[message.ShapePlain] != nil && (k.Frames[message.ShapeEnvelope] != nil || k.Head() == "") {
			t.Fatalf("message %d: a JSON value kept with an envelope frame, or without its head", i)
		}
		for sh := range message.NumShapes {
			if Deliverable(k, sh) != (l.Frames[sh] != nil) {
				t.Fatalf("message %d: Deliverable(%v) = %v, live frame %v", i, sh, Deliverable(k, sh), l.Frames[sh] != nil)
			}
			if sh == message.ShapePlain || l.Frames[sh] == nil {
				continue
			}
			if got := Reframe(k, sh, k.Cursor()).Frames[sh]; !bytes.Equal(got, l.Frames[sh]) {
				t.Fatalf("message %d, %v: reframed\n%q\nlive\n%q", i, sh, got, l.Frames[sh])
			}
			if got, want := Reframe(k, sh, "NEW").Frames[sh], Reframe(l, sh, "NEW").Frames[sh]; !bytes.Equal(got, want) {
				t.Fatalf("message %d, %v: reframed with another cursor\n%q\nwant\n%q", i, sh, got, want)
			}
		}
	}
}

// TestRowFramesInPlace: the plain frames of a record's rows, built where
// the decoder wrote the rows, stay as they are once the encoder decodes
// the next records, and none reaches into the next.
func TestRowFramesInPlace(t *testing.T) {
	e := New(Options{})
	rec := func(v string) *wsdest.Record {
		return &wsdest.Record{Topic: "t", Value: []byte(v), Headers: quixHeaders("TimeseriesData", "JT")}
	}
	first := e.Encode(nil, rec(tsPayload), plainOnly)
	want := []string{textOf(t, first[0].Frames[message.ShapePlain]), textOf(t, first[1].Frames[message.ShapePlain])}
	if want[0] != tsRows[0] || want[1] != tsRows[1] {
		t.Fatalf("rows %q, want %q", want, tsRows)
	}
	f0, f1 := first[0].Frames[message.ShapePlain], first[1].Frames[message.ShapePlain]
	if cap(f0) != len(f0) || cap(f1) != len(f1) {
		t.Fatal("a frame's capacity reaches past it")
	}
	for range 3 {
		e.Encode(nil, rec(`{"Timestamps":[7,8],"NumericValues":{"b":[3,4]}}`), plainOnly)
	}
	for i, m := range first {
		if got := textOf(t, m.Frames[message.ShapePlain]); got != want[i] {
			t.Fatalf("row %d became %q", i, got)
		}
	}
}
