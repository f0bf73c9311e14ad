package quix

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/wsdest/wsdest/internal/jsonscan"
)

var sectionNames = [3]string{"NumericValues", "StringValues", "BinaryValues"}

const (
	keyOther = iota
	keyTimestamps
	keyNumeric
	keyString
	keyBinary
	keyTags
)

// content returns the decoded content of the JSON string at sp; when it
// holds escapes it is unescaped into d.tmp, so the result is only valid
// until the next call.
func (d *Decoder) content(s []byte, sp jsonscan.Span, esc bool) []byte {
	return d.strContent(s, sp, esc, &d.tmp)
}

func (d *Decoder) topKey(body []byte, key jsonscan.Span, esc bool) int {
	switch string(d.content(body, key, esc)) {
	case "Timestamps":
		return keyTimestamps
	case "NumericValues":
		return keyNumeric
	case "StringValues":
		return keyString
	case "BinaryValues":
		return keyBinary
	case "TagValues":
		return keyTags
	}
	return keyOther
}

func isNumberStart(c byte) bool { return c == '-' || '0' <= c && c <= '9' }

// timeseries decodes a TimeseriesData/ParameterData payload:
//
//	{"Timestamps":[...], "NumericValues":{"p":[...]}, "StringValues":{...},
//	 "BinaryValues":{...}, "TagValues":{...}}
func (d *Decoder) timeseries(body []byte, dst *Result) error {
	sc := newScanner(body)
	it, err := sc.ObjectStart(sc.Space(0))
	if err != nil {
		return err
	}
	d.elems, d.ts = d.elems[:0], d.ts[:0]
	for k := range d.sect {
		d.sect[k] = d.sect[k][:0]
	}
	d.tagCol = d.tagCol[:0]
	haveTS := false
	for {
		key, esc, vs, more, err := sc.ObjectNext(&it)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		var end int
		switch d.topKey(body, key, esc) {
		case keyTimestamps:
			haveTS = true
			end, err = d.timestamps(&sc, vs)
		case keyNumeric:
			end, err = d.section(&sc, vs, &d.sect[0], false, true)
		case keyString:
			end, err = d.section(&sc, vs, &d.sect[1], false, false)
		case keyBinary:
			end, err = d.section(&sc, vs, &d.sect[2], true, false)
		case keyTags:
			end, err = d.section(&sc, vs, &d.tagCol, false, false)
		default:
			end, err = sc.Value(vs)
		}
		if err != nil {
			return err
		}
		it.Pos = end
	}
	if i := sc.Space(it.Pos); i != len(body) {
		return errTrailing(i)
	}
	if !haveTS {
		return errors.New("missing Timestamps")
	}
	for k := range d.sect {
		for _, c := range d.sect[k] {
			if string(d.content(body, c.name, c.esc)) == "Timestamp" {
				return fmt.Errorf("a parameter in %s is named Timestamp, which conflicts with the row timestamp", sectionNames[k])
			}
		}
	}
	d.cols = d.merge(body, d.cols, d.sect[0], d.sect[1], d.sect[2])
	d.tagOut = d.merge(body, d.tagOut, d.tagCol, nil, nil)
	n := len(d.ts)
	for i := range d.cols {
		c := &d.cols[i]
		if c.n != n {
			return fmt.Errorf("a parameter column has %d values for %d timestamps", c.n, n)
		}
		c.tags = string(d.content(body, c.name, c.esc)) == "Tags"
	}
	for _, c := range d.tagOut {
		if c.n != n {
			return fmt.Errorf("a tag column has %d values for %d timestamps", c.n, n)
		}
	}
	return d.writeRows(body, dst)
}

