package view

import (
	"encoding/json"
	"sync"

	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"

	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/jsonscan"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/wsframe"
)

// recordCacheSize is how many recent messages the Registry keeps decoded
// (records, which also bounds their bytes):
// the hub applies every view of a Publish to its messages client by
// client, so a Publish of up to this many messages has each decoded once
// however many filters read it. A longer one (a record of many Quix rows)
// decodes a row again for each view that reads it past this.
const recordCacheSize = 1024

// record is what the filters and projections of every view read of one
// message, built when first needed and shared. Safe for concurrent use.
type record struct {
	m *message.Message

	valueOnce sync.Once
	val       ref.Val // nil: no JSON value

	headersOnce sync.Once
	hdrs        ref.Val

	// mu guards what the views worked out of the record: each filter's
	// result and each projection, so that views sharing a filter or a
	// field list (in other shapes, with other partners) work it out once.
	mu      sync.Mutex
	results []result    // guarded by mu
	projs   []projected // guarded by mu
}

// result is a filter's verdict on a record.
type result struct {
	f  *filter
	ok bool
}

// projected is a record's projection by one field list.
type projected struct {
	p     *projection
	value []byte // nil: the value is not a JSON object
}

// value returns the record's JSON value as CEL sees it, nil when it has
// none (not JSON).
func (rec *record) value() ref.Val {
	rec.valueOnce.Do(func() {
		b, ok := encode.Value(rec.m)
		if !ok {
			return
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return
		}
		rec.val = types.DefaultTypeAdapter.NativeToValue(v)
	})
	return rec.val
}

// headers returns the record's headers as a CEL map of string to string:
// each header whose value is UTF-8 text (the last of a repeated name, as
// in the envelope); empty when the message carries no envelope head.
func (rec *record) headers() ref.Val {
	rec.headersOnce.Do(func() {
		rec.hdrs = types.DefaultTypeAdapter.NativeToValue(headersOf(rec.m))
	})
	return rec.hdrs
}

// headersOf reads the headers member of m's envelope: from its head, or
// from its envelope frame when the head cannot be cut from it (a value
// that is not JSON).
func headersOf(m *message.Message) map[string]string {
	src, ok := encode.Head(m)
	if !ok {
		if src, ok = wsframe.TextPayload(m.Frames[message.ShapeEnvelope]); !ok {
			return map[string]string{}
		}
	}
	out := map[string]string{}
	sc := jsonscan.New(src, 0)
	it, err := sc.ObjectStart(0)
	if err != nil {
		return out
	}
	for {
		key, _, vs, ok, err := sc.ObjectNext(&it)
		if err != nil || !ok {
			return out
		}
		if string(src[key.Start:key.End]) != `"headers"` {
			if it.Pos, err = sc.Value(vs); err != nil {
				return out
			}
			continue
		}
		hs, err := sc.ObjectStart(vs)
		if err != nil {
			return out
		}
		for {
			hk, _, hv, ok, err := sc.ObjectNext(&hs)
			if err != nil || !ok {
				return out
			}
			end, err := sc.Value(hv)
			if err != nil {
				return out
			}
			hs.Pos = end
			if src[hv] == '"' {
				name := string(jsonscan.Unescape(nil, src[hk.Start:hk.End]))
				out[name] = string(jsonscan.Unescape(nil, src[hv:end]))
			}
		}
	}
}

// projection returns the record's value projected by p, built once per
// record and field list; false when the value is not a JSON object.
func (rec *record) projection(p *projection) ([]byte, bool) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, x := range rec.projs {
		if x.p == p {
			return x.value, x.value != nil
		}
	}
	var out []byte
	if b, ok := encode.Value(rec.m); ok {
		out = p.apply(b)
	}
	rec.projs = append(rec.projs, projected{p: p, value: out})
	return out, out != nil
}

// matches returns f's verdict on the record, evaluated once (by r) per
// record and filter. The evaluation runs outside the record's lock; two
// views of one filter racing on a record both evaluate it, to the same
// verdict.
func (rec *record) matches(r *Registry, f *filter) bool {
	rec.mu.Lock()
	for _, x := range rec.results {
		if x.f == f {
			rec.mu.Unlock()
			return x.ok
		}
	}
	rec.mu.Unlock()
	ok := f.matches(r, rec)
	rec.mu.Lock()
	rec.results = append(rec.results, result{f: f, ok: ok})
	rec.mu.Unlock()
	return ok
}

// records holds the records of the last messages views read, so that a
// message is decoded once for every view: at most recordCacheSize, and
// at most recordCacheBytes of frames among them (a decoded value takes a
// few times its JSON), the oldest forgotten first. Safe for concurrent
// use (the publisher and catch-ups); its lock is held for a map lookup.
type records struct {
	mu    sync.Mutex
	byM   map[*message.Message]*record // guarded by mu
	ring  []*message.Message           // the records' messages, oldest at head; guarded by mu
	head  int                          // guarded by mu
	n     int                          // guarded by mu
	bytes int                          // the ring's messages' frame bytes; guarded by mu
	max   int                          // the bound on bytes
}

// recordCacheBytes bounds the frames of the messages records keeps.
const recordCacheBytes = 8 << 20

func newRecords(n, maxBytes int) *records {
	return &records{byM: make(map[*message.Message]*record, n), ring: make([]*message.Message, n), max: maxBytes}
}

// get returns m's record, made and kept if new (forgetting the oldest
// past the bounds).
func (rs *records) get(m *message.Message) *record {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rec := rs.byM[m]; rec != nil {
		return rec
	}
	size := frameBytes(m)
	for rs.n > 0 && (rs.n == len(rs.ring) || rs.bytes+size > rs.max) {
		old := rs.ring[rs.head]
		rs.ring[rs.head] = nil
		delete(rs.byM, old)
		rs.bytes -= frameBytes(old)
		rs.head = (rs.head + 1) % len(rs.ring)
		rs.n--
	}
	rec := &record{m: m}
	rs.ring[(rs.head+rs.n)%len(rs.ring)] = m
	rs.n++
	rs.bytes += size
	rs.byM[m] = rec
	return rec
}

// frameBytes is what m's value weighs in records: its plain frame, or its
// envelope frame (which carries the headers read from it).
func frameBytes(m *message.Message) int {
	return max(len(m.Frames[message.ShapePlain]), len(m.Frames[message.ShapeEnvelope]))
}
