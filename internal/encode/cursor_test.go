package encode

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/hub"
	"github.com/wsdest/wsdest/internal/wsframe"
)

var allShapes = [hub.NumShapes]bool{true, true, true, true}

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
			if m.Cursor != want.String() {
				t.Fatalf("cursor %q, want %q", m.Cursor, want.String())
			}
			env := textOf(t, m.Frames[hub.ShapeEnvelope])
			var v map[string]any
			if err := json.Unmarshal([]byte(env), &v); err != nil || v["cursor"] != m.Cursor {
				t.Fatalf("envelope %s: %v, cursor %v", env, err, v["cursor"])
			}
			if !strings.HasSuffix(env, `,"cursor":"`+m.Cursor+`"}`) {
				t.Fatalf("cursor is not the last member: %s", env)
			}
			sse := string(m.Frames[hub.ShapeSSEEnvelope])
			if !strings.HasPrefix(sse, "id: "+m.Cursor+"\ndata: ") || !strings.HasSuffix(sse, "\n\n") {
				t.Fatalf("SSE event %q", sse)
			}
			if got := strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(sse, "id: "+m.Cursor+"\ndata: "), "\n\n"), "\ndata: ", "\n"); got != env {
				t.Fatalf("SSE data %q != envelope %q", got, env)
			}
			if tt.plain != (m.Frames[hub.ShapeSSEPlain] != nil) || tt.plain != (m.Frames[hub.ShapePlain] != nil) {
				t.Fatalf("plain frames: ws %v sse %v, want %v", m.Frames[hub.ShapePlain] != nil, m.Frames[hub.ShapeSSEPlain] != nil, tt.plain)
			}
			for sh := range hub.NumShapes {
				r := Reframe(m, sh, "NEW")
				if sh == hub.ShapePlain {
					if r != m {
						t.Fatal("Reframe of plain copied")
					}
					continue
				}
				if r.Frames[sh] == nil && m.Frames[sh] != nil {
					t.Fatalf("Reframe %v lost the frame", sh)
				}
				if want := strings.ReplaceAll(string(m.Frames[sh]), m.Cursor, "NEW"); m.Frames[sh] != nil && sh != hub.ShapeEnvelope && string(r.Frames[sh]) != want {
					t.Fatalf("Reframe %v = %q, want %q", sh, r.Frames[sh], want)
				}
			}
			if got := textOf(t, Reframe(m, hub.ShapeEnvelope, "NEW").Frames[hub.ShapeEnvelope]); got != strings.ReplaceAll(env, m.Cursor, "NEW") {
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
		c, err := wsdest.ParseCursor(m.Cursor)
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
			if Notice(hub.ShapePlain, tt.json) != nil {
				t.Fatal("plain clients get notices")
			}
			if got := textOf(t, Notice(hub.ShapeEnvelope, tt.json).Frames[hub.ShapeEnvelope]); got != tt.want {
				t.Fatalf("envelope notice %s", got)
			}
			if got := string(Notice(hub.ShapeSSEPlain, tt.json).Frames[hub.ShapeSSEPlain]); got != "data: "+tt.want+"\n\n" {
				t.Fatalf("SSE notice %q", got)
			}
		})
	}
}
