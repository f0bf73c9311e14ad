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
// (records, which also bounds their bytes). The hub applies every view
// of a Publish to one message before the next (hub.publishViewed), so a
// message is decoded once, and each filter and projection worked out
// once, however many views read it, while it is among the last few; a
// catch-up applying a view meanwhile only pushes out older ones.
const recordCacheSize = 64

// record is what the filters and projections of every view read of one
// message, built when first needed and shared. Safe for concurrent use.
type record struct {
	m  *message.Message
	rs *records // the cache that holds it, which counts its bytes

	valueOnce sync.Once
	val       ref.Val // nil: no JSON value

	headersOnce sync.Once
	hdrs        ref.Val

	// mu guards what the views worked out of the record: each filter's
	// verdict and each projection, indexed by the filter's or
	// projection's id, so that views sharing a filter or a field list (in
	// other shapes, with other partners) work it out once. An entry is
	// valid for the filter or projection of its gen only: an id is reused
	// once its owner is forgotten, which the record does not keep alive.
	mu       sync.Mutex
	verdicts []verdict   // guarded by mu
	projs    []projected // guarded by mu

	weight int  // the bytes records counts for it; guarded by rs.mu
	gone   bool // forgotten by records; guarded by rs.mu
}

// verdict is a filter's verdict on a record.
type verdict struct {
	gen uint64 // the filter's; 0: none
	ok  bool
}

// projected is a record's projection by one field list.
type projected struct {
	gen   uint64 // the projection's; 0: none
	value []byte // nil: the value is not a JSON object
}

// decodedWeight is what records counts per byte of a decoded JSON value
// (maps, slices and CEL's wrappers take a few times the text).
const decodedWeight = 4

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
		rec.rs.grow(rec, decodedWeight*len(b))
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
func (rec *record) projection(r *Registry, p *projection) ([]byte, bool) {
	rec.mu.Lock()
	if p.id < len(rec.projs) && rec.projs[p.id].gen == p.gen {
		out := rec.projs[p.id].value
		rec.mu.Unlock()
		return out, out != nil
	}
	rec.mu.Unlock()
	var out []byte
	if b, ok := encode.Value(rec.m); ok {
		r.projected.Add(1)
		out = p.apply(b)
	}
	rec.mu.Lock()
	if p.id >= len(rec.projs) {
		rec.projs = append(rec.projs, make([]projected, p.id+1-len(rec.projs))...)
	}
	rec.projs[p.id] = projected{gen: p.gen, value: out}
	rec.mu.Unlock()
	rec.rs.grow(rec, len(out))
	return out, out != nil
}

// matches returns f's verdict on the record, evaluated once (by r) per
// record and filter. The evaluation runs outside the record's lock; two
// views of one filter racing on a record both evaluate it, to the same
// verdict.
func (rec *record) matches(r *Registry, f *filter) bool {
	rec.mu.Lock()
	if f.id < len(rec.verdicts) && rec.verdicts[f.id].gen == f.gen {
		ok := rec.verdicts[f.id].ok
		rec.mu.Unlock()
		return ok
	}
	rec.mu.Unlock()
	ok := f.matches(r, rec)
	rec.mu.Lock()
	if f.id >= len(rec.verdicts) {
		rec.verdicts = append(rec.verdicts, make([]verdict, f.id+1-len(rec.verdicts))...)
	}
	rec.verdicts[f.id] = verdict{gen: f.gen, ok: ok}
	rec.mu.Unlock()
	return ok
}

// records holds the records of the last messages views read, so that a
// message is decoded once for every view: at most recordCacheSize, and at
// most recordCacheBytes among them, counting each record's frames, its
// decoded value (decodedWeight per byte) and its projections; the oldest
// forgotten first. Safe for concurrent use (the publisher and
// catch-ups); its lock is held for a map lookup or a count.
type records struct {
	mu    sync.Mutex
	byM   map[*message.Message]*record // guarded by mu
	ring  []*record                    // oldest at head; guarded by mu
	head  int                          // guarded by mu
	n     int                          // guarded by mu
	bytes int                          // the weights of the ring's records; guarded by mu
	max   int                          // the bound on bytes
}

// recordCacheBytes bounds the bytes of the records records keeps.
const recordCacheBytes = 4 << 20

func newRecords(n, maxBytes int) *records {
	return &records{byM: make(map[*message.Message]*record, n), ring: make([]*record, n), max: maxBytes}
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
		rs.dropOldestLocked()
	}
	rec := &record{m: m, rs: rs, weight: size}
	rs.ring[(rs.head+rs.n)%len(rs.ring)] = rec
	rs.n++
	rs.bytes += size
	rs.byM[m] = rec
	return rec
}

// grow counts n more bytes of rec, unless it is forgotten, and forgets
// the oldest records past the bound (but the newest).
func (rs *records) grow(rec *record, n int) {
	if rs == nil || n == 0 {
		return
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rec.gone {
		return
	}
	rec.weight += n
	rs.bytes += n
	for rs.n > 1 && rs.bytes > rs.max {
		rs.dropOldestLocked()
	}
}

// dropOldestLocked forgets the oldest record. rs.mu must be held.
func (rs *records) dropOldestLocked() {
	old := rs.ring[rs.head]
	rs.ring[rs.head] = nil
	delete(rs.byM, old.m)
	rs.bytes -= old.weight
	old.gone = true
	rs.head = (rs.head + 1) % len(rs.ring)
	rs.n--
}

// frameBytes is what m's frames weigh in records: its plain frame, or its
// envelope frame (which carries the headers read from it).
func frameBytes(m *message.Message) int {
	return max(len(m.Frames[message.ShapePlain]), len(m.Frames[message.ShapeEnvelope]))
}