// numberCount returns how many elements the JSON array at i holds if it
// is an array of numbers (or nulls) only: its commas plus one, 0 for an
// empty array or no array. It is a capacity hint, at most d.maxRows(): the
// array is parsed properly afterwards, so a wrong guess costs no more than
// that capacity.
func (d *Decoder) numberCount(s []byte, i int) int {
	if i >= len(s) || s[i] != '[' {
		return 0
	}
	end := bytes.IndexByte(s[i:], ']')
	if end < 0 {
		return 0
	}
	a := s[i+1 : i+end]
	if len(bytes.TrimSpace(a)) == 0 {
		return 0
	}
	return min(bytes.Count(a, []byte{','})+1, d.maxRows())
}

func (d *Decoder) timestamps(sc *jsonscan.Scanner, i int) (int, error) {
	d.ts = slices.Grow(d.ts[:0], d.numberCount(sc.Bytes(), i))
	it, err := sc.ArrayStart(i)
	if err != nil {
		return 0, errShape(i, "Timestamps must be an array")
	}
	for {
		vs, more, err := sc.ArrayNext(&it)
		if err != nil {
			return 0, err
		}
		if !more {
			return it.Pos, nil
		}
		if vs >= len(sc.Bytes()) || !isNumberStart(sc.Bytes()[vs]) {
			return 0, errShape(vs, "a timestamp is not a number")
		}
		end, err := sc.Number(vs)
		if err != nil {
			return 0, err
		}
		if len(d.ts) == d.maxRows() {
			return 0, fmt.Errorf("more than %d timestamps: %w", d.maxRows(), ErrLimit)
		}
		d.ts = append(d.ts, jsonscan.Span{Start: vs, End: end})
		it.Pos = end
	}
}

// section parses one of NumericValues, StringValues, BinaryValues or
// TagValues: an object of name -> array of values. A repeated section
// replaces the earlier one, as with any repeated JSON key in Quix Streams.
// The elements of each column are appended to d.elems, which grows by a
// column at a time: the length of Timestamps when it came first, or the
// count of a numeric column's numbers.
func (d *Decoder) section(sc *jsonscan.Scanner, i int, cols *[]column, binary, numeric bool) (int, error) {
	*cols = (*cols)[:0]
	s := sc.Bytes()
	if i < len(s) && s[i] == 'n' {
		return sc.Literal(i, "null")
	}
	it, err := sc.ObjectStart(i)
	if err != nil {
		return 0, errShape(i, "a values section must be an object")
	}
	for {
		key, esc, vs, more, err := sc.ObjectNext(&it)
		if err != nil {
			return 0, err
		}
		if !more {
			return it.Pos, nil
		}
		c := column{name: key, esc: esc, binary: binary, first: len(d.elems)}
		hint := len(d.ts)
		if hint == 0 && numeric {
			hint = d.numberCount(s, vs)
		}
		d.elems = slices.Grow(d.elems, hint)
		ait, err := sc.ArrayStart(vs)
		if err != nil {
			return 0, errShape(vs, "a values column must be an array")
		}
		for {
			es, more, err := sc.ArrayNext(&ait)
			if err != nil {
				return 0, err
			}
			if !more {
				break
			}
			ee, err := sc.Value(es)
			if err != nil {
				return 0, err
			}
			if binary && s[es] != '"' && s[es] != 'n' {
				return 0, errShape(es, "a binary value is not a base64 string or null")
			}
			d.elems = append(d.elems, jsonscan.Span{Start: es, End: ee})
			ait.Pos = ee
		}
		c.n = len(d.elems) - c.first
		*cols = append(*cols, c)
		it.Pos = ait.Pos
	}
}

// mergeHashMin is the column count from which merge uses a hash table
// instead of comparing every pair of names.
const mergeHashMin = 16

