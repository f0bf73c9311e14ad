package view

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wsdest/wsdest/internal/message"
)

const ten = "[0,1,2,3,4,5,6,7,8,9]"

// hundred is a list literal of 100 elements.
var hundred = func() string {
	var b strings.Builder
	b.WriteString("[")
	for i := range 100 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprint(&b, i%10)
	}
	return b.String() + "]"
}()

// hostile are expressions written to cost as much CPU as they can, within
// the length and nesting limits; each is stopped by CEL's cost limit.
var hostile = map[string]string{
	"nested comprehensions": hundred + ".all(a, " + hundred + ".all(b, a+b >= 0 && a*b >= 0 && a-b <= 9))",
	"string growth":         hundred + ".all(a, " + hundred + ".all(b, (value.s + value.s + value.s + value.s).size() > 0))",
	"list growth":           hundred + ".map(a, " + hundred + ".map(b, " + ten + ")).size() > 0",
	"regex in a loop":       hundred + ".all(a, " + hundred + ".all(b, !value.s.matches(\"^(a+)+$\")))",
	// The largest program on the longest text one call may take: a call
	// does at most the whole cost limit's work.
	"largest regex":        `["` + strings.Repeat("a", 41) + `"].all(s, ` + hundred + `.all(i, !s.matches("\\pL{190}!")))`,
	"regex on texts built": `["` + strings.Repeat("a", 60) + `"].all(s, ` + hundred + `.all(i, !(s+s).matches("[^!]{60}!")))`,
}

// TestHostileStoppedAtCostLimit: every hostile expression compiles (it is
// valid CEL) and each evaluation against a record ends with CEL's cost
// limit, having done at most twice the limit's work (the limit, and one
// last call that may pass it: a matches call does at most the limit's
// worth); the record is dropped, the error counted.
func TestHostileStoppedAtCostLimit(t *testing.T) {
	r := newRegistry(t, Config{})
	m := encodeRec(t, rec("k", `{"s":"`+strings.Repeat("a", 1000)+`!"}`))[0]
	for name, expr := range hostile {
		t.Run(name, func(t *testing.T) {
			if len(expr) > MaxExprLen {
				t.Fatalf("%d bytes: over the length limit", len(expr))
			}
			f, err := compileExpr(r.env, expr, DefaultCostLimit)
			if err != nil {
				t.Fatal(err)
			}
			_, det, err := f.prg.Eval(activation{rec: &record{m: m}})
			if err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
				t.Fatalf("evaluation: %v, want the cost limit exceeded", err)
			}
			if c := det.ActualCost(); c == nil || *c > 2*DefaultCostLimit {
				if c == nil {
					t.Fatal("no accounted cost")
				}
				t.Fatalf("accounted cost %d, want at most twice the limit (%d)", c, DefaultCostLimit)
			}
			v, err := r.Acquire(expr, "", message.ShapePlain, "")
			if err != nil {
				t.Fatal(err)
			}
			before := r.Stats().EvalErrors
			if v.Apply(m) != nil || r.Stats().EvalErrors != before+1 {
				t.Fatal("a record whose evaluation hit the cost limit was delivered, or not counted")
			}
			r.Release(v, "")
		})
	}
}

