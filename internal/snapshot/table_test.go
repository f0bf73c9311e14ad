package snapshot

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/testlog"
	"github.com/wsdest/wsdest/internal/wsframe"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func msg(key string, p int32, o int64) *message.Message {
	m := &message.Message{Key: []byte(key), Partition: p, Offset: o, Rows: 1}
	m.Frames[message.ShapePlain] = wsframe.Text([]byte(fmt.Sprintf(`{"k":%q,"o":%d}`, key, o)))
	m.Origin = &message.Origin{Head: `{"topic":"t","partition":0,"offset":0,"timestamp":0,"key":"` + key + `","headers":{},"value":`}
	return m
}

// contents lists the table as key@partition/offset, in partition and
// offset order.
func contents(t *Table) []string {
	var out []string
	for _, m := range t.View().Messages(func([]byte) bool { return true }) {
		out = append(out, fmt.Sprintf("%s@%d/%d", m.Key, m.Partition, m.Offset))
	}
	return out
}

func TestTable(t *testing.T) {
	type op struct {
		kind string // put, del, seed, seeddel, start, done, reset
		key  string
		p    int32
		o    int64
	}
	for _, tc := range []struct {
		name string
		max  int
		ops  []op
		want []string
	}{
		{"latest wins", 0, []op{{"put", "a", 0, 1}, {"put", "b", 0, 2}, {"put", "a", 0, 3}}, []string{"b@0/2", "a@0/3"}},
		{"tombstone removes", 0, []op{{"put", "a", 0, 1}, {"put", "b", 1, 1}, {"del", "a", 0, 2}}, []string{"b@1/1"}},
		{"no key, no entry", 0, []op{{"put", "", 0, 1}}, nil},
		{"bound evicts least recently updated", 2, []op{{"put", "a", 0, 1}, {"put", "b", 0, 2}, {"put", "a", 0, 3}, {"put", "c", 0, 4}}, []string{"a@0/3", "c@0/4"}},
		{"seed below live is ignored", 0, []op{{"start", "", 0, 0}, {"put", "a", 0, 10}, {"seed", "a", 0, 5}, {"done", "", 0, 0}}, []string{"a@0/10"}},
		{"seed of another partition does not replace live", 0, []op{{"start", "", 0, 0}, {"put", "a", 1, 1}, {"seed", "a", 0, 5}, {"done", "", 0, 0}}, []string{"a@1/1"}},
		{"seed then seed", 0, []op{{"start", "", 0, 0}, {"seed", "a", 0, 1}, {"seed", "a", 0, 2}, {"seed", "b", 0, 3}, {"done", "", 0, 0}}, []string{"a@0/2", "b@0/3"}},
		{"live tombstone while seeding keeps a seed out", 0, []op{{"start", "", 0, 0}, {"del", "a", 0, 10}, {"seed", "a", 0, 5}, {"done", "", 0, 0}}, nil},
		{"a seeded tombstone removes a seeded key", 0, []op{{"start", "", 0, 0}, {"seed", "a", 0, 1}, {"seeddel", "a", 0, 2}, {"done", "", 0, 0}}, nil},
		{"a seeded tombstone below live is ignored", 0, []op{{"start", "", 0, 0}, {"put", "a", 0, 9}, {"seeddel", "a", 0, 2}, {"done", "", 0, 0}}, []string{"a@0/9"}},
		{"a reset while seeding keeps seeding out", 0, []op{{"start", "", 0, 0}, {"seed", "a", 0, 1}, {"reset", "", 0, 0}, {"seed", "b", 0, 2}, {"seeddel", "a", 0, 3}, {"put", "c", 0, 0}, {"done", "", 0, 0}}, []string{"c@0/0"}},
		{"live replaces seeded", 0, []op{{"start", "", 0, 0}, {"seed", "a", 0, 1}, {"put", "a", 0, 7}, {"done", "", 0, 0}}, []string{"a@0/7"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := New(Config{MaxKeys: tc.max, Logger: discard()})
			for _, o := range tc.ops {
				var key []byte
				if o.key != "" {
					key = []byte(o.key)
				}
				switch o.kind {
				case "put":
					m := msg(o.key, o.p, o.o)
					m.Key = key
					tbl.Put(m)
				case "del":
					tbl.Delete(key, o.p, o.o)
				case "seed":
					tbl.Seed(msg(o.key, o.p, o.o))
				case "seeddel":
					tbl.SeedDelete(key, o.p, o.o)
				case "start":
					tbl.StartSeeding()
				case "done":
					tbl.Seeded()
				case "reset":
					tbl.Reset()
				}
			}
			if got := contents(tbl); !slices.Equal(got, tc.want) {
				t.Fatalf("table %q, want %q", got, tc.want)
			}
			if st := tbl.Stats(); st.Keys != len(tc.want) {
				t.Fatalf("Stats().Keys %d, want %d", st.Keys, len(tc.want))
			}
		})
	}
}