// merge concatenates column lists the way Quix Streams builds its row dict:
// when a name repeats, the column stays at the position of its first
// occurrence and takes the values of its last one.
func (d *Decoder) merge(body []byte, out []column, lists ...[]column) []column {
	out = out[:0]
	total := 0
	for _, l := range lists {
		total += len(l)
	}
	if total < mergeHashMin {
		for _, l := range lists {
			for _, c := range l {
				out = d.mergeLinear(body, out, c)
			}
		}
		return out
	}
	size := 1
	for size < 2*total {
		size <<= 1
	}
	tab := d.tab[:0]
	for range size {
		tab = append(tab, -1)
	}
	d.tab = tab
	mask := uint64(size - 1)
	for _, l := range lists {
		for _, c := range l {
			h := fnv(d.content(body, c.name, c.esc)) & mask
			for {
				j := tab[h]
				if j < 0 {
					tab[h] = int32(len(out))
					out = append(out, c)
					break
				}
				if d.sameName(body, out[j], c) {
					replaceColumn(&out[j], c)
					break
				}
				h = (h + 1) & mask
			}
		}
	}
	return out
}

func (d *Decoder) mergeLinear(body []byte, out []column, c column) []column {
	for j := range out {
		if d.sameName(body, out[j], c) {
			replaceColumn(&out[j], c)
			return out
		}
	}
	return append(out, c)
}

// replaceColumn gives dst the values of c but keeps dst's name spelling,
// since the row key keeps its first occurrence.
func replaceColumn(dst *column, c column) {
	name, esc := dst.name, dst.esc
	*dst = c
	dst.name, dst.esc = name, esc
}

func (d *Decoder) sameName(body []byte, a, b column) bool {
	if !a.esc && !b.esc {
		return bytes.Equal(body[a.name.Start:a.name.End], body[b.name.Start:b.name.End])
	}
	// strContent may return a slice of body; keep such results out of the
	// scratch fields, which are written to.
	x := d.strContent(body, a.name, a.esc, &d.tmp)
	y := d.strContent(body, b.name, b.esc, &d.tmp2)
	return bytes.Equal(x, y)
}

func fnv(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

// growRows makes room for need more bytes of rows in r.buf. A buffer kept
// from a much larger record is not reused: rows the caller keeps (Detach)
// would pin all of it.
func (r *Result) growRows(need int) {
	if cap(r.buf) > 2*need+4096 {
		r.buf = nil
	}
	r.buf = slices.Grow(r.buf, need)
}

func (d *Decoder) writeRows(body []byte, dst *Result) error {
	// The rows' size is known before they are written (a binary value's
	// base64 is taken as long as the payload's), so that the buffer is
	// allocated once instead of growing by copies; never past the limit,
	// which appendRows checks.
	dst.growRows(min(d.rowsLen()+len(d.ts)*dst.gap, d.maxDecoded()+1))
	dst.ends = slices.Grow(dst.ends, len(d.ts))
	var err error
	dst.buf, err = d.appendRows(dst.buf, body, dst)
	return err
}

// rowsLen returns the bytes appendRows writes for the rows, counting each
// binary value's base64 as long as the payload's text of it.
func (d *Decoder) rowsLen() int {
	rows := len(d.ts)
	spans := func(first int) int {
		n := 0
		for _, el := range d.elems[first : first+rows] {
			n += el.End - el.Start
		}
		return n
	}
	// The tags object of every row: braces, commas, names and colons, and
	// the values.
	tags := rows * (2 + max(len(d.tagOut)-1, 0))
	for i := range d.tagOut {
		c := &d.tagOut[i]
		tags += rows*(c.name.End-c.name.Start+1) + spans(c.first)
	}
	n := rows * (2 + len(`,"Timestamp":`) + max(len(d.cols)-1, 0))
	for _, ts := range d.ts {
		n += ts.End - ts.Start
	}
	wroteTags := false
	for i := range d.cols {
		c := &d.cols[i]
		n += rows * (c.name.End - c.name.Start + 1)
		if c.tags {
			n += tags
			wroteTags = true
		} else {
			n += spans(c.first)
		}
	}
	if !wroteTags {
		n += rows*len(`"Tags":`) + tags
		if len(d.cols) > 0 {
			n += rows
		}
	}
	return n
}

// appendRows appends the rows to buf, recording each row's end in dst.ends.
// It returns buf even on error so that its capacity is kept for reuse.
func (d *Decoder) appendRows(buf, body []byte, dst *Result) ([]byte, error) {
	for r := range d.ts {
		buf = appendGap(buf, dst.gap)
		buf = append(buf, '{')
		wroteTags := false
		for ci := range d.cols {
			c := &d.cols[ci]
			if ci > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, body[c.name.Start:c.name.End]...)
			buf = append(buf, ':')
			el := d.elems[c.first+r]
			switch {
			case c.tags:
				// Quix Streams decodes the value (and fails on bad base64)
				// before the tags object overwrites it.
				if c.binary && body[el.Start] == '"' {
					if err := d.decodeBinary(body, el); err != nil {
						return buf, err
					}
				}
				buf = d.appendTags(buf, body, r)
				wroteTags = true
			case c.binary && body[el.Start] == '"':
				if err := d.decodeBinary(body, el); err != nil {
					return buf, err
				}
				buf = append(buf, '"')
				buf = base64.StdEncoding.AppendEncode(buf, d.bin)
				buf = append(buf, '"')
			default:
				buf = append(buf, body[el.Start:el.End]...)
			}
		}
		if !wroteTags {
			if len(d.cols) > 0 {
				buf = append(buf, ',')
			}
			buf = append(buf, `"Tags":`...)
			buf = d.appendTags(buf, body, r)
		}
		buf = append(buf, `,"Timestamp":`...)
		ts := d.ts[r]
		buf = append(buf, body[ts.Start:ts.End]...)
		buf = append(buf, '}')
		if len(buf)-(r+1)*dst.gap > d.maxDecoded() {
			return buf, fmt.Errorf("rows over %d bytes: %w", d.maxDecoded(), ErrLimit)
		}
		dst.ends = append(dst.ends, len(buf))
	}
	return buf, nil
}

