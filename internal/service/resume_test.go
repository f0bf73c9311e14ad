package service_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/e2etest"
)

// envMsg is an envelope message or a notice, as a client decodes it.
type envMsg struct {
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Key       string          `json:"key"`
	Value     json.RawMessage `json:"value"`
	Cursor    string          `json:"cursor"`
	Notice    string          `json:"notice"`
	Reason    string          `json:"reason"`
	From      int64           `json:"from"`
	To        int64           `json:"to"`
	raw       string
}

func decodeEnv(t *testing.T, b []byte) envMsg {
	t.Helper()
	var m envMsg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not JSON: %s: %v", b, err)
	}
	m.raw = string(b)
	return m
}

// value returns the "i" of a record produced by produceN.
func (m envMsg) value(t *testing.T) int {
	t.Helper()
	var v struct{ I int }
	if err := json.Unmarshal(m.Value, &v); err != nil {
		t.Fatalf("value %s: %v", m.Value, err)
	}
	return v.I
}

// produceN produces records from to to-1, keyed over six keys (so spread
// over the partitions), each {"i":n}; at, if not zero, stamps them (at+n
// ms).
func produceN(p *e2etest.Producer, from, to int, at time.Time) {
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		r := e2etest.Record([]byte(fmt.Sprintf("k%d", i%6)), []byte(fmt.Sprintf(`{"i":%d}`, i)))
		if !at.IsZero() {
			r.Timestamp = at.Add(time.Duration(i) * time.Millisecond)
		}
		recs = append(recs, r)
	}
	p.ProduceRecords(recs...)
}

func readEnv(t *testing.T, c *e2etest.Client, n int) []envMsg {
	t.Helper()
	var out []envMsg
	for _, b := range c.NextN(t, n) {
		out = append(out, decodeEnv(t, b))
	}
	return out
}

// checkStream fails unless got holds exactly the values want (in any
// order across partitions), each once, every partition in offset order.
func checkStream(t *testing.T, got []envMsg, want []int) {
	t.Helper()
	seen := map[int]int{}
	last := map[int32]int64{}
	for _, m := range got {
		if m.Notice != "" {
			t.Fatalf("unexpected notice %s", m.raw)
		}
		seen[m.value(t)]++
		if o, ok := last[m.Partition]; ok && m.Offset <= o {
			t.Fatalf("partition %d out of order: offset %d after %d", m.Partition, m.Offset, o)
		}
		last[m.Partition] = m.Offset
	}
	for _, v := range want {
		if seen[v] != 1 {
			t.Fatalf("value %d delivered %d times (got %d messages, want %d)", v, seen[v], len(got), len(want))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d messages, want %d", len(got), len(want))
	}
}

func span(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// A client that drops after ten records and comes back with the last
// cursor it got, to the same process or to a second one, gets everything
// it missed, once, in partition order, then the live stream.
func TestResumeByCursor(t *testing.T) {
	b := e2etest.StartBroker(t, "resume", 3)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)

	a := e2etest.Connect(t, svc.URL("/ws?envelope=true"))
	produceN(p, 0, 30, time.Time{})
	first := readEnv(t, a, 10)
	_ = a.Close()
	cursor := first[9].Cursor
	if _, err := wsdest.ParseCursor(cursor); err != nil {
		t.Fatalf("envelope cursor %q: %v", cursor, err)
	}
	produceN(p, 30, 50, time.Time{})

	second := e2etest.StartService(t, e2etest.BrokerEnv(b))
	second.WaitReady(t)
	for name, s := range map[string]*e2etest.Service{"same process": svc, "second process": second} {
		t.Run(name, func(t *testing.T) {
			c := e2etest.Connect(t, s.URL("/ws?envelope=true&from="+cursor))
			rest := readEnv(t, c, 40)
			checkStream(t, append(append([]envMsg(nil), first...), rest...), span(0, 50))
			c.ExpectQuiet(t)
			// Resuming again from the middle of the catch-up.
			c2 := e2etest.Connect(t, s.URL("/ws?envelope=true&from="+rest[19].Cursor))
			checkStream(t, append(append(append([]envMsg(nil), first...), rest[:20]...), readEnv(t, c2, 20)...), span(0, 50))
			c2.ExpectQuiet(t)
		})
	}
	// Both resumed clients of each process are live now.
}

func TestResumeLiveAfterCatchUp(t *testing.T) {
	b := e2etest.StartBroker(t, "resume", 2)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	a := e2etest.Connect(t, svc.URL("/ws?envelope=true"))
	produceN(p, 0, 5, time.Time{})
	got := readEnv(t, a, 5)
	c := e2etest.Connect(t, svc.URL("/ws?envelope=true&from="+got[1].Cursor))
	produceN(p, 5, 8, time.Time{})
	checkStream(t, append(got[:2:2], readEnv(t, c, 6)...), span(0, 8))
	c.ExpectQuiet(t)
}

func TestStartPositions(t *testing.T) {
	b := e2etest.StartBroker(t, "starts", 3)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	old := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	recent := time.Now().Truncate(time.Millisecond)
	produceN(p, 0, 10, old)
	produceN(p, 10, 20, recent)

	tests := []struct {
		name, query string
		want        []int
	}{
		{"earliest", "from=earliest", span(0, 20)},
		{"time", "from=" + url.QueryEscape(recent.Add(-time.Hour).UTC().Format(time.RFC3339)), span(10, 20)},
		{"duration", "from=-1h", span(10, 20)},
		{"last", "last=5", span(15, 20)},
	}
	clients := make([]*e2etest.Client, len(tests))
	for i, tt := range tests {
		c := e2etest.Connect(t, svc.URL("/ws?envelope=true&"+tt.query))
		checkStream(t, readEnv(t, c, len(tt.want)), tt.want)
		clients[i] = c
	}
	produceN(p, 20, 21, time.Time{})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := readEnv(t, clients[i], 1)
			if v := m[0].value(t); v != 20 {
				t.Fatalf("live record %d, want 20", v)
			}
			clients[i].ExpectQuiet(t)
		})
	}
}

