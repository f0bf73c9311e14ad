// Package view owns what a client may ask to see of the stream beyond its
// keys: a filter (?where=, a CEL expression evaluated per record) and a
// projection (?fields=, the value's members to keep). A View is one
// distinct combination of filter, projection and shape; the Registry
// keeps the views alive, each built once and shared by every client that
// asks for it, and bounds how many are alive at once.
//
// The hub applies a client's view (View.Apply) after routing a record by
// key and grant: a view only ever narrows what a client receives. Each
// distinct view is applied once per published message and its result is
// shared by every client of the view (hub.View); a filter alone returns
// the message itself, so that its frames stay shared with every other
// client. A record's JSON is decoded once however many filters read it
// (records.go), and each projection of a record is built once whatever
// shapes its views frame it in.
//
// Bounds: an expression is at most MaxExprLen bytes, parsed with a
// recursion limit, its comprehensions nested at most two deep, and every
// evaluation stops at Config.CostLimit (CEL's runtime cost), with the
// calls whose work CEL under-charges charged by it (regex.go: matches,
// its pattern a literal of a bounded program; concatenations) and time
// zones refused: a hostile expression costs a bounded amount of CPU per
// record. A field list has at most MaxFields paths of at most MaxPathDepth
// members. At most Config.MaxViews distinct views are alive at once, at
// most Config.MaxViewsPerOwner of them held by one owner: together they
// bound what filters cost per record.
package view

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/cel-go/cel"

	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/ratelog"
)

// Defaults of Config.
const (
	// DefaultMaxViews is the default bound on distinct views alive at
	// once (MAX_VIEWS). With DefaultCostLimit it bounds what the filters
	// cost the publisher per record (docs/design.md, BenchmarkWorstRecord).
	DefaultMaxViews = 100
	// DefaultMaxViewsPerOwner is the default bound on distinct views the
	// clients of one owner (one address) hold at once (MAX_VIEWS_PER_IP).
	DefaultMaxViewsPerOwner = 8
	// DefaultCostLimit is the default CEL runtime cost limit of one
	// evaluation: about a thousand elementary operations (comparisons,
	// member accesses, list elements) or a thousand times
	// matchStepsPerCost steps of a regular expression, far beyond what a
	// filter of one record needs (value.temperature > 30 costs 3).
	DefaultCostLimit = 500
)

// Config configures a Registry. Zero values mean the defaults.
type Config struct {
	// MaxViews bounds the distinct views alive at once; a request for one
	// more is refused (ErrTooManyViews). Default DefaultMaxViews.
	MaxViews int
	// MaxViewsPerOwner bounds the distinct views the clients of one owner
	// (Acquire's owner, the server's client address) hold at once; a
	// request for one more is refused (ErrTooManyViewsPerOwner). Default
	// DefaultMaxViewsPerOwner.
	MaxViewsPerOwner int
	// CostLimit is the CEL runtime cost at which an evaluation stops (the
	// record is then not delivered, and counted as an evaluation error).
	// Default DefaultCostLimit.
	CostLimit uint64
	// Logger receives the rate-limited lines about evaluation errors.
	// Default slog.Default().
	Logger *slog.Logger
}

// ErrTooManyViews is the error of Acquire when MaxViews distinct views
// are alive.
var ErrTooManyViews = errors.New("too many distinct views alive")

// ErrTooManyViewsPerOwner is the error of Acquire when the owner's
// clients hold MaxViewsPerOwner distinct views.
var ErrTooManyViewsPerOwner = errors.New("too many distinct views held by one address")

// Spec is what makes a view distinct: its filter and field list in their
// canonical forms (the same for every spelling of them), and its shape.
type Spec struct {
	Where  string // the CEL expression printed back from its parse, "" for none
	Fields string // the field list's paths sorted, "" for none
	Shape  message.Shape
}

// Stats is a snapshot of a Registry's counters.
type Stats struct {
	// Alive is the number of distinct views alive.
	Alive int `json:"alive"`
	// Refused counts the requests refused at MaxViews or
	// MaxViewsPerOwner.
	Refused uint64 `json:"refused"`
	// EvalErrors counts the evaluations that failed (a missing field, a
	// wrong type, the cost limit): each one drops the record for the
	// view.
	EvalErrors uint64 `json:"eval_errors"`
}

