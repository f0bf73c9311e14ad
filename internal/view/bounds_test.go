package view

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"weak"

	"github.com/wsdest/wsdest/internal/message"
)

// TestRefusedBeforeCompiling: at MaxViews, a new view is refused before
// its expression is compiled (compiling one costs time and memory): the
// answer names the limit, not the expression's error.
func TestRefusedBeforeCompiling(t *testing.T) {
	r := newRegistry(t, Config{MaxViews: 1})
	if _, err := r.Acquire("value.a > 1", "", message.ShapePlain, ""); err != nil {
		t.Fatal(err)
	}
	_, err := r.Acquire("value.a > ", "", message.ShapePlain, "")
	if err == nil || !strings.Contains(err.Error(), "1:") {
		t.Fatalf("a syntax error: %v, want it named (parsing comes first)", err)
	}
	_, err = r.Acquire("value.a > 'x' + 1", "", message.ShapePlain, "")
	if !errors.Is(err, ErrTooManyViews) {
		t.Fatalf("a new view at MaxViews whose expression would not type-check: %v, want ErrTooManyViews before compiling", err)
	}
}

// TestSpellingsShareAView: a filter or a field list spelled differently
// (spaces, parentheses, a path repeated or inside a kept member, another
// order) is one view, so that respelling it takes no more of MAX_VIEWS.
func TestSpellingsShareAView(t *testing.T) {
	r := newRegistry(t, Config{MaxViews: 1})
	v, err := r.Acquire("value.a > 1 && key == 'k'", "a,b.c", message.ShapePlain, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ where, fields string }{
		{"value.a>1&&key=='k'", "a,b.c"},
		{"(value.a > 1) && (key == \"k\")", "b.c,a"},
		{"  value.a   >  1 &&   key == 'k'  ", "a,b.c,a,a"},
		{"value.a > 1 && key == 'k'", "a.x,a,b.c"},
	} {
		w, err := r.Acquire(s.where, s.fields, message.ShapePlain, "")
		if err != nil {
			t.Fatalf("where=%q fields=%q: %v", s.where, s.fields, err)
		}
		if w != v {
			t.Fatalf("where=%q fields=%q: another view than %+v", s.where, s.fields, v.Spec())
		}
	}
	if _, err := r.Acquire("value.a > 2 && key == 'k'", "a,b.c", message.ShapePlain, ""); !errors.Is(err, ErrTooManyViews) {
		t.Fatalf("another filter: %v, want ErrTooManyViews", err)
	}
}

// TestOwnerQuota: the clients of one owner hold at most MaxViewsPerOwner
// distinct views; more clients of those views are fine, other owners
// are not held back, and a view given back frees its place.
func TestOwnerQuota(t *testing.T) {
	r := newRegistry(t, Config{MaxViewsPerOwner: 2})
	a1, err := r.Acquire("value.a > 1", "", message.ShapePlain, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := r.Acquire("value.a > 2", "", message.ShapePlain, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Acquire("value.a > 3", "", message.ShapePlain, "10.0.0.1"); !errors.Is(err, ErrTooManyViewsPerOwner) ||
		!strings.Contains(err.Error(), "MAX_VIEWS_PER_IP=2") {
		t.Fatalf("a third distinct view of one owner: %v, want ErrTooManyViewsPerOwner naming the limit", err)
	}
	// Another owner's view, alive, is still a third distinct view held.
	b, err := r.Acquire("value.a > 9", "", message.ShapePlain, "10.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Acquire("value.a > 9", "", message.ShapePlain, "10.0.0.1"); !errors.Is(err, ErrTooManyViewsPerOwner) {
		t.Fatalf("joining a third distinct view: %v, want ErrTooManyViewsPerOwner", err)
	}
	again, err := r.Acquire("value.a > 1", "", message.ShapePlain, "10.0.0.1")
	if err != nil || again != a1 {
		t.Fatalf("one more client of a view held: %v", err)
	}
	r.Release(again, "10.0.0.1")
	r.Release(a2, "10.0.0.1")
	if _, err := r.Acquire("value.a > 9", "", message.ShapePlain, "10.0.0.1"); err != nil {
		t.Fatalf("after giving one back: %v", err)
	}
	r.Release(b, "10.0.0.2")
	if n := len(r.owners["10.0.0.2"]); n != 0 {
		t.Fatalf("an owner that gave everything back still holds %d", n)
	}
}

// TestReleasedFiltersNotPinned: a record the registry keeps holds its
// filters' verdicts by id, not the filters: a filter given back by its
// last client is collected (with its compiled program) while records it
// read are still kept.
func TestReleasedFiltersNotPinned(t *testing.T) {
	r := newRegistry(t, Config{})
	m := encodeRec(t, rec("k", `{"a":2}`))[0]
	v, err := r.Acquire("value.a > 1", "a", message.ShapePlain, "")
	if err != nil {
		t.Fatal(err)
	}
	if v.Apply(m) == nil {
		t.Fatal("dropped")
	}
	f, p := weak.Make(v.filter), weak.Make(v.proj)
	r.Release(v, "")
	v = nil
	for range 3 {
		runtime.GC()
	}
	if r.records.byM[m] == nil {
		t.Fatal("the record is no longer kept: the test proves nothing")
	}
	if f.Value() != nil || p.Value() != nil {
		t.Fatal("a released filter or projection is still reachable from the records kept")
	}
	// A new filter given the released one's id does not take its verdict.
	w, err := r.Acquire("value.a > 5", "", message.ShapePlain, "")
	if err != nil {
		t.Fatal(err)
	}
	if w.Apply(m) != nil {
		t.Fatal("a new filter took the verdict of the released one with its id")
	}
}

// TestRecordsCountProjections: what records keeps of a record counts its
// projections and its decoded value beside its frames, so that many
// projections of many records stay within the bound.
func TestRecordsCountProjections(t *testing.T) {
	r := newRegistry(t, Config{MaxViews: 50})
	pad := strings.Repeat("x", 4<<10)
	var views []*View
	for i := range 50 {
		v, err := r.Acquire("value.i >= 0", fmt.Sprintf("pad,n%d", i), message.ShapePlain, "")
		if err != nil {
			t.Fatal(err)
		}
		views = append(views, v)
	}
	projected := 0
	for i := range 256 {
		m := encodeRec(t, rec("k", fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad)))[0]
		for _, v := range views {
			if d := v.Apply(m); d != nil && d != m {
				projected++
			}
		}
	}
	if projected != 256*50 {
		t.Fatalf("%d projections, want %d", projected, 256*50)
	}
	rs := r.records
	rs.mu.Lock()
	defer rs.mu.Unlock()
	kept := 0
	for _, rec := range rs.byM {
		rec.mu.Lock()
		for _, x := range rec.projs {
			kept += len(x.value)
		}
		rec.mu.Unlock()
	}
	if kept > rs.max || rs.bytes > rs.max || kept > rs.bytes {
		t.Fatalf("records keep %d bytes of projections, count %d bytes, bound %d", kept, rs.bytes, rs.max)
	}
}

// TestEvaluatedOncePerRecord: a filter shared by views in every shape is
// evaluated once per record, however large the records, as the hub
// applies them (every view to a message before the next).
func TestEvaluatedOncePerRecord(t *testing.T) {
	r := newRegistry(t, Config{})
	var views []*View
	for _, sh := range []message.Shape{message.ShapePlain, message.ShapeEnvelope, message.ShapeSSEPlain, message.ShapeSSEEnvelope} {
		v, err := r.Acquire("value.i >= 0", "", sh, "")
		if err != nil {
			t.Fatal(err)
		}
		views = append(views, v)
	}
	pad := strings.Repeat("x", 20<<10) // 512 records of 20 KiB: 10 MiB, over the bytes records keeps
	const n = 512
	for i := range n {
		m := encodeRec(t, rec("k", fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad)))[0]
		for _, v := range views {
			v.Apply(m)
		}
	}
	if got := r.evals.Load(); got != n {
		t.Fatalf("%d evaluations for %d records and one filter", got, n)
	}
}