// last=N after a restart: the process's history is empty, the records
// come from Kafka, and on a key path only matching ones count.
func TestLastFromKafka(t *testing.T) {
	b := e2etest.StartBroker(t, "last", 3)
	p := e2etest.NewProducer(t, b)
	produceN(p, 0, 30, time.Time{})
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	c := e2etest.Connect(t, svc.URL("/ws/k1?envelope=true&last=3"))
	checkStream(t, readEnv(t, c, 3), []int{13, 19, 25})
	c.ExpectQuiet(t)
}

func deleteRecords(t *testing.T, b *e2etest.Broker, p *e2etest.Producer, part int32, before int64) {
	t.Helper()
	adm := kadm.NewClient(p.Client())
	o := kadm.Offsets{}
	o.Add(kadm.Offset{Topic: b.Topic(), Partition: part, At: before})
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	res, err := adm.DeleteRecords(ctx, o)
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("DeleteRecords: %v", err)
	}
}

// Records deleted from Kafka (retention, DeleteRecords) before a client
// resumes are announced by a gap notice with the missing offsets, then the
// records that still exist follow.
func TestResumeGap(t *testing.T) {
	b := e2etest.StartBroker(t, "gap", 1)
	// No in-memory history: the process has to ask Kafka.
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b).With(e2etest.Env{"HISTORY_BYTES": "0"}))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	a := e2etest.Connect(t, svc.URL("/ws?envelope=true"))
	produceN(p, 0, 20, time.Time{})
	got := readEnv(t, a, 6)
	deleteRecords(t, b, p, 0, 12)

	c := e2etest.Connect(t, svc.URL("/ws?envelope=true&from="+got[5].Cursor))
	n := decodeEnv(t, c.Next(t))
	if n.Notice != "gap" || n.Partition != 0 || n.From != 6 || n.To != 12 {
		t.Fatalf("first message %s, want a gap notice for offsets 6-11 of partition 0", n.raw)
	}
	checkStream(t, readEnv(t, c, 8), span(12, 20))
	c.ExpectQuiet(t)
	// Plain clients get no notices.
	plain := e2etest.Connect(t, svc.URL("/ws?from="+got[5].Cursor))
	if s := string(plain.Next(t)); s != `{"i":12}` {
		t.Fatalf("plain client's first message %s", s)
	}
}

