package jsonscan

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzValid checks Valid against encoding/json (which lets invalid UTF-8
// through, hence the utf8.Valid) and Unescape against json.Unmarshal.
func FuzzValid(f *testing.F) {
	for _, s := range []string{`{"a":[1,-2.5e3,true,false,null,"x\u00e9\n"]}`, `"\ud83d\ude00"`, ` [ ] `, `01`, "\"\xff\"", `{"a":1,}`, benchRecord} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got := Valid(b)
		if want := json.Valid(b) && utf8.Valid(b); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", b, got, want)
		}
		if raw := bytes.TrimSpace(b); got && raw[0] == '"' {
			var want string
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			if u := Unescape(nil, raw); string(u) != want {
				t.Fatalf("Unescape(%q) = %q, want %q", raw, u, want)
			}
		}
	})
}