// TestHostileRefused: what the parser or the checker refuses outright,
// the calls among them whose cost the cost limit would not bound.
func TestHostileRefused(t *testing.T) {
	r := newRegistry(t, Config{})
	for _, tc := range []struct{ name, expr, want string }{
		{"deep nesting", strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200) + " == 1", "recursion"},
		{"deep member chain", "value" + strings.Repeat(".a", 500) + " == 1", "recursion"},
		{"huge literal", `value.s == "` + strings.Repeat("a", MaxExprLen) + `"`, "over the limit"},
		{"deep lists", strings.Repeat("[", 100) + strings.Repeat("]", 100) + " == []", "recursion"},
		{"three comprehensions deep", ten + ".all(a, " + ten + ".all(b, " + ten + ".all(c, a+b+c >= 0)))", "nesting limit"},
		{"pattern not a literal", `key.matches("(?:a{1000})" + "")`, "string literal"},
		{"pattern from the record", `key.matches(value.p)`, "string literal"},
		{"global matches, pattern not a literal", `matches(key, key)`, "string literal"},
		{"program too large", `key.matches("\\pL{1000}!")`, "over the limit of 200"},
		{"nested repeats", `key.matches("(?:(?:a{20}){20})")`, "over the limit of 200"},
		{"large program of a short pattern", `key.matches("(?i)[\\pL\\pN]{150}x{60}")`, "over the limit of 200"},
		{"time zone", `timestamp.getHours("Europe/Paris") >= 0`, "time zone"},
		{"unknown time zone", `timestamp.getDayOfWeek("No/Such_Zone") >= 0`, "time zone"},
		{"pattern that does not compile", `key.matches("(")`, "missing closing )"},
	} {
		_, err := r.Acquire(tc.expr, "", message.ShapePlain, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
	if n := r.Stats().Alive; n != 0 {
		t.Fatalf("%d views alive after refusals", n)
	}
}

// TestMatchesChargedByWork: a call of matches costs its text's length
// times its pattern's program size (over matchStepsPerCost), not the
// pattern's length as CEL charges it: \pL{190} is 8 bytes and 192
// instructions. A call whose work is over the cost limit's worth is an
// error, without running the regular expression.
func TestMatchesChargedByWork(t *testing.T) {
	r := newRegistry(t, Config{})
	key := strings.Repeat("é", 150) // 300 bytes
	m := encodeRec(t, rec(key, `{}`))[0]
	cost := func(expr string, limit uint64) (uint64, error) {
		t.Helper()
		f, err := compileExpr(r.env, expr, limit)
		if err != nil {
			t.Fatal(err)
		}
		_, det, err := f.prg.Eval(activation{rec: &record{m: m}})
		return *det.ActualCost(), err
	}
	insts, err := regexInsts(`\pL{190}`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cost(`key.matches("\\pL{190}")`, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(key)*insts) / matchStepsPerCost; got < want {
		t.Fatalf("matches of a %d-instruction program over %d bytes cost %d, want at least %d", insts, len(key), got, want)
	}
	if small, _ := cost(`key.matches("é")`, 1<<20); small >= got/10 {
		t.Fatalf("a one-rune pattern costs %d, a %d-instruction one %d: not charged by the program", small, insts, got)
	}
	// Over the cost limit's worth in one call: refused before it runs.
	if _, err := cost(`key.matches("\\pL{190}")`, 100); err == nil || !strings.Contains(err.Error(), "over the limit of") {
		t.Fatalf("a call of 3 times the limit's work: %v, want refused", err)
	}
}

// BenchmarkHostile shows the bounded cost of the hostile expressions per
// record (each stops at the cost limit), beside a typical filter, and
// matches over texts of growing length: RE2's time grows with the text,
// linearly, where a backtracking engine's would double with each 'a'.
func BenchmarkHostile(b *testing.B) {
	r := newRegistry(b, Config{})
	small := encodeRec(b, rec("k", `{"s":"`+strings.Repeat("a", 1000)+`!","temperature":31}`))[0]
	bench := func(name, expr string, m *message.Message) {
		f, err := compileExpr(r.env, expr, DefaultCostLimit)
		if err != nil {
			b.Fatal(err)
		}
		rc := &record{m: m}
		rc.value()
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				f.prg.Eval(activation{rec: rc})
			}
		})
	}
	bench("typical", "value.temperature > 30", small)
	for name, expr := range hostile {
		bench(strings.ReplaceAll(name, " ", "-"), expr, small)
	}
	for _, n := range []int{1 << 6, 1 << 8, 1 << 10} {
		m := encodeRec(b, rec("k", `{"s":"`+strings.Repeat("a", n)+`!"}`))[0]
		bench(fmt.Sprintf("regex-bomb/text=%d", n), `value.s.matches("^(a+)+$")`, m)
	}
}

// BenchmarkWorstRecord measures the bound of what filters cost the
// publisher per record: DefaultMaxViews distinct views (the most alive at
// once), each of the costliest hostile expression, applied to one
// record; ns/op is per record, for all of them.
func BenchmarkWorstRecord(b *testing.B) {
	for name, expr := range hostile {
		b.Run(strings.ReplaceAll(name, " ", "-"), func(b *testing.B) {
			r := newRegistry(b, Config{})
			var views []*View
			for i := range DefaultMaxViews {
				v, err := r.Acquire(fmt.Sprintf("offset != %d && (%s)", -1-i, expr), "", message.ShapePlain, "")
				if err != nil {
					b.Fatal(err)
				}
				views = append(views, v)
			}
			value := `{"s":"` + strings.Repeat("a", 1000) + `!"}`
			b.ReportAllocs()
			for range b.N {
				m := encodeRec(b, rec("k", value))[0]
				for _, v := range views {
					v.Apply(m)
				}
			}
		})
	}
}

// BenchmarkApply measures a view's work per record: a filter, a
// projection, and both, on a record of about 300 bytes, once decoded
// (the registry's shared record) and from cold.
func BenchmarkApply(b *testing.B) {
	const value = `{"Timestamp":1700000000000000000,"temperature":31.25,"humidity":40.5,"pressure":1013.2,"voltage":229.871,` +
		`"current":2.113,"rpm":1450,"status":"running","firmware":"4.2.17","Tags":{"location":"hall-3","line":"L1","device":"sensor-0042"}}`
	for _, tc := range []struct{ name, where, fields string }{
		{"filter", "value.temperature > 30", ""},
		{"projection", "", "temperature,Tags.location"},
		{"filter+projection", "value.temperature > 30", "temperature,Tags.location"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := newRegistry(b, Config{})
			v, err := r.Acquire(tc.where, tc.fields, message.ShapePlain, "")
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for range b.N {
				// A new message each time: nothing is reused from the
				// previous record.
				m := encodeRec(b, rec("k", value))[0]
				if v.Apply(m) == nil {
					b.Fatal("dropped")
				}
			}
		})
	}
}

// TestConcatenationChargedBySize: a concatenation of texts read from the
// value (dyn, dispatched at run time, which CEL charges 1) costs the size
// of what it builds.
func TestConcatenationChargedBySize(t *testing.T) {
	r := newRegistry(t, Config{})
	m := encodeRec(t, rec("k", `{"s":"`+strings.Repeat("a", 1000)+`"}`))[0]
	f, err := compileExpr(r.env, "(value.s + value.s + value.s + value.s).size() > 0", 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	rc := &record{m: m}
	_, det, err := f.prg.Eval(activation{rec: rc})
	if err != nil {
		t.Fatal(err)
	}
	// Three concatenations build 2,000, 3,000 and 4,000 bytes.
	if want := uint64(9000 / growthBytesPerCost); *det.ActualCost() < want {
		t.Fatalf("cost %d, want at least %d", *det.ActualCost(), want)
	}
}