// Registry keeps the live views. Its methods are safe for concurrent use;
// its lock is taken by Acquire and Release only, never on the publish
// path, and never while an expression compiles.
type Registry struct {
	cfg Config
	log *slog.Logger
	env *cel.Env

	mu      sync.Mutex
	views   map[Spec]*View           // guarded by mu
	filters map[string]*filter       // by canonical expression; guarded by mu
	projs   map[string]*projection   // by canonical field list; guarded by mu
	owners  map[string]map[*View]int // each owner's clients of each view; guarded by mu
	pending int                      // new views being built (reserved against MaxViews); guarded by mu
	pendBy  map[string]int           // pending by owner; guarded by mu
	ids     [2]idAlloc               // filter and projection ids; guarded by mu
	gen     uint64                   // the last gen given; guarded by mu
	// spelled maps a request as written (Spec of the raw where and
	// fields) to its canonical Spec, so that a client asking for a live
	// view in a spelling seen before costs a map lookup, not a parse
	// (whose garbage every handshake would otherwise leave); at most
	// maxSpellings entries, cleared when full. Guarded by mu.
	spelled map[Spec]Spec

	// heads counts the live filters that read headers (NeedsHead);
	// written under mu.
	heads atomic.Int64

	refused    atomic.Uint64
	evalErrors atomic.Uint64
	evals      atomic.Uint64    // evaluations of a filter (for tests)
	projected  atomic.Uint64    // projections of a value built (for tests)
	errLines   *ratelog.Limiter // evaluation error lines: one every 10 s

	records *records // decoded records shared by every filter
}

// maxSpellings bounds Registry.spelled: about 2 KiB an entry at most
// (an expression of at most MaxExprLen and a field list).
const maxSpellings = 1024

// idAlloc hands out small integers, reusing those given back.
type idAlloc struct {
	free []int
	next int
}

func (a *idAlloc) get() int {
	if n := len(a.free); n > 0 {
		id := a.free[n-1]
		a.free = a.free[:n-1]
		return id
	}
	a.next++
	return a.next - 1
}

func (a *idAlloc) put(id int) { a.free = append(a.free, id) }