// appendGap appends the n bytes left free before a row (Result.Gap).
func appendGap(buf []byte, n int) []byte {
	const zeros = "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	for ; n > len(zeros); n -= len(zeros) {
		buf = append(buf, zeros...)
	}
	return append(buf, zeros[:n]...)
}

func (d *Decoder) decodeBinary(body []byte, el jsonscan.Span) error {
	var err error
	d.bin, err = base64.StdEncoding.AppendDecode(d.bin[:0], d.content(body, el, hasEscape(body[el.Start:el.End])))
	if err != nil {
		return errShape(el.Start, "a binary value is not valid base64")
	}
	return nil
}

func (d *Decoder) appendTags(buf, body []byte, r int) []byte {
	buf = append(buf, '{')
	for i := range d.tagOut {
		c := &d.tagOut[i]
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, body[c.name.Start:c.name.End]...)
		buf = append(buf, ':')
		el := d.elems[c.first+r]
		buf = append(buf, body[el.Start:el.End]...)
	}
	return append(buf, '}')
}

// event decodes an EventData payload: one object, one row.
func (d *Decoder) event(body []byte, dst *Result) error {
	sc := newScanner(body)
	d.elems = d.elems[:0]
	end, err := d.eventFields(&sc, sc.Space(0))
	if err != nil {
		return err
	}
	if i := sc.Space(end); i != len(body) {
		return errTrailing(i)
	}
	return d.writeEvents(body, dst)
}

// eventList decodes an EventData[] payload: an array of EventData objects.
func (d *Decoder) eventList(body []byte, dst *Result) error {
	sc := newScanner(body)
	i := sc.Space(0)
	it, err := sc.ArrayStart(i)
	if err != nil {
		return errShape(i, "EventData[] must be an array")
	}
	d.elems = d.elems[:0]
	for {
		vs, more, err := sc.ArrayNext(&it)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		if len(d.elems) == spansPerEvent*d.maxRows() {
			return fmt.Errorf("more than %d events: %w", d.maxRows(), ErrLimit)
		}
		if it.Pos, err = d.eventFields(&sc, vs); err != nil {
			return err
		}
	}
	if i := sc.Space(it.Pos); i != len(body) {
		return errTrailing(i)
	}
	return d.writeEvents(body, dst)
}