// BenchmarkCachedVerdicts: the verdict of a filter on a record already
// evaluated is found by the filter's id, whatever the number of filters
// (ns/op per view).
func BenchmarkCachedVerdicts(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("filters=%d", n), func(b *testing.B) {
			r := newRegistry(b, Config{MaxViews: n})
			var views []*View
			for i := range n {
				v, err := r.Acquire(fmt.Sprintf("value.t > %d", i), "", message.ShapePlain, "")
				if err != nil {
					b.Fatal(err)
				}
				views = append(views, v)
			}
			m := encodeRec(b, rec("k", `{"t":31}`))[0]
			for _, v := range views {
				v.Apply(m)
			}
			b.ResetTimer()
			for i := range b.N {
				views[i%n].Apply(m)
			}
		})
	}
}

// BenchmarkRecordsRetained reports the heap the records keep (bytes
// retained after a GC, "retained-B") after 50 projections of 256 records
// of 4 KiB, beside the bound records counts against ("bound-B").
func BenchmarkRecordsRetained(b *testing.B) {
	pad := strings.Repeat("x", 4<<10)
	var msgs []*message.Message
	for i := range 256 {
		msgs = append(msgs, encodeRec(b, rec("k", fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad)))[0])
	}
	for range b.N {
		r := newRegistry(b, Config{MaxViews: 50})
		var views []*View
		for i := range 50 {
			v, err := r.Acquire("value.i >= 0", fmt.Sprintf("pad,n%d", i), message.ShapePlain, "")
			if err != nil {
				b.Fatal(err)
			}
			views = append(views, v)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for _, m := range msgs {
			for _, v := range views {
				_ = v.Apply(m) // the derived message is dropped at once (written and gone)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)), "retained-B")
		b.ReportMetric(float64(r.records.max), "bound-B")
		runtime.KeepAlive(views)
	}
}

// TestErrorAnswerCapped: the 400 answer to an expression full of errors
// names the first few, each clipped, not hundreds.
func TestErrorAnswerCapped(t *testing.T) {
	r := newRegistry(t, Config{})
	_, err := r.Acquire(strings.Repeat("#", MaxExprLen), "", message.ShapePlain, "")
	if err == nil {
		t.Fatal("accepted")
	}
	if n := len(err.Error()); n > 4*200+100 {
		t.Fatalf("an answer of %d bytes: %s", n, clip(err.Error(), 300))
	}
	if !strings.Contains(err.Error(), "more") || !strings.Contains(err.Error(), "1:") {
		t.Fatalf("%s: want the first errors with their positions, and how many more", err)
	}
}

// BenchmarkViewHeap reports the heap a distinct view with the largest
// regular expression accepted keeps (B/view, after a GC), for
// DefaultMaxViews of them: what MAX_VIEWS of the most memory-hungry
// filters hold at once.
func BenchmarkViewHeap(b *testing.B) {
	for range b.N {
		r := newRegistry(b, Config{})
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var views []*View
		for i := range DefaultMaxViews {
			v, err := r.Acquire(fmt.Sprintf(`key.matches("\\pL{190}!") || offset == %d`, i), "", message.ShapePlain, "")
			if err != nil {
				b.Fatal(err)
			}
			views = append(views, v)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(len(views)), "B/view")
		runtime.KeepAlive(views)
	}
}
