package jsonscan

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"object", `{"a":[1,-2.5e3,true,false,null,"x\u00e9\n"]}`, true},
		{"surrounding whitespace", " \t\r\n[ ] \n", true},
		{"scalar", `0`, true},
		{"string with UTF-8", `"é😀"`, true},
		{"surrogate pair escape", `"\ud83d\ude00"`, true},
		{"lone surrogate escape", `"\ud83d"`, true},
		{"empty", ``, false},
		{"only whitespace", `  `, false},
		{"two values", `1 2`, false},
		{"trailing comma", `{"a":1,}`, false},
		{"leading zero", `01`, false},
		{"invalid UTF-8 in a string", "\"\xff\"", false},
		{"invalid UTF-8 outside strings", "[1]\xff", false},
		{"control character in a string", "\"\t\"", false},
		{"nested to the limit", strings.Repeat("[", DefaultMaxDepth) + strings.Repeat("]", DefaultMaxDepth), true},
		{"nested beyond the limit", strings.Repeat("[", DefaultMaxDepth+1) + strings.Repeat("]", DefaultMaxDepth+1), false},
		{"objects beyond the limit", strings.Repeat(`{"a":`, DefaultMaxDepth+1) + "1" + strings.Repeat("}", DefaultMaxDepth+1), false},
		{"siblings do not add up", "[" + strings.Repeat("[[]],", DefaultMaxDepth) + "[]]", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Valid([]byte(tt.in)); got != tt.want {
				t.Errorf("Valid = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestValidAgreesWithEncodingJSON checks Valid on inputs where the two must
// agree (valid UTF-8 everywhere).
func TestValidAgreesWithEncodingJSON(t *testing.T) {
	inputs := []string{
		`0`, `-0`, `-`, `01`, `1.`, `1.5`, `1e`, `1e+`, `1E-5`, `.5`, `+1`,
		`"a"`, `"\u12"`, `"\u123g"`, `"\q"`, `"abc`, `true`, `tru`, `nul`, `null`, `false`,
		`[]`, `[1,]`, `[,1]`, `[1 2]`, `{}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `{"a":1 "b":2}`,
		`{1:2}`, ` [ 1 , { "a" : [ ] } ] `, `[`, `{`, `]`, ``, `"\t"`, "\"\t\"",
	}
	for _, in := range inputs {
		if got, want := Valid([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("%q: Valid %v, encoding/json %v", in, got, want)
		}
	}
}

func TestUnescape(t *testing.T) {
	tests := []struct{ in, want string }{
		{`"abc"`, "abc"},
		{`"a\"b\\c\/d\b\f\n\r\t"`, "a\"b\\c/d\b\f\n\r\t"},
		{`"\u00e9\u20AC"`, "é€"},
		{`"\ud83d\ude00"`, "😀"},
		{`"\ud83d"`, "\uFFFD"},
		{`"\ude00x"`, "\uFFFDx"},
		{`"\ud83d\u0041"`, "\uFFFDA"},
	}
	for _, tt := range tests {
		if got := string(Unescape(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("Unescape(%s) = %q, want %q", tt.in, got, tt.want)
		}
		var want string
		if err := json.Unmarshal([]byte(tt.in), &want); err != nil || want != tt.want {
			t.Errorf("encoding/json disagrees on %s: %q %v", tt.in, want, err)
		}
	}
}

// TestWalk walks an object member by member, the way a decoder does, and
// checks the spans and escape flags it reports.
func TestWalk(t *testing.T) {
	in := []byte(` {"a" : [1, "x"], "b\n":null, "c":{"d":[]}} `)
	sc := New(in, 0)
	it, err := sc.ObjectStart(sc.Space(0))
	if err != nil {
		t.Fatal(err)
	}
	type member struct {
		key, val string
		esc      bool
	}
	var got []member
	for {
		key, esc, vs, ok, err := sc.ObjectNext(&it)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		end, err := sc.Value(vs)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, member{string(in[key.Start:key.End]), string(in[vs:end]), esc})
		it.Pos = end
	}
	want := []member{{`"a"`, `[1, "x"]`, false}, {`"b\n"`, `null`, true}, {`"c"`, `{"d":[]}`, false}}
	if len(got) != len(want) {
		t.Fatalf("members %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("member %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if sc.Space(it.Pos) != len(in) {
		t.Errorf("object ends at %d of %d", it.Pos, len(in))
	}
	// A walked object is left the way Value leaves one: its nesting is
	// released, so the depth budget is intact for whatever follows.
	if sc.depth != 0 {
		t.Errorf("depth %d after the walk", sc.depth)
	}
}

// TestErrors checks that a failed scan names the offset and the problem,
// never the input.
func TestErrors(t *testing.T) {
	tests := []struct {
		in     string
		depth  int
		offset int
		msg    string
	}{
		{`{"secret":tru}`, 0, 10, "invalid literal"},
		{`["secret\q"]`, 0, 8, "invalid escape"},
		{"[\"secret\xff\"]", 0, 8, "invalid UTF-8 in string"},
		{`[[[1]]]`, 2, 2, "nested too deeply"},
		{`{"secret" 1}`, 0, 10, "expected ':'"},
		{`[1 2]`, 0, 3, "expected ',' or ']'"},
		{`"secret`, 0, 7, "unexpected end of string"},
	}
	for _, tt := range tests {
		sc := New([]byte(tt.in), tt.depth)
		_, err := sc.Value(0)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: err = %v, want a SyntaxError", tt.in, err)
			continue
		}
		if se.Offset != tt.offset || se.Msg != tt.msg {
			t.Errorf("%q: offset %d %q, want %d %q", tt.in, se.Offset, se.Msg, tt.offset, tt.msg)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: error shows the input: %v", tt.in, err)
		}
	}
}

func TestValidDoesNotAllocate(t *testing.T) {
	b := []byte(benchRecord)
	if n := testing.AllocsPerRun(100, func() { Valid(b) }); n != 0 {
		t.Errorf("Valid allocates %v times per call", n)
	}
}