// A cursor of a topic that was deleted and created again is recognised:
// the client is told, and gets the new topic from its start.
func TestResumeRecreatedTopic(t *testing.T) {
	b := e2etest.StartBroker(t, "again", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	a := e2etest.Connect(t, svc.URL("/ws?envelope=true"))
	produceN(p, 0, 5, time.Time{})
	cursor := readEnv(t, a, 5)[4].Cursor

	p = recreateTopic(t, b, p)
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	// The live client sees the new topic's records once wsdest follows it.
	e2etest.Eventually(t, "the recreated topic's first record", func() bool {
		produceN(p, 100, 101, time.Time{})
		cctx, ccancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer ccancel()
		_, err := a.NextText(cctx)
		return err == nil
	})
	c := e2etest.Connect(t, svc.URL("/ws?envelope=true&from="+cursor))
	n := decodeEnv(t, c.Next(t))
	if n.Notice != "reset" || n.Reason != "topic_recreated" {
		t.Fatalf("first message %s, want a reset notice", n.raw)
	}
	m := decodeEnv(t, c.Next(t))
	if m.Offset != 0 || m.value(t) != 100 {
		t.Fatalf("first record after the reset %s, want offset 0 of the new topic", m.raw)
	}
}

// recreateTopic deletes b's topic and creates it again with one
// partition, and returns a producer that never knew the old topic's id.
func recreateTopic(t *testing.T, b *e2etest.Broker, p *e2etest.Producer) *e2etest.Producer {
	t.Helper()
	adm := kadm.NewClient(p.Client())
	ctx, cancel := e2etest.Context(t)
	defer cancel()
	if _, err := adm.DeleteTopic(ctx, b.Topic()); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, b.Topic()); err != nil {
		t.Fatal(err)
	}
	return e2etest.NewProducer(t, b)
}

func TestBadStartPositions(t *testing.T) {
	b := e2etest.StartBroker(t, "bad", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	other := wsdest.Cursor{Topic: wsdest.NewTopicIdentity("another-topic", [16]byte{1}), Offsets: []int64{3}}.String()
	tests := []struct {
		name, query, want string
		header            http.Header
	}{
		{"garbage", "from=hello", "is not valid", nil},
		{"truncated", "from=" + other[:len(other)-4], "is not valid", nil},
		{"other topic", "from=" + other, "another topic", nil},
		{"bad time", "from=2026-02-30T00:00:00Z", "RFC 3339", nil},
		{"positive duration", "from=5m", "not valid", nil},
		{"bad last", "last=-1", "count", nil},
		{"last and from", "last=2&from=earliest", "combined", nil},
		{"sse header", "", "Last-Event-ID", http.Header{"Last-Event-Id": {"nope"}}},
		{"sse query", "lastEventId=nope", "lastEventId", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := e2etest.Context(t)
			defer cancel()
			if tt.header == nil && !strings.HasPrefix(tt.query, "lastEventId") {
				_, err := e2etest.Dial(ctx, svc.URL("/ws?"+tt.query))
				var de *e2etest.DialError
				if !errors.As(err, &de) || de.Status != http.StatusBadRequest || !strings.Contains(de.Body, tt.want) || strings.Count(strings.TrimSpace(de.Body), "\n") > 0 {
					t.Fatalf("websocket: %v, want 400 with one line naming %q", err, tt.want)
				}
			}
			_, resp, err := e2etest.DialSSE(ctx, svc.HTTPURL("/sse?"+tt.query), tt.header)
			if err != nil || resp.StatusCode != http.StatusBadRequest || !strings.Contains(resp.Header.Get("X-Test-Body"), tt.want) {
				t.Fatalf("sse: %v %v, want 400 naming %q", resp, err, tt.want)
			}
		})
	}
}