// New returns a Registry.
func New(cfg Config) (*Registry, error) {
	if cfg.MaxViews <= 0 {
		cfg.MaxViews = DefaultMaxViews
	}
	if cfg.MaxViewsPerOwner <= 0 {
		cfg.MaxViewsPerOwner = DefaultMaxViewsPerOwner
	}
	if cfg.CostLimit == 0 {
		cfg.CostLimit = DefaultCostLimit
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	env, err := newEnv()
	if err != nil {
		return nil, fmt.Errorf("view: cel environment: %w", err)
	}
	return &Registry{
		cfg: cfg, log: cfg.Logger, env: env,
		views:    make(map[Spec]*View),
		filters:  make(map[string]*filter),
		projs:    make(map[string]*projection),
		owners:   make(map[string]map[*View]int),
		pendBy:   make(map[string]int),
		spelled:  make(map[Spec]Spec),
		errLines: ratelog.New(10*time.Second, 1),
		records:  newRecords(recordCacheSize, recordCacheBytes),
	}, nil
}

// Stats returns a snapshot of the counters.
func (r *Registry) Stats() Stats {
	r.mu.Lock()
	n := len(r.views)
	r.mu.Unlock()
	return Stats{Alive: n, Refused: r.refused.Load(), EvalErrors: r.evalErrors.Load()}
}

// request is a parsed request for a view: its spec and what to build it
// from.
type request struct {
	spec   Spec
	parsed *cel.Ast    // nil without a filter
	proj   *projection // nil without a projection
}

// Acquire returns the view of where, fields and shape, shared with every
// other client of the same ones (in any spelling), and counts one more
// user of it by owner (the client's address; "" for none, which no
// quota bounds); Release gives it back. It returns an error for a request
// to refuse with a 400: an expression too long or that does not compile
// (the error names the position), a bad field list, ErrTooManyViews or
// ErrTooManyViewsPerOwner (wrapped, naming the limit) when the view is
// new to the owner and a limit is reached. The view's place is reserved
// against the limits before its expression is compiled, outside the
// registry's lock.
func (r *Registry) Acquire(where, fields string, shape message.Shape, owner string) (*View, error) {
	raw := Spec{Where: where, Fields: fields, Shape: shape}
	r.mu.Lock()
	if spec, ok := r.spelled[raw]; ok {
		if v := r.views[spec]; v != nil {
			err := r.holdLocked(v, owner)
			r.mu.Unlock()
			if err != nil {
				return nil, err
			}
			return v, nil
		}
	}
	r.mu.Unlock()
	req, err := r.parse(where, fields, shape)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if len(r.spelled) >= maxSpellings {
		clear(r.spelled)
	}
	r.spelled[raw] = req.spec
	if v := r.views[req.spec]; v != nil {
		err := r.holdLocked(v, owner)
		r.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	if err := r.reserveLocked(owner); err != nil {
		r.mu.Unlock()
		return nil, err
	}
	r.mu.Unlock()
	f, err := r.compile(req)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending--
	if r.pendBy[owner]--; r.pendBy[owner] == 0 {
		delete(r.pendBy, owner)
	}
	if err != nil {
		return nil, err
	}
	if v := r.views[req.spec]; v != nil { // built meanwhile by another client
		if err := r.holdLocked(v, owner); err != nil {
			return nil, err
		}
		return v, nil
	}
	v := &View{r: r, spec: req.spec, filter: r.addFilterLocked(f), proj: r.addProjLocked(req)}
	r.views[req.spec] = v
	// Cannot fail: the owner's reservation, just given back, kept its
	// place (reserveLocked and holdLocked count the pending ones).
	_ = r.holdLocked(v, owner)
	return v, nil
}

// parse parses where and fields into their canonical spec. It takes no
// lock: parsing is bounded by the lengths of the two.
func (r *Registry) parse(where, fields string, shape message.Shape) (request, error) {
	req := request{spec: Spec{Shape: shape}}
	if fields != "" {
		p, err := parseFields(fields)
		if err != nil {
			return req, err
		}
		req.proj, req.spec.Fields = p, p.canonical()
	}
	if where != "" {
		parsed, err := parseWhere(r.env, where)
		if err != nil {
			return req, err
		}
		if req.spec.Where, err = canonicalWhere(parsed); err != nil {
			return req, err
		}
		req.parsed = parsed
	}
	return req, nil
}

// reserveLocked reserves the place of a new view of owner, or returns
// the error of the limit it would pass. r.mu must be held.
func (r *Registry) reserveLocked(owner string) error {
	if len(r.views)+r.pending >= r.cfg.MaxViews {
		r.refused.Add(1)
		return fmt.Errorf("%w (MAX_VIEWS=%d)", ErrTooManyViews, r.cfg.MaxViews)
	}
	if owner != "" && len(r.owners[owner])+r.pendBy[owner] >= r.cfg.MaxViewsPerOwner {
		r.refused.Add(1)
		return fmt.Errorf("%w (MAX_VIEWS_PER_IP=%d)", ErrTooManyViewsPerOwner, r.cfg.MaxViewsPerOwner)
	}
	r.pending++
	r.pendBy[owner]++
	return nil
}

// holdLocked counts one more user of v by owner, or returns the error of
// the owner's quota when v is new to it. r.mu must be held.
func (r *Registry) holdLocked(v *View, owner string) error {
	if owner != "" {
		held := r.owners[owner]
		if held[v] == 0 && len(held)+r.pendBy[owner] >= r.cfg.MaxViewsPerOwner {
			r.refused.Add(1)
			return fmt.Errorf("%w (MAX_VIEWS_PER_IP=%d)", ErrTooManyViewsPerOwner, r.cfg.MaxViewsPerOwner)
		}
		if held == nil {
			held = make(map[*View]int)
			r.owners[owner] = held
		}
		held[v]++
	}
	v.refs++
	return nil
}

// compile returns the filter of req: the live one of its expression, or
// a new one compiled with no lock held (not yet registered). Nil without
// a filter.
func (r *Registry) compile(req request) (*filter, error) {
	if req.parsed == nil {
		return nil, nil
	}
	r.mu.Lock()
	f := r.filters[req.spec.Where]
	r.mu.Unlock()
	if f != nil {
		return f, nil
	}
	return compileFilter(r.env, req.parsed, req.spec.Where, r.cfg.CostLimit)
}

// addFilterLocked registers f, or returns the live filter of its
// expression (one more user counted). r.mu must be held.
func (r *Registry) addFilterLocked(f *filter) *filter {
	if f == nil {
		return nil
	}
	if old := r.filters[f.expr]; old != nil {
		f = old
	} else {
		f.id, f.gen = r.ids[0].get(), r.nextGenLocked()
		r.filters[f.expr] = f
		if f.headers {
			r.heads.Add(1)
		}
	}
	f.refs++
	return f
}

// addProjLocked registers req's projection, or returns the live one of
// its field list (one more user counted). r.mu must be held.
func (r *Registry) addProjLocked(req request) *projection {
	p := req.proj
	if p == nil {
		return nil
	}
	if old := r.projs[req.spec.Fields]; old != nil {
		p = old
	} else {
		p.id, p.gen = r.ids[1].get(), r.nextGenLocked()
		r.projs[req.spec.Fields] = p
	}
	p.refs++
	return p
}

func (r *Registry) nextGenLocked() uint64 {
	r.gen++
	return r.gen
}

// NeedsHead reports whether a live filter reads headers: those are read
// from the envelope's head, which a message carries only when built for
// the history or for an envelope client, so a publisher without a
// history must then build envelope frames.
func (r *Registry) NeedsHead() bool { return r.heads.Load() > 0 }

// Release gives back a view Acquire returned for owner; the last user's
// Release forgets it.
func (r *Registry) Release(v *View, owner string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if held := r.owners[owner]; held != nil {
		if held[v]--; held[v] <= 0 {
			delete(held, v)
			if len(held) == 0 {
				delete(r.owners, owner)
			}
		}
	}
	v.refs--
	if v.refs > 0 {
		return
	}
	delete(r.views, v.spec)
	if f := v.filter; f != nil {
		f.refs--
		if f.refs == 0 {
			delete(r.filters, f.expr)
			r.ids[0].put(f.id)
			if f.headers {
				r.heads.Add(-1)
			}
		}
	}
	if p := v.proj; p != nil {
		p.refs--
		if p.refs == 0 {
			delete(r.projs, v.spec.Fields)
			r.ids[1].put(p.id)
		}
	}
}

// View is one distinct filter, projection and shape. Apply is safe for
// concurrent use.
type View struct {
	r      *Registry
	spec   Spec
	filter *filter     // nil: every record
	proj   *projection // nil: the whole value
	refs   int         // guarded by r.mu
}

// NeedsHead reports whether v's filter reads headers, which it finds in
// the envelope's head: a catch-up then encodes the envelope of the
// records it reads from Kafka.
func (v *View) NeedsHead() bool { return v.filter != nil && v.filter.headers }

// Spec returns what makes v distinct.
func (v *View) Spec() Spec { return v.spec }

// Apply returns what a client of v receives of m: nil when the filter
// drops m; m itself when v has no projection, or m's value is not a JSON
// object, or m is a notice (notices pass every view); otherwise a message
// for the same record whose value is the projection, framed for v's
// shape (encode.Derive).
func (v *View) Apply(m *message.Message) *message.Message {
	if m.Notice() {
		return m
	}
	var rec *record
	if v.filter != nil {
		rec = v.r.records.get(m)
		if !rec.matches(v.r, v.filter) {
			return nil
		}
	}
	if v.proj == nil {
		return m
	}
	if rec == nil {
		rec = v.r.records.get(m)
	}
	value, ok := rec.projection(v.r, v.proj)
	if !ok {
		return m
	}
	var head []byte
	if v.spec.Shape == message.ShapeEnvelope || v.spec.Shape == message.ShapeSSEEnvelope {
		if head, ok = encode.Head(m); !ok {
			return nil // cannot happen: envelope clients get envelope frames or the head
		}
	}
	return encode.Derive(m, v.spec.Shape, head, value)
}

// evalError counts a failed evaluation and logs it, a line every 10 s.
func (r *Registry) evalError(f *filter, m *message.Message, err error) {
	r.evalErrors.Add(1)
	n, ok := r.errLines.Allow("")
	if !ok {
		return
	}
	r.log.LogAttrs(context.Background(), slog.LevelWarn, "view: filter evaluation failed; the record is not delivered to its clients",
		slog.String("where", clip(f.expr, 200)), slog.String("err", clip(err.Error(), 200)),
		slog.Int("partition", int(m.Partition)), slog.Int64("offset", m.Offset), slog.Int("suppressed", n))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
