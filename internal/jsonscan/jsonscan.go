// Package jsonscan validates JSON (RFC 8259) and scans it in place: it
// reports where values start and end instead of building them, so that a
// caller can copy numbers and strings to its output exactly as received.
//
// Guarantees:
//   - Valid accepts exactly what encoding/json.Valid accepts, except
//     invalid UTF-8, which json.Valid lets through inside strings and
//     jsonscan rejects everywhere (browsers and orjson reject it too). The
//     fuzz target FuzzValid checks this against encoding/json.
//   - Nothing allocates except the error of a failed scan. Valid does not
//     allocate at all.
//   - Nesting is bounded (DefaultMaxDepth unless the Scanner says
//     otherwise), so hostile input cannot exhaust the stack.
//   - An error carries an offset and a fixed message, never input bytes,
//     so that record content cannot leak into logs.
//
// A Scanner is a small value meant to live on the caller's stack; it is not
// safe for concurrent use, but any number of Scanners may read the same
// bytes at once. Valid and Unescape are safe for concurrent use.
package jsonscan

import (
	"fmt"
	"unicode/utf8"
)

// DefaultMaxDepth is the nesting limit of Valid and of a Scanner made with
// maxDepth 0: the same as encoding/json's.
const DefaultMaxDepth = 10000

// Span is a half-open byte range [Start, End) of the scanned input.
type Span struct{ Start, End int }

// SyntaxError reports input that is not valid JSON. It holds the offset
// and a fixed message only, never the input.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.Offset, e.Msg)
}

func errAt(off int, msg string) error { return &SyntaxError{Offset: off, Msg: msg} }

// Valid reports whether b is exactly one JSON value (RFC 8259), surrounding
// whitespace allowed, in valid UTF-8, nested at most DefaultMaxDepth deep.
// It checks JSON and UTF-8 in one pass, about twice as fast as
// encoding/json.Valid followed by utf8.Valid on a telemetry record
// (BenchmarkValid), which matters because every plain record is checked.
func Valid(b []byte) bool {
	sc := New(b, DefaultMaxDepth)
	end, err := sc.Value(sc.Space(0))
	return err == nil && sc.Space(end) == len(b)
}

// Scanner validates the JSON in one byte slice piece by piece. Its methods
// take the offset to scan from and return the offset after what they
// scanned; every one of them validates what it passes over, strings
// included (escapes and UTF-8). Values are scanned with Value; objects and
// arrays can also be walked member by member with ObjectStart/ObjectNext
// and ArrayStart/ArrayNext, which is how a decoder picks out the parts it
// wants while the rest is still validated.
type Scanner struct {
	s        []byte
	depth    int
	maxDepth int
}

// New returns a Scanner over s that refuses nesting deeper than maxDepth
// objects and arrays; maxDepth 0 means DefaultMaxDepth.
func New(s []byte, maxDepth int) Scanner {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	return Scanner{s: s, maxDepth: maxDepth}
}

// Bytes returns the input the Scanner reads.
func (sc *Scanner) Bytes() []byte { return sc.s }

// Space returns the offset of the first byte at or after i that is not
// JSON whitespace, or len(input).
func (sc *Scanner) Space(i int) int {
	s := sc.s
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// str scans the string whose opening quote is at i. It returns the offset
// after the closing quote and whether the string holds escapes (if not,
// its content is the bytes between the quotes, as is).
func (sc *Scanner) str(i int) (end int, esc bool, err error) {
	s := sc.s
	if i >= len(s) || s[i] != '"' {
		return 0, false, errAt(i, "expected string")
	}
	i++
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			return i + 1, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(s) {
				return 0, false, errAt(i, "unexpected end of string")
			}
			switch s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(s) || !isHex4(s[i+2:i+6]) {
					return 0, false, errAt(i, "invalid \\u escape")
				}
				i += 6
			default:
				return 0, false, errAt(i, "invalid escape")
			}
		case c < 0x20:
			return 0, false, errAt(i, "control character in string")
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && n == 1 {
				return 0, false, errAt(i, "invalid UTF-8 in string")
			}
			i += n
		}
	}
	return 0, false, errAt(i, "unexpected end of string")
}

func isHex4(b []byte) bool {
	for _, c := range b[:4] {
		if unhex(c) < 0 {
			return false
		}
	}
	return true
}