// The bound counts every eviction, and Log writes one line for them.
func TestTableEvictionsCountedAndLogged(t *testing.T) {
	var buf testlog.Buffer
	tbl := New(Config{MaxKeys: 3, Logger: buf.Logger(-4)})
	for i := range 10 {
		tbl.Put(msg(fmt.Sprintf("k%d", i), 0, int64(i)))
	}
	if st := tbl.Stats(); st.Evictions != 7 || st.Keys != 3 {
		t.Fatalf("stats %+v, want 7 evictions and 3 keys", st)
	}
	tbl.Log()
	tbl.Log()
	if n := strings.Count(buf.String(), "the table is full"); n != 1 || !strings.Contains(buf.String(), "evicted=7") {
		t.Fatalf("log:\n%s", buf.String())
	}
}

// The same View while nothing changes; a new one after a change, and the
// Capture taken before it still makes the view of its own moment; a
// snapshot frame carries the point.
func TestViewShared(t *testing.T) {
	tbl := New(Config{Logger: discard()})
	tbl.Put(msg("a", 0, 1))
	before := tbl.Capture()
	v := tbl.View()
	if tbl.View() != v || tbl.ViewOf(before) != v {
		t.Fatal("a second View without a change is not the same")
	}
	all := v.Messages(func([]byte) bool { return true })
	f := Frame(all[0], message.ShapeSSEEnvelope, "CUR")
	if got := string(f.Frames[message.ShapeSSEEnvelope]); !strings.Contains(got, "id: CUR\n") || !strings.Contains(got, `"cursor":"CUR"}`) {
		t.Fatalf("SSE frame %q lacks the snapshot point", got)
	}
	if p := Frame(all[0], message.ShapePlain, "CUR"); p != all[0] {
		t.Fatal("a plain frame is built again (it carries no cursor)")
	}
	tbl.Put(msg("b", 0, 2))
	if tbl.View() == v {
		t.Fatal("View after a change is the old one")
	}
	if got := tbl.ViewOf(before).Len(); got != 1 {
		t.Fatalf("a capture taken before a change makes a view of %d keys, want 1", got)
	}
}

// Clients of one view at one point share its frames; another point's
// are built for the caller alone; past maxSharedBytes nothing more is
// kept.
func TestSharedFrames(t *testing.T) {
	tbl := New(Config{Logger: discard()})
	for _, m := range keptMessages(200) {
		tbl.Put(m)
	}
	v := tbl.View()
	all := v.Messages(func([]byte) bool { return true })
	a := v.SharedFrame(all[0], message.ShapeEnvelope, "P1")
	if a == nil || v.SharedFrame(all[0], message.ShapeEnvelope, "P1") != a {
		t.Fatal("a second client at the same point did not get the same frame")
	}
	if !strings.Contains(string(a.Frames[message.ShapeEnvelope]), `"cursor":"P1"`) {
		t.Fatalf("frame %q lacks the point", a.Frames[message.ShapeEnvelope])
	}
	b := v.SharedFrame(all[0], message.ShapeEnvelope, "P2")
	if b == a || !strings.Contains(string(b.Frames[message.ShapeEnvelope]), `"cursor":"P2"`) {
		t.Fatal("a client at another point got the first point's frame")
	}
	v.fbytes = maxSharedBytes // as if full
	c := v.SharedFrame(all[1], message.ShapeEnvelope, "P1")
	if c == nil || v.SharedFrame(all[1], message.ShapeEnvelope, "P1") == c {
		t.Fatal("a frame past the bound was kept for sharing")
	}
}