// spansPerEvent is the number of spans eventFields appends per event.
const spansPerEvent = 4

// eventFields appends to d.elems the Timestamp, Id, Value and Tags of the
// EventData object at i (Tags an empty span when absent). Timestamp, Id
// and Value are required, as in Quix Streams.
func (d *Decoder) eventFields(sc *jsonscan.Scanner, i int) (int, error) {
	body := sc.Bytes()
	it, err := sc.ObjectStart(i)
	if err != nil {
		return 0, errShape(i, "EventData must be an object")
	}
	var ts, id, val, tags jsonscan.Span
	for {
		key, esc, vs, more, err := sc.ObjectNext(&it)
		if err != nil {
			return 0, err
		}
		if !more {
			break
		}
		end, err := sc.Value(vs)
		if err != nil {
			return 0, err
		}
		it.Pos = end
		switch string(d.content(body, key, esc)) {
		case "Timestamp":
			ts = jsonscan.Span{Start: vs, End: end}
		case "Id":
			id = jsonscan.Span{Start: vs, End: end}
		case "Value":
			val = jsonscan.Span{Start: vs, End: end}
		case "Tags":
			tags = jsonscan.Span{Start: vs, End: end}
		}
	}
	switch {
	case ts.End == 0:
		return 0, errShape(i, "EventData without Timestamp")
	case id.End == 0:
		return 0, errShape(i, "EventData without Id")
	case val.End == 0:
		return 0, errShape(i, "EventData without Value")
	case !isNumberStart(body[ts.Start]):
		return 0, errShape(ts.Start, "EventData Timestamp is not a number")
	}
	d.elems = append(d.elems, ts, id, val, tags)
	return it.Pos, nil
}

// writeEvents writes the row {"Timestamp","Id","Value","Tags"} of each
// event eventFields collected, Tags defaulting to {}, the values copied as
// they are, into a buffer grown once to their size.
func (d *Decoder) writeEvents(body []byte, dst *Result) error {
	const fixed = len(`{"Timestamp":,"Id":,"Value":,"Tags":}`)
	n, events := 0, len(d.elems)/spansPerEvent
	for _, sp := range d.elems {
		n += sp.End - sp.Start
	}
	for e := range events {
		if d.elems[e*spansPerEvent+3].End == 0 {
			n += len(`{}`)
		}
	}
	n += events * (fixed + dst.gap)
	if n-events*dst.gap > d.maxDecoded() {
		return fmt.Errorf("rows over %d bytes: %w", d.maxDecoded(), ErrLimit)
	}
	dst.growRows(n)
	buf := dst.buf
	dst.ends = slices.Grow(dst.ends, events)
	for e := range events {
		f := d.elems[e*spansPerEvent : (e+1)*spansPerEvent]
		ts, id, val, tags := f[0], f[1], f[2], f[3]
		buf = appendGap(buf, dst.gap)
		buf = append(buf, `{"Timestamp":`...)
		buf = append(buf, body[ts.Start:ts.End]...)
		buf = append(buf, `,"Id":`...)
		buf = append(buf, body[id.Start:id.End]...)
		buf = append(buf, `,"Value":`...)
		buf = append(buf, body[val.Start:val.End]...)
		buf = append(buf, `,"Tags":`...)
		if tags.End == 0 {
			buf = append(buf, `{}`...)
		} else {
			buf = append(buf, body[tags.Start:tags.End]...)
		}
		buf = append(buf, '}')
		dst.ends = append(dst.ends, len(buf))
	}
	dst.buf = buf
	return nil
}