func unhex(c byte) rune {
	switch {
	case '0' <= c && c <= '9':
		return rune(c - '0')
	case 'a' <= c && c <= 'f':
		return rune(c - 'a' + 10)
	case 'A' <= c && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// Number scans the number starting at i (RFC 8259 grammar: no leading
// zeros, no leading '+', digits on both sides of '.').
func (sc *Scanner) Number(i int) (int, error) {
	s := sc.s
	start := i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	default:
		return 0, errAt(start, "invalid number")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || !isDigit(s[i]) {
			return 0, errAt(start, "invalid number")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || !isDigit(s[i]) {
			return 0, errAt(start, "invalid number")
		}
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	return i, nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// Literal scans word (true, false or null) at i.
func (sc *Scanner) Literal(i int, word string) (int, error) {
	if len(sc.s)-i < len(word) || string(sc.s[i:i+len(word)]) != word {
		return 0, errAt(i, "invalid literal")
	}
	return i + len(word), nil
}

// Value scans the value starting at i (no leading whitespace) and returns
// the offset just after it.
func (sc *Scanner) Value(i int) (int, error) {
	s := sc.s
	if i >= len(s) {
		return 0, errAt(i, "unexpected end of input")
	}
	switch c := s[i]; {
	case c == '"':
		end, _, err := sc.str(i)
		return end, err
	case c == '{':
		return sc.skipObject(i)
	case c == '[':
		return sc.skipArray(i)
	case c == 't':
		return sc.Literal(i, "true")
	case c == 'f':
		return sc.Literal(i, "false")
	case c == 'n':
		return sc.Literal(i, "null")
	case c == '-' || isDigit(c):
		return sc.Number(i)
	}
	return 0, errAt(i, "unexpected character")
}

func (sc *Scanner) skipObject(i int) (int, error) {
	it, err := sc.ObjectStart(i)
	if err != nil {
		return 0, err
	}
	for {
		_, _, vs, ok, err := sc.ObjectNext(&it)
		if err != nil {
			return 0, err
		}
		if !ok {
			return it.Pos, nil
		}
		if it.Pos, err = sc.Value(vs); err != nil {
			return 0, err
		}
	}
}

func (sc *Scanner) skipArray(i int) (int, error) {
	it, err := sc.ArrayStart(i)
	if err != nil {
		return 0, err
	}
	for {
		vs, ok, err := sc.ArrayNext(&it)
		if err != nil {
			return 0, err
		}
		if !ok {
			return it.Pos, nil
		}
		if it.Pos, err = sc.Value(vs); err != nil {
			return 0, err
		}
	}
}

// Iter walks the members of an object or the elements of an array. After
// each ObjectNext or ArrayNext that returns ok, the caller scans the value
// (with Value or anything more specific) and stores the offset after it in
// Pos.
type Iter struct {
	Pos   int
	first bool
}

// ObjectStart begins an object whose '{' is at i, counting one level of
// nesting until ObjectNext reports its end.
func (sc *Scanner) ObjectStart(i int) (Iter, error) {
	if i >= len(sc.s) || sc.s[i] != '{' {
		return Iter{}, errAt(i, "expected object")
	}
	if err := sc.enter(i); err != nil {
		return Iter{}, err
	}
	return Iter{Pos: i + 1, first: true}, nil
}

// ObjectNext returns the next member's key (quotes included), whether the
// key holds escapes, and where its value starts; ok is false after the
// closing brace, and it.Pos then points just past it.
func (sc *Scanner) ObjectNext(it *Iter) (key Span, esc bool, valStart int, ok bool, err error) {
	s := sc.s
	i := sc.Space(it.Pos)
	if i >= len(s) {
		return Span{}, false, 0, false, errAt(i, "unexpected end of object")
	}
	if s[i] == '}' {
		it.Pos = i + 1
		sc.depth--
		return Span{}, false, 0, false, nil
	}
	if !it.first {
		if s[i] != ',' {
			return Span{}, false, 0, false, errAt(i, "expected ',' or '}'")
		}
		i = sc.Space(i + 1)
	}
	it.first = false
	if i >= len(s) || s[i] != '"' {
		return Span{}, false, 0, false, errAt(i, "expected object key")
	}
	end, esc, err := sc.str(i)
	if err != nil {
		return Span{}, false, 0, false, err
	}
	j := sc.Space(end)
	if j >= len(s) || s[j] != ':' {
		return Span{}, false, 0, false, errAt(j, "expected ':'")
	}
	return Span{i, end}, esc, sc.Space(j + 1), true, nil
}

// ArrayStart begins an array whose '[' is at i, counting one level of
// nesting until ArrayNext reports its end.
func (sc *Scanner) ArrayStart(i int) (Iter, error) {
	if i >= len(sc.s) || sc.s[i] != '[' {
		return Iter{}, errAt(i, "expected array")
	}
	if err := sc.enter(i); err != nil {
		return Iter{}, err
	}
	return Iter{Pos: i + 1, first: true}, nil
}

// ArrayNext returns where the next element starts; ok is false after the
// closing bracket, and it.Pos then points just past it.
func (sc *Scanner) ArrayNext(it *Iter) (valStart int, ok bool, err error) {
	s := sc.s
	i := sc.Space(it.Pos)
	if i >= len(s) {
		return 0, false, errAt(i, "unexpected end of array")
	}
	if s[i] == ']' {
		it.Pos = i + 1
		sc.depth--
		return 0, false, nil
	}
	if !it.first {
		if s[i] != ',' {
			return 0, false, errAt(i, "expected ',' or ']'")
		}
		i = sc.Space(i + 1)
	}
	it.first = false
	return i, true, nil
}

func (sc *Scanner) enter(i int) error {
	sc.depth++
	if sc.depth > sc.maxDepth {
		return errAt(i, "nested too deeply")
	}
	return nil
}

// Unescape appends the content of the JSON string raw (quotes included,
// already validated by Value or ObjectNext) to dst, escapes decoded. Lone
// surrogates become U+FFFD, as in encoding/json.
func Unescape(dst, raw []byte) []byte {
	raw = raw[1 : len(raw)-1]
	for i := 0; i < len(raw); {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			i++
			continue
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+2:])
			i += 6
			if utf16IsHigh(r) && i+6 <= len(raw) && raw[i] == '\\' && raw[i+1] == 'u' {
				if r2 := hex4(raw[i+2:]); utf16IsLow(r2) {
					dst = utf8.AppendRune(dst, (r-0xD800)<<10+(r2-0xDC00)+0x10000)
					i += 6
					continue
				}
			}
			if utf16IsHigh(r) || utf16IsLow(r) {
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

func hex4(b []byte) rune {
	return unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3])
}

func utf16IsHigh(r rune) bool { return 0xD800 <= r && r < 0xDC00 }
func utf16IsLow(r rune) bool  { return 0xDC00 <= r && r < 0xE000 }
