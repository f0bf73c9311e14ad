package view

import (
	"fmt"
	"strings"
	"testing"

	"github.com/wsdest/wsdest/internal/message"
)

const ten = "[0,1,2,3,4,5,6,7,8,9]"

// hostile are expressions written to cost as much CPU as they can, within
// the length limit; each is stopped by CEL's cost limit.
var hostile = map[string]string{
	"nested comprehensions": ten + ".all(a, " + ten + ".all(b, " + ten + ".all(c, " + ten + ".all(d, " + ten + ".all(e, a+b+c+d+e >= 0)))))",
	"string growth":         ten + ".all(a, " + ten + ".all(b, " + ten + ".all(c, (value.s + value.s + value.s + value.s).size() > 0)))",
	"list growth":           ten + ".map(a, " + ten + ".map(b, " + ten + ".map(c, " + ten + ".map(d, " + ten + ")))).size() > 0",
	"regex in a loop":       ten + ".all(a, " + ten + ".all(b, !value.s.matches(\"^(a+)+$\")))",
}

// TestHostileStoppedAtCostLimit: every hostile expression compiles (it is
// valid CEL) and each evaluation against a record ends with CEL's cost
// limit: the record is dropped, the error counted.
func TestHostileStoppedAtCostLimit(t *testing.T) {
	r := newRegistry(t, Config{})
	m := encodeRec(t, rec("k", `{"s":"`+strings.Repeat("a", 1000)+`!"}`))[0]
	for name, expr := range hostile {
		t.Run(name, func(t *testing.T) {
			if len(expr) > MaxExprLen {
				t.Fatalf("%d bytes: over the length limit", len(expr))
			}
			f, err := compileFilter(r.env, expr, DefaultCostLimit)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = f.prg.Eval(activation{rec: &record{m: m}})
			if err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
				t.Fatalf("evaluation: %v, want the cost limit exceeded", err)
			}
			v, err := r.Acquire(expr, "", message.ShapePlain)
			if err != nil {
				t.Fatal(err)
			}
			before := r.Stats().EvalErrors
			if v.Apply(m) != nil || r.Stats().EvalErrors != before+1 {
				t.Fatal("a record whose evaluation hit the cost limit was delivered, or not counted")
			}
			r.Release(v)
		})
	}
}

// TestHostileParseRefused: what the parser refuses outright.
func TestHostileParseRefused(t *testing.T) {
	r := newRegistry(t, Config{})
	for name, expr := range map[string]string{
		"deep nesting":      strings.Repeat("(", 200) + "1" + strings.Repeat(")", 200) + " == 1",
		"deep member chain": "value" + strings.Repeat(".a", 600) + " == 1",
		"huge literal":      `value.s == "` + strings.Repeat("a", MaxExprLen) + `"`,
		"deep lists":        strings.Repeat("[", 100) + strings.Repeat("]", 100) + " == []",
	} {
		if _, err := r.Acquire(expr, "", message.ShapePlain); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// BenchmarkHostile shows the bounded cost of the hostile expressions per
// record (each stops at the cost limit), beside a typical filter, and
// matches over texts of growing length: RE2's time grows with the text,
// linearly, where a backtracking engine's would double with each 'a'.
func BenchmarkHostile(b *testing.B) {
	r := newRegistry(b, Config{})
	small := encodeRec(b, rec("k", `{"s":"aaaa!","temperature":31}`))[0]
	bench := func(name, expr string, m *message.Message) {
		f, err := compileFilter(r.env, expr, DefaultCostLimit)
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
	for _, n := range []int{1 << 10, 1 << 12, 1 << 14} {
		m := encodeRec(b, rec("k", `{"s":"`+strings.Repeat("a", n)+`!"}`))[0]
		bench(fmt.Sprintf("regex-bomb/text=%d", n), `value.s.matches("^(a+)+$")`, m)
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
			v, err := r.Acquire(tc.where, tc.fields, message.ShapePlain)
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