// A Quix record decodes into several messages that share its offset: a
// cursor taken in the middle of them resumes with the next row, from the
// history and from Kafka alike.
func TestResumeInsideQuixRecord(t *testing.T) {
	b := e2etest.StartBroker(t, "rows", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	a := e2etest.Connect(t, svc.URL("/ws?envelope=true"))
	p.Produce([]byte("car"), []byte(`{"C":"JT","K":"ParameterData","V":{"NumericValues":{"a":[1,2,3,4,5]},"Timestamps":[1,2,3,4,5]},"S":1,"E":2}`))
	first := readEnv(t, a, 2)
	cursor := first[1].Cursor
	second := e2etest.StartService(t, e2etest.BrokerEnv(b))
	second.WaitReady(t)
	for name, s := range map[string]*e2etest.Service{"history": svc, "kafka": second} {
		t.Run(name, func(t *testing.T) {
			c := e2etest.Connect(t, s.URL("/ws?envelope=true&from="+cursor))
			for i, m := range readEnv(t, c, 3) {
				var row struct{ A int }
				if err := json.Unmarshal(m.Value, &row); err != nil || row.A != i+3 || m.Offset != 0 {
					t.Fatalf("message %d: %s, want row a=%d of offset 0", i, m.raw, i+3)
				}
			}
			c.ExpectQuiet(t)
		})
	}
}

// withoutCursor returns an envelope without its cursor member, the last.
func withoutCursor(t *testing.T, env []byte) string {
	t.Helper()
	i := strings.LastIndex(string(env), `,"cursor":"`)
	if i < 0 || !strings.HasSuffix(string(env), `"}`) {
		t.Fatalf("no cursor at the end of %s", env)
	}
	return string(env[:i]) + "}"
}

// A history stored while only plain clients were connected keeps no
// envelope frames: a client that asks for envelopes later (WebSocket or
// SSE, from the earliest record, a cursor or last=N) gets them built from
// what it keeps, for JSON and non-JSON values, Quix rows, keys and
// headers, as a client connected at publish time gets them. (That one is
// connected to a second process: only the cursors, which carry the
// process's own start, differ.)
func TestResumeEnvelopeFromPlainHistory(t *testing.T) {
	b := e2etest.StartBroker(t, "lazy", 1)
	svc := e2etest.StartService(t, e2etest.BrokerEnv(b))
	svc.WaitReady(t)
	ref := e2etest.StartService(t, e2etest.BrokerEnv(b))
	ref.WaitReady(t)
	p := e2etest.NewProducer(t, b)
	plain := e2etest.Connect(t, svc.URL("/ws"))
	live := e2etest.Connect(t, ref.URL("/ws?envelope=true"))

	hs := []kgo.RecordHeader{e2etest.Header("h", "v\"\n"), e2etest.Header("bin", "\xff")}
	p.ProduceRecords(
		e2etest.Record([]byte("k1"), []byte(`{"a":1}`), hs...),
		e2etest.Record(nil, []byte("not JSON")),
		e2etest.Record([]byte{0xfe}, []byte{0xff, 0}),
		e2etest.Record([]byte("car"), []byte(`{"C":"JT","K":"ParameterData","V":{"NumericValues":{"a":[1,2,3]},"Timestamps":[1,2,3]},"S":1,"E":2}`), hs...),
		e2etest.Record([]byte("k2"), []byte(`{"b":2}`)),
	)
	const n = 7 // 1 + 1 + 1 + 3 rows + 1
	if got := plain.NextN(t, 5); string(got[4]) != `{"b":2}` {
		t.Fatalf("plain client got %q", got)
	}
	var want []string
	for _, env := range live.NextN(t, n) {
		want = append(want, withoutCursor(t, env))
	}
	check := func(t *testing.T, got [][]byte, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%d messages, want %d", len(got), len(want))
		}
		for i, env := range got {
			if s := withoutCursor(t, env); s != want[i] {
				t.Fatalf("message %d:\n%s\nwant\n%s", i, s, want[i])
			}
		}
	}

	t.Run("websocket", func(t *testing.T) {
		c := e2etest.Connect(t, svc.URL("/ws?envelope=true&from=earliest"))
		got := c.NextN(t, n)
		check(t, got, want)
		c.ExpectQuiet(t)
		// From the first row of the Quix record, inside it.
		mid := decodeEnv(t, got[3]).Cursor
		c2 := e2etest.Connect(t, svc.URL("/ws?envelope=true&from="+mid))
		rest := c2.NextN(t, n-4)
		check(t, rest, want[4:])
		for i, env := range rest {
			if string(env) != string(got[4+i]) {
				t.Fatalf("resumed from a row: message %d is %s, the first client's %s", i, env, got[4+i])
			}
		}
		c2.ExpectQuiet(t)
	})
	t.Run("sse", func(t *testing.T) {
		c := e2etest.ConnectSSE(t, svc.HTTPURL("/sse?envelope=true&from=earliest"), nil)
		var got [][]byte
		for range n {
			ev := c.Next(t)
			var env struct{ Cursor string }
			if err := json.Unmarshal([]byte(ev.Data), &env); err != nil || env.Cursor != ev.ID {
				t.Fatalf("event id %q, data %s: %v", ev.ID, ev.Data, err)
			}
			got = append(got, []byte(ev.Data))
		}
		check(t, got, want)
	})
	t.Run("last", func(t *testing.T) {
		c := e2etest.Connect(t, svc.URL("/ws?envelope=true&last=4"))
		check(t, c.NextN(t, 4), want[n-4:])
		c.ExpectQuiet(t)
	})
	t.Run("sse last", func(t *testing.T) {
		c := e2etest.ConnectSSE(t, svc.HTTPURL("/sse?envelope=true&last=4"), nil)
		var got [][]byte
		for range 4 {
			got = append(got, []byte(c.Next(t).Data))
		}
		check(t, got, want[n-4:])
		pl := e2etest.ConnectSSE(t, svc.HTTPURL("/sse?last=2"), nil)
		if a, b := pl.Next(t).Data, pl.Next(t).Data; a != `{"a":3,"Tags":{},"Timestamp":3}` || b != `{"b":2}` {
			t.Fatalf("plain SSE last=2: %s, %s", a, b)
		}
	})
}
