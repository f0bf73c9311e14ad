package quix

import (
	"fmt"
	"unicode/utf8"
)

// span is a half-open byte range [start, end) of the body being decoded.
type span struct{ start, end int }

// maxDepth bounds nesting in Quix payloads so that a hostile payload cannot
// exhaust the stack; orjson, which Quix Streams uses, stops at a similar
// depth.
const maxDepth = 1000

// validMaxDepth is the nesting limit of ValidJSON, the same as
// encoding/json's.
const validMaxDepth = 10000

// payloadError reports invalid JSON, or valid JSON that is not the shape
// Quix defines. It carries only an offset, never the bytes, so that payload
// content cannot leak into logs.
type payloadError struct {
	off    int
	msg    string
	syntax bool
}

func (e *payloadError) Error() string {
	if e.syntax {
		return fmt.Sprintf("invalid JSON at offset %d: %s", e.off, e.msg)
	}
	return fmt.Sprintf("at offset %d: %s", e.off, e.msg)
}

// errAt reports a JSON syntax error.
func errAt(off int, msg string) error { return &payloadError{off: off, msg: msg, syntax: true} }

// errShape reports valid JSON of the wrong shape.
func errShape(off int, msg string) error { return &payloadError{off: off, msg: msg} }

// scanner is a validating JSON scanner that reports the byte spans of
// values instead of building them, so that numbers and strings can be copied
// to the output exactly as received. It is stricter than encoding/json in
// one way that matters here: strings must be valid UTF-8, as orjson demands.
type scanner struct {
	s        []byte
	depth    int
	maxDepth int // zero means maxDepth
}

// ValidJSON reports whether b is exactly one JSON value (RFC 8259),
// surrounding whitespace allowed, in valid UTF-8. It accepts what
// encoding/json.Valid accepts, except invalid UTF-8, which json.Valid lets
// through inside strings; it is also several times faster, which matters
// because every plain record is checked.
func ValidJSON(b []byte) bool {
	sc := scanner{s: b, maxDepth: validMaxDepth}
	end, err := sc.value(sc.ws(0))
	return err == nil && sc.ws(end) == len(b)
}

func (sc *scanner) ws(i int) int {
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

// str scans the string whose opening quote is at i. It returns the index
// after the closing quote and whether the string holds escapes.
func (sc *scanner) str(i int) (int, bool, error) {
	s := sc.s
	i++
	esc := false
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

// num scans the number starting at i (RFC 8259 grammar).
func (sc *scanner) num(i int) (int, error) {
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

func (sc *scanner) lit(i int, word string) (int, error) {
	if len(sc.s)-i < len(word) || string(sc.s[i:i+len(word)]) != word {
		return 0, errAt(i, "invalid literal")
	}
	return i + len(word), nil
}

// value scans the value starting at i (no leading whitespace) and returns
// the index just after it.
func (sc *scanner) value(i int) (int, error) {
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
		return sc.lit(i, "true")
	case c == 'f':
		return sc.lit(i, "false")
	case c == 'n':
		return sc.lit(i, "null")
	case c == '-' || isDigit(c):
		return sc.num(i)
	}
	return 0, errAt(i, "unexpected character")
}

func (sc *scanner) enter(i int) error {
	sc.depth++
	limit := sc.maxDepth
	if limit == 0 {
		limit = maxDepth
	}
	if sc.depth > limit {
		return errAt(i, "nested too deeply")
	}
	return nil
}

func (sc *scanner) skipObject(i int) (int, error) {
	if err := sc.enter(i); err != nil {
		return 0, err
	}
	it, err := sc.objectStart(i)
	if err != nil {
		return 0, err
	}
	for {
		_, _, vs, ok, err := sc.objectNext(&it)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		if it.pos, err = sc.value(vs); err != nil {
			return 0, err
		}
	}
	sc.depth--
	return it.pos, nil
}

func (sc *scanner) skipArray(i int) (int, error) {
	if err := sc.enter(i); err != nil {
		return 0, err
	}
	it, err := sc.arrayStart(i)
	if err != nil {
		return 0, err
	}
	for {
		vs, ok, err := sc.arrayNext(&it)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		if it.pos, err = sc.value(vs); err != nil {
			return 0, err
		}
	}
	sc.depth--
	return it.pos, nil
}

// iter walks the members of an object or the elements of an array. After
// each successful objectNext or arrayNext the caller scans the value and
// stores the index after it in pos.
type iter struct {
	pos   int
	first bool
}

func (sc *scanner) objectStart(i int) (iter, error) {
	if i >= len(sc.s) || sc.s[i] != '{' {
		return iter{}, errAt(i, "expected object")
	}
	return iter{pos: i + 1, first: true}, nil
}

// objectNext returns the next member's key (quotes included), whether the
// key holds escapes, and where its value starts; ok is false after the
// closing brace, and it.pos then points just past it.
func (sc *scanner) objectNext(it *iter) (key span, esc bool, valStart int, ok bool, err error) {
	s := sc.s
	i := sc.ws(it.pos)
	if i >= len(s) {
		return span{}, false, 0, false, errAt(i, "unexpected end of object")
	}
	if s[i] == '}' {
		it.pos = i + 1
		return span{}, false, 0, false, nil
	}
	if !it.first {
		if s[i] != ',' {
			return span{}, false, 0, false, errAt(i, "expected ',' or '}'")
		}
		i = sc.ws(i + 1)
	}
	it.first = false
	if i >= len(s) || s[i] != '"' {
		return span{}, false, 0, false, errAt(i, "expected object key")
	}
	end, esc, err := sc.str(i)
	if err != nil {
		return span{}, false, 0, false, err
	}
	j := sc.ws(end)
	if j >= len(s) || s[j] != ':' {
		return span{}, false, 0, false, errAt(j, "expected ':'")
	}
	return span{i, end}, esc, sc.ws(j + 1), true, nil
}

func (sc *scanner) arrayStart(i int) (iter, error) {
	if i >= len(sc.s) || sc.s[i] != '[' {
		return iter{}, errAt(i, "expected array")
	}
	return iter{pos: i + 1, first: true}, nil
}

// arrayNext returns where the next element starts; ok is false after the
// closing bracket, and it.pos then points just past it.
func (sc *scanner) arrayNext(it *iter) (valStart int, ok bool, err error) {
	s := sc.s
	i := sc.ws(it.pos)
	if i >= len(s) {
		return 0, false, errAt(i, "unexpected end of array")
	}
	if s[i] == ']' {
		it.pos = i + 1
		return 0, false, nil
	}
	if !it.first {
		if s[i] != ',' {
			return 0, false, errAt(i, "expected ',' or ']'")
		}
		i = sc.ws(i + 1)
	}
	it.first = false
	return i, true, nil
}

// unescape appends the decoded content of the JSON string raw (quotes
// included, already validated by str) to dst. Lone surrogates become
// U+FFFD, as in encoding/json.
func unescape(dst, raw []byte) []byte {
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
