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
		kind string // put, del, seed, seeddel, start, done
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

// The same View while nothing changes; a new one after a change; frames
// built once per message, shape and cursor, each with the cursor.
func TestViewShared(t *testing.T) {
	tbl := New(Config{Logger: discard()})
	tbl.Put(msg("a", 0, 1))
	v := tbl.View()
	if tbl.View() != v {
		t.Fatal("a second View without a change is not the same")
	}
	all := v.Messages(func([]byte) bool { return true })
	f1 := v.Frames(all, message.ShapeSSEEnvelope, "CUR")
	f2 := v.Frames(all, message.ShapeSSEEnvelope, "CUR")
	if len(f1) != 1 || f1[0] != f2[0] {
		t.Fatal("frames for the same point are not shared")
	}
	if got := string(f1[0].Frames[message.ShapeSSEEnvelope]); !strings.Contains(got, "id: CUR\n") || !strings.Contains(got, `"cursor":"CUR"}`) {
		t.Fatalf("SSE frame %q lacks the snapshot point", got)
	}
	if f3 := v.Frames(all, message.ShapeSSEEnvelope, "OTHER"); f3[0] == f1[0] {
		t.Fatal("frames of another point are the first point's")
	}
	if p := v.Frames(all, message.ShapePlain, "CUR"); p[0] != all[0] {
		t.Fatal("a plain frame is built again (it carries no cursor)")
	}
	tbl.Put(msg("b", 0, 2))
	if tbl.View() == v {
		t.Fatal("View after a change is the old one")
	}
}

// At the bound while seeding, a seeded record never takes the place of
// what the publisher put or deleted, so seeding never brings back a value
// the publisher replaced, nor a key it deleted; seeded records make room
// for each other by record time, not by the order seeding reads them in.
func TestSeedAtBound(t *testing.T) {
	type op struct {
		kind string // put, del, seed
		key  string
		p    int32
		o    int64
		ts   int64
	}
	for _, tc := range []struct {
		name      string
		max       int
		ops       []op
		want      []string
		evictions uint64
	}{
		{"a replaced value stays replaced", 2, []op{{"put", "a", 0, 100, 0}, {"seed", "b", 0, 1, 0}, {"seed", "c", 1, 2, 0}, {"seed", "a", 0, 50, 0}},
			[]string{"a@0/100", "c@1/2"}, 1},
		{"a deleted key stays deleted", 2, []op{{"del", "a", 0, 100, 0}, {"seed", "b", 0, 1, 0}, {"seed", "c", 1, 2, 0}, {"seed", "a", 0, 50, 0}},
			[]string{"c@1/2"}, 1},
		{"the most recent seeded record stays", 1, []op{{"seed", "recent", 0, 99, 2_000_000}, {"seed", "old", 1, 0, 1_000}},
			[]string{"recent@0/99"}, 1},
		{"an older seeded record makes room", 1, []op{{"seed", "old", 1, 0, 1_000}, {"seed", "recent", 0, 99, 2_000_000}},
			[]string{"recent@0/99"}, 1},
		{"the publisher evicts seeded records first", 2, []op{{"seed", "s", 0, 1, 0}, {"put", "a", 0, 10, 0}, {"put", "b", 0, 11, 0}},
			[]string{"a@0/10", "b@0/11"}, 1},
		{"no key back below what the publisher evicted", 1, []op{{"put", "a", 0, 10, 0}, {"put", "b", 0, 11, 0}, {"del", "b", 0, 12, 0}, {"seed", "a", 0, 5, 0}},
			nil, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tbl := New(Config{MaxKeys: tc.max, Logger: discard()})
			tbl.StartSeeding()
			for _, o := range tc.ops {
				m := msg(o.key, o.p, o.o)
				m.Timestamp = o.ts
				switch o.kind {
				case "put":
					tbl.Put(m)
				case "del":
					tbl.Delete([]byte(o.key), o.p, o.o)
				case "seed":
					tbl.Seed(m)
				}
			}
			tbl.Seeded()
			if got := contents(tbl); !slices.Equal(got, tc.want) {
				t.Fatalf("table %q, want %q", got, tc.want)
			}
			if st := tbl.Stats(); st.Evictions != tc.evictions {
				t.Fatalf("%d evictions, want %d", st.Evictions, tc.evictions)
			}
		})
	}
}

// After seeding, seeded keys are evicted before what the publisher put,
// oldest record first.
func TestSeededJoinEvictionOrder(t *testing.T) {
	tbl := New(Config{MaxKeys: 3, Logger: discard()})
	tbl.StartSeeding()
	for _, s := range []struct {
		key string
		ts  int64
	}{{"new", 3000}, {"old", 1000}} {
		m := msg(s.key, 0, s.ts)
		m.Timestamp = s.ts
		tbl.Seed(m)
	}
	tbl.Put(msg("live", 1, 1))
	tbl.Seeded()
	tbl.Put(msg("x", 1, 2))
	if got := contents(tbl); !slices.Equal(got, []string{"new@0/3000", "live@1/1", "x@1/2"}) {
		t.Fatalf("after one eviction: %q", got)
	}
	tbl.Put(msg("y", 1, 3))
	if got := contents(tbl); !slices.Equal(got, []string{"live@1/1", "x@1/2", "y@1/3"}) {
		t.Fatalf("after two evictions: %q", got)
	}
}
