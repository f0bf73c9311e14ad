package view

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/wsdest/wsdest/internal/jsonscan"
)

// FuzzProjection: whatever the value and the field list, a projection
// never fails on a JSON object and yields JSON holding only members the
// list names, each as it was in the value; a value that is not an object
// is left alone.
func FuzzProjection(f *testing.F) {
	f.Add(`{"a":1,"b":{"c":2,"d":[1,{"e":3}]},"f":"x"}`, "a,b.c")
	f.Add(`{"a\"b":1,"\u00e9":{"x":null}}`, "a\"b,é.x")
	f.Add(`[1,2]`, "a")
	f.Add(` { "a" : { "b" : { "c" : true } } } `, "a.b.c,a.b")
	f.Add(`{"a":1,"a":2}`, "a")
	f.Fuzz(func(t *testing.T, value, fields string) {
		p, err := parseFields(fields)
		if err != nil {
			return
		}
		out := p.apply([]byte(value))
		trimmed := strings.TrimLeft(value, " \t\r\n")
		if !jsonscan.Valid([]byte(value)) || !strings.HasPrefix(trimmed, "{") {
			if out != nil && jsonscan.Valid([]byte(value)) {
				t.Fatalf("a value that is not an object projected: %q", out)
			}
			return
		}
		if out == nil || !jsonscan.Valid(out) {
			t.Fatalf("projection of %q by %q: %q is not JSON", value, fields, out)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		for k := range got {
			if p.root.child(k) == nil {
				t.Fatalf("projection of %q by %q kept %q", value, fields, k)
			}
		}
	})
}
