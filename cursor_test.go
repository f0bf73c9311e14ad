package wsdest

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func testTopic() TopicIdentity {
	return NewTopicIdentity("input", [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
}

func TestCursorRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    Cursor
	}{
		{"empty", Cursor{Topic: testTopic()}},
		{"offsets", Cursor{Topic: testTopic(), Offsets: []int64{0, 17, 1 << 40, Unknown}}},
		{"since", Cursor{Topic: testTopic(), Since: time.UnixMilli(1795770742528), Offsets: []int64{Unknown, 5}}},
		{"partial", Cursor{Topic: testTopic(), Offsets: []int64{3, 9}, PartialPartition: 1, PartialRows: 4}},
		{"no id", Cursor{Topic: NewTopicIdentity("x", [16]byte{}), Offsets: []int64{1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.c.String()
			if strings.ContainsAny(s, "+/=?&# ") {
				t.Fatalf("cursor %q is not URL-safe", s)
			}
			got, err := ParseCursor(s)
			if err != nil {
				t.Fatalf("ParseCursor(%q): %v", s, err)
			}
			want := tt.c
			if want.Offsets == nil {
				want.Offsets = []int64{}
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip: got %+v, want %+v", got, want)
			}
		})
	}
}

func TestParseCursorRejects(t *testing.T) {
	good := Cursor{Topic: testTopic(), Offsets: []int64{1, 2}}.String()
	flip := []byte(good)
	flip[len(flip)/2] ^= 1
	tests := []struct {
		name, in string
		want     error
	}{
		{"empty", "", ErrCursorSyntax},
		{"not base64", "abc$%", ErrCursorSyntax},
		{"short", "AAAA", ErrCursorSyntax},
		{"truncated", good[:len(good)-3], ErrCursorSyntax},
		{"flipped bit", string(flip), ErrCursorSyntax},
		{"padded", good + "==", ErrCursorSyntax},
		{"garbage", strings.Repeat("x", 40), ErrCursorSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseCursor(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("ParseCursor(%q) = %v, want %v", tt.in, err, tt.want)
			}
		})
	}
}

func TestCursorAdvance(t *testing.T) {
	var c Cursor
	c.Advance(1, 10, 0, 1)
	if got, _ := c.Next(0); got != Unknown {
		t.Fatalf("partition 0: %d, want Unknown", got)
	}
	if got, _ := c.Next(1); got != 11 {
		t.Fatalf("partition 1: %d, want 11", got)
	}
	// A record of three rows: after row 0 and 1 the record is partial.
	c.Advance(1, 12, 0, 3)
	if o, r := c.Next(1); o != 12 || r != 1 {
		t.Fatalf("after row 0: %d/%d, want 12/1", o, r)
	}
	if !c.Delivered(1, 12, 0) || c.Delivered(1, 12, 1) || !c.Delivered(1, 11, 0) {
		t.Fatal("Delivered wrong for a partial record")
	}
	c.Advance(1, 12, 1, 3)
	c.Advance(1, 12, 1, 3) // again: no effect
	if o, r := c.Next(1); o != 12 || r != 2 {
		t.Fatalf("after row 1: %d/%d, want 12/2", o, r)
	}
	c.Advance(1, 12, 2, 3)
	if o, r := c.Next(1); o != 13 || r != 0 {
		t.Fatalf("after row 2: %d/%d, want 13/0", o, r)
	}
	c.Advance(1, 5, 0, 1) // older: ignored
	if o, _ := c.Next(1); o != 13 {
		t.Fatalf("moved backwards to %d", o)
	}
}

func TestCursorCovers(t *testing.T) {
	a := Cursor{Offsets: []int64{5, Unknown, 7}}
	tests := []struct {
		name string
		b    Cursor
		want bool
	}{
		{"equal", Cursor{Offsets: []int64{5, Unknown, 7}}, true},
		{"ahead", Cursor{Offsets: []int64{6, 1, 7}}, true},
		{"behind", Cursor{Offsets: []int64{4, 1, 9}}, false},
		{"missing partition", Cursor{Offsets: []int64{5}}, false},
		{"partial at the offset", Cursor{Offsets: []int64{5, 0, 7}, PartialPartition: 0, PartialRows: 2}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.b.Covers(&a); got != tt.want {
				t.Fatalf("%v.Covers(%v) = %v, want %v", tt.b.Offsets, a.Offsets, got, tt.want)
			}
		})
	}
	p := Cursor{Offsets: []int64{5}, PartialPartition: 0, PartialRows: 2}
	if (&Cursor{Offsets: []int64{5}}).Covers(&p) {
		t.Fatal("a cursor before the partial rows covers them")
	}
}

func FuzzParseCursor(f *testing.F) {
	f.Add(Cursor{Topic: testTopic(), Offsets: []int64{1, 2}}.String())
	f.Add(Cursor{Topic: testTopic(), Since: time.UnixMilli(1), Offsets: []int64{Unknown, 3}, PartialPartition: 1, PartialRows: 2}.String())
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCursor(s)
		if err != nil {
			if !errors.Is(err, ErrCursorSyntax) && !errors.Is(err, ErrCursorVersion) {
				t.Fatalf("unexpected error type: %v", err)
			}
			return
		}
		again, err := ParseCursor(c.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", c.String(), err)
		}
		if !reflect.DeepEqual(c, again) {
			t.Fatalf("round trip: %+v != %+v", c, again)
		}
	})
}

// TestAppendText: the text is appended after what b holds, whatever room
// b has.
func TestAppendText(t *testing.T) {
	c := Cursor{Topic: testTopic(), Since: time.UnixMilli(1700000000000), Offsets: []int64{5, Unknown, 1 << 40}, PartialPartition: 2, PartialRows: 3}
	want := c.String()
	for _, b := range [][]byte{nil, []byte("prefix"), make([]byte, 3, 200)} {
		got := c.AppendText(b)
		if string(got) != string(b)+want {
			t.Fatalf("AppendText(%q) = %q, want %q", b, got, string(b)+want)
		}
	}
	if p, err := ParseCursor(want); err != nil || p.String() != want {
		t.Fatalf("ParseCursor: %v, %v", p, err)
	}
}
