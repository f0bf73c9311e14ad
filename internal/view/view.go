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
// recursion limit, and every evaluation stops at Config.CostLimit (CEL's
// runtime cost): a hostile expression costs a bounded amount of CPU per
// record. A field list has at most MaxFields paths of at most MaxPathDepth
// members. At most Config.MaxViews distinct views are alive at once.
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
	// once (MAX_VIEWS).
	DefaultMaxViews = 1000
	// DefaultCostLimit is the default CEL runtime cost limit of one
	// evaluation: about a thousand elementary operations (comparisons,
	// member accesses, list elements), far beyond what a filter of one
	// record needs (value.temperature > 30 costs 3), and what stops the
	// most expensive expressions in a fraction of a millisecond
	// (BenchmarkHostile).
	DefaultCostLimit = 1000
)

// Config configures a Registry. Zero values mean the defaults.
type Config struct {
	// MaxViews bounds the distinct views alive at once; a request for one
	// more is refused (ErrTooManyViews). Default DefaultMaxViews.
	MaxViews int
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

// Spec is what makes a view distinct.
type Spec struct {
	Where  string // the CEL expression, "" for none
	Fields string // the field list as given, "" for none
	Shape  message.Shape
}

// Stats is a snapshot of a Registry's counters.
type Stats struct {
	// Alive is the number of distinct views alive.
	Alive int `json:"alive"`
	// Refused counts the requests refused at MaxViews.
	Refused uint64 `json:"refused"`
	// EvalErrors counts the evaluations that failed (a missing field, a
	// wrong type, the cost limit): each one drops the record for the
	// view.
	EvalErrors uint64 `json:"eval_errors"`
}

// Registry keeps the live views. Its methods are safe for concurrent use;
// its lock is taken by Acquire and Release only, never on the publish
// path.
type Registry struct {
	cfg Config
	log *slog.Logger
	env *cel.Env

	mu      sync.Mutex
	views   map[Spec]*View         // guarded by mu
	filters map[string]*filter     // by expression; guarded by mu
	projs   map[string]*projection // by field list; guarded by mu

	// heads counts the live filters that read headers (NeedsHead);
	// written under mu.
	heads atomic.Int64

	refused    atomic.Uint64
	evalErrors atomic.Uint64
	errLines   *ratelog.Limiter // evaluation error lines: one every 10 s

	records *records // decoded records shared by every filter
}

// New returns a Registry.
func New(cfg Config) (*Registry, error) {
	if cfg.MaxViews <= 0 {
		cfg.MaxViews = DefaultMaxViews
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

// Acquire returns the view of where, fields and shape, shared with every
// other client of the same ones, and counts one more user of it; Release
// gives it back. It returns an error for a request to refuse with a 400:
// an expression too long or that does not compile (the error names the
// position), a bad field list, or ErrTooManyViews (wrapped, naming the
// limit) when the view is new and MaxViews are alive. A new expression is
// compiled outside the registry's lock.
func (r *Registry) Acquire(where, fields string, shape message.Shape) (*View, error) {
	spec := Spec{Where: where, Fields: fields, Shape: shape}
	if v := r.reuse(spec); v != nil {
		return v, nil
	}
	var proj *projection
	if fields != "" {
		var err error
		if proj, err = r.parse(fields); err != nil {
			return nil, err
		}
	}
	var f *filter
	if where != "" {
		var err error
		if f, err = r.compile(where); err != nil {
			return nil, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v := r.views[spec]; v != nil {
		v.refs++
		return v, nil
	}
	if len(r.views) >= r.cfg.MaxViews {
		r.refused.Add(1)
		return nil, fmt.Errorf("%w (MAX_VIEWS=%d)", ErrTooManyViews, r.cfg.MaxViews)
	}
	if f != nil {
		if old := r.filters[where]; old != nil {
			f = old
		} else {
			r.filters[where] = f
			if f.headers {
				r.heads.Add(1)
			}
		}
		f.refs++
	}
	if proj != nil {
		if old := r.projs[fields]; old != nil {
			proj = old
		} else {
			r.projs[fields] = proj
		}
		proj.refs++
	}
	v := &View{r: r, spec: spec, filter: f, proj: proj, refs: 1}
	r.views[spec] = v
	return v, nil
}

// reuse returns the live view of spec with one more user, nil if none.
func (r *Registry) reuse(spec Spec) *View {
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.views[spec]
	if v != nil {
		v.refs++
	}
	return v
}

// compile returns the live filter of where, or compiles a new one (not
// yet registered).
func (r *Registry) compile(where string) (*filter, error) {
	r.mu.Lock()
	f := r.filters[where]
	r.mu.Unlock()
	if f != nil {
		return f, nil
	}
	return compileFilter(r.env, where, r.cfg.CostLimit)
}

// parse returns the live projection of fields, or parses a new one (not
// yet registered).
func (r *Registry) parse(fields string) (*projection, error) {
	r.mu.Lock()
	p := r.projs[fields]
	r.mu.Unlock()
	if p != nil {
		return p, nil
	}
	return parseFields(fields)
}

// NeedsHead reports whether a live filter reads headers: those are read
// from the envelope's head, which a message carries only when built for
// the history or for an envelope client, so a publisher without a
// history must then build envelope frames.
func (r *Registry) NeedsHead() bool { return r.heads.Load() > 0 }

// Release gives back a view Acquire returned; the last user's Release
// forgets it.
func (r *Registry) Release(v *View) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v.refs--
	if v.refs > 0 {
		return
	}
	delete(r.views, v.spec)
	if f := v.filter; f != nil {
		f.refs--
		if f.refs == 0 {
			delete(r.filters, f.expr)
			if f.headers {
				r.heads.Add(-1)
			}
		}
	}
	if p := v.proj; p != nil {
		p.refs--
		if p.refs == 0 {
			delete(r.projs, v.spec.Fields)
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
	value, ok := rec.projection(v.proj)
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
