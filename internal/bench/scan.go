package bench

import (
	"bytes"
	"strconv"
)

// AppendValue appends a produced record value: JSON holding the send time
// and sequence number, padded with 'x' to size bytes when it is shorter.
// The ts and seq fields come first, so a reader finds them without scanning
// the padding.
func AppendValue(dst []byte, tsNs, seq int64, size int) []byte {
	start := len(dst)
	dst = append(dst, `{"ts":`...)
	dst = strconv.AppendInt(dst, tsNs, 10)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendInt(dst, seq, 10)
	dst = append(dst, `,"pad":"`...)
	for n := size - (len(dst) - start) - 2; n > 0; n-- {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}

// scanTsSeq finds the ts and seq numbers in a delivered message by scanning
// its bytes: the message is our value as is, or wrapped by the server (an
// envelope holding it as an object, or as an escaped JSON string).
func scanTsSeq(p []byte) (ts, seq int64, ok bool) {
	ts, rest, ok := scanField(p, "ts")
	if !ok {
		return 0, 0, false
	}
	seq, _, ok = scanField(rest, "seq")
	return ts, seq, ok
}

// scanField finds `"name":` (or `\"name\":`) in p and parses the
// non-negative integer after it, returning the bytes after the number.
func scanField(p []byte, name string) (n int64, rest []byte, ok bool) {
	for len(p) > 0 {
		i := bytes.Index(p, []byte(name))
		if i < 0 {
			return 0, nil, false
		}
		before, after := p[:i], p[i+len(name):]
		p = after
		if !quoted(before, after) {
			continue
		}
		after = after[1:] // closing quote
		if len(before) > 1 && before[len(before)-2] == '\\' {
			after = after[1:] // it was \"name\"
		}
		for len(after) > 0 && after[0] == ' ' {
			after = after[1:]
		}
		if len(after) == 0 || after[0] != ':' {
			continue
		}
		after = after[1:]
		for len(after) > 0 && after[0] == ' ' {
			after = after[1:]
		}
		digits := 0
		for digits < len(after) && digits < 19 && after[digits] >= '0' && after[digits] <= '9' {
			n = n*10 + int64(after[digits]-'0')
			digits++
		}
		if digits == 0 {
			n = 0
			continue
		}
		return n, after[digits:], true
	}
	return 0, nil, false
}

// quoted reports whether the name between before and after is a JSON
// object key: `"name"` or `\"name\"`.
func quoted(before, after []byte) bool {
	if len(before) == 0 || before[len(before)-1] != '"' || len(after) == 0 {
		return false
	}
	if len(before) > 1 && before[len(before)-2] == '\\' {
		return len(after) > 1 && after[0] == '\\' && after[1] == '"'
	}
	return after[0] == '"'
}
