// Package quix decodes the Quix message formats (TimeseriesData,
// ParameterData, EventData and EventData[], in the header or the legacy
// envelope variant) into rows, one JSON object per row, the way Quix
// Streams' QuixDeserializer turns them into row dicts.
//
// Row shapes (key order as Quix Streams builds them):
//
//	TimeseriesData, ParameterData: {<numeric params>, <string params>,
//	    <binary params>, "Tags": {<tags>}, "Timestamp": <ns>}
//	EventData, each item of EventData[]: {"Timestamp", "Id", "Value", "Tags"}
//
// Numbers, strings and other values are copied byte for byte from the
// payload, so integers keep their precision and 1 stays 1. Binary values are
// written as canonical standard base64 strings. A null stays null.
//
// What the decoder supports:
//   - Header variant: headers __Q_ModelKey and __Q_CodecId, body in the
//     value. With a codec id prefixed [GZIP] the value is gzip-compressed
//     JSON (Quix Streams decompresses the value the same way).
//   - Legacy envelope: the value is {"C":codec,"K":model,"V":payload,...}.
//     V is the payload itself when it is a JSON object or array; when V is
//     a JSON string it holds the base64 of the payload bytes, which is how
//     the Quix .NET SDK writes a payload that is not plain JSON; with a
//     [GZIP] codec those bytes are gzip-compressed JSON. (Quix Streams
//     itself cannot read gzip in the legacy envelope.) S and E are ignored.
//   - Codecs J and JT. PB, S, B[] and null are reported as unsupported.
//   - Split messages (a __Q_SplitMessageId header, or the .NET SDK's
//     10-byte split marker "<" id(4) "/" index "/" count ">" at the start of
//     the value) are reported as unsupported, as Quix Streams does.
//
// Deliberate differences from Quix Streams, all on inputs it would reject
// or mangle: column arrays longer than Timestamps are an error (Quix Streams
// ignores the extra values), timestamps must be JSON numbers, a null
// section (for example "BinaryValues": null) counts as empty, and a value
// that only looks like a legacy envelope (its C is not a Quix codec id, or
// K or V is missing) is not treated as Quix at all, so that an ordinary
// JSON document starting with {"C": still passes through.
package quix

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unsafe"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/jsonscan"
)

// Kind says what Decode found.
type Kind uint8

const (
	// KindNotQuix: the record is not in a Quix format; the caller treats
	// the value as an ordinary value.
	KindNotQuix Kind = iota
	// KindRows: the Result holds the decoded rows (possibly none): see
	// Result.Len and Result.Row.
	KindRows
	// KindIgnored: a Quix protocol message (StreamProperties, StreamEnd,
	// ParameterDefinitions, EventDefinitions) that carries no data.
	KindIgnored
	// KindUnsupported: a Quix record this decoder cannot read (split
	// message, non-JSON codec, unknown model key); Result.Reason says why.
	KindUnsupported
	// KindMalformed: a Quix record whose payload is broken; Decode also
	// returns an error.
	KindMalformed
)

// String returns a short lowercase name of the kind.
func (k Kind) String() string {
	switch k {
	case KindNotQuix:
		return "not_quix"
	case KindRows:
		return "rows"
	case KindIgnored:
		return "ignored"
	case KindUnsupported:
		return "unsupported"
	case KindMalformed:
		return "malformed"
	}
	return "unknown"
}

// Header names and model keys used by Quix.
const (
	HeaderModelKey       = "__Q_ModelKey"
	HeaderCodecID        = "__Q_CodecId"
	HeaderSplitMessageID = "__Q_SplitMessageId"

	ModelTimeseriesData       = "TimeseriesData"
	ModelParameterData        = "ParameterData"
	ModelEventData            = "EventData"
	ModelEventDataList        = "EventData[]"
	ModelStreamProperties     = "StreamProperties"
	ModelStreamEnd            = "StreamEnd"
	ModelParameterDefinitions = "ParameterDefinitions"
	ModelEventDefinitions     = "EventDefinitions"

	gzipPrefix = "[GZIP]"
)

// Reasons reported in Result.Reason for KindUnsupported.
const (
	ReasonSplitMessage    = "split message"
	ReasonMissingCodec    = "missing codec id"
	ReasonMissingModelKey = "missing model key"
	ReasonCodec           = "unsupported codec"
	ReasonModelKey        = "unknown model key"
)

// Defaults of the Decoder's limits.
const (
	// DefaultMaxDecoded is the default limit on a record's decoded bytes:
	// its gzip payload once decompressed, and its rows once written.
	DefaultMaxDecoded = 16 << 20
	// DefaultMaxRows is the default limit on the rows of one record.
	// Each row becomes a message that every subscribed client queues, so
	// this bounds what one record can cost: about 50 MB of messages at
	// 200 bytes a row.
	DefaultMaxRows = 250_000
)

// ErrLimit is wrapped by the errors of records that exceed a Decoder's
// MaxDecoded or MaxRows.
var ErrLimit = errors.New("record over the decoder's limit")

// Result is the outcome of one Decode. It can be reused across calls, which
// is what makes decoding allocation-free in the steady state (unless the
// caller Detaches the rows, as the encoder does to frame them in place).
type Result struct {
	Kind Kind
	// ModelKey and Codec are the Quix model key and codec id (with any
	// [GZIP] prefix) when the record is in a Quix format.
	ModelKey, Codec string
	// Reason says why a record is KindUnsupported.
	Reason string
	// Gap is how many bytes Decode leaves free before each row in the
	// rows' buffer, for a caller that prefixes rows where they are (with
	// a frame header: see Prefixed) instead of copying them. Set it
	// before Decode; 0 leaves none.
	Gap int

	buf  []byte // the rows, each after gap bytes
	ends []int  // where each row ends in buf
	gap  int    // Gap as of the last Decode
}

// Len returns the number of rows (for KindRows; 0 otherwise).
func (r *Result) Len() int { return len(r.ends) }

// Row returns row i, one complete JSON object. It points into memory
// owned by the Result: valid until the next Decode into the same Result
// (unless Detach is called), so copy it to keep it.
func (r *Result) Row(i int) []byte {
	p := r.Prefixed(i)
	return p[r.gap:]
}

// Prefixed returns row i with the Gap bytes before it, which the caller
// may overwrite, as one slice (its capacity ends with the row).
func (r *Result) Prefixed(i int) []byte {
	start := 0
	if i > 0 {
		start = r.ends[i-1]
	}
	return r.buf[start:r.ends[i]:r.ends[i]]
}

// Detach gives the rows' memory to the caller: what Row and Prefixed
// returned stays valid for good, and the next Decode into r writes its
// rows into memory of its own. The rows are written into memory allocated
// once for the record (a binary value's base64 is counted as long as the
// payload spells it), or into the buffer kept from an earlier record when
// that is at most about twice as large, so that a caller can keep them as
// they are without pinning much more.
func (r *Result) Detach() { r.buf = nil }

// keepCap is the largest scratch buffer, in bytes, kept from one Decode to
// the next, so that one huge record does not pin its memory for good.
const keepCap = 1 << 20

func shrink[T any](s []T) []T {
	var e T
	if uintptr(cap(s))*unsafe.Sizeof(e) > keepCap {
		return nil
	}
	return s[:0]
}

func (r *Result) reset() {
	r.buf = shrink(r.buf)
	r.Kind = KindNotQuix
	r.ModelKey, r.Codec, r.Reason = "", "", ""
	r.ends = shrink(r.ends)
	r.gap = r.Gap
}

// Release drops the scratch buffers of d and r that the last Decode grew
// past what is kept from one record to the next (1 MiB each), which the
// next Decode would drop anyway: call it once done with r's rows, so that
// a huge record's buffers do not outlive it until the next record.
func (d *Decoder) Release(r *Result) {
	r.buf, r.ends = shrink(r.buf), shrink(r.ends)
	d.zbuf, d.vbuf, d.bin, d.elems, d.ts = shrink(d.zbuf), shrink(d.vbuf), shrink(d.bin), shrink(d.elems), shrink(d.ts)
}

// column is one parameter or tag column of a timeseries payload.
type column struct {
	name   jsonscan.Span // key, quotes included
	esc    bool          // name holds escapes
	binary bool
	tags   bool // the parameter is named "Tags": its value is replaced by the tags object
	first  int  // index of its first element in Decoder.elems
	n      int  // number of elements
}

// Decoder decodes Quix records. It keeps scratch buffers between calls, so
// reuse one per goroutine (or pool them). The zero value is ready to use.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	// MaxDecoded limits a record's decoded bytes: a gzip payload is
	// decompressed as a stream and abandoned once it passes the limit,
	// and the rows written may not pass it either. Zero means
	// DefaultMaxDecoded. A larger record fails with an error wrapping
	// ErrLimit.
	MaxDecoded int
	// MaxRows limits the rows of one record (timestamps of a
	// TimeseriesData, events of an EventData[]); zero means
	// DefaultMaxRows. A record with more fails with an error wrapping
	// ErrLimit, before its rows are built.
	MaxRows int

	br     bytes.Reader
	gz     *gzip.Reader
	zbuf   []byte // decompressed payload
	vbuf   []byte // base64-decoded legacy payload
	bin    []byte // one decoded binary value
	tmp    []byte // unescaped string
	tmp2   []byte
	elems  []jsonscan.Span
	ts     []jsonscan.Span
	sect   [3][]column // NumericValues, StringValues, BinaryValues
	tagCol []column
	cols   []column // merged parameter columns, in row key order
	tagOut []column // merged tag columns
	tab    []int32  // hash table of merge
}

// Decode inspects a record's headers and value and, when the record is in a
// Quix format, decodes it into dst. It returns an error, with dst.Kind set to
// KindMalformed, when a Quix payload is broken (bad gzip, bad JSON, ragged
// columns, bad base64, a parameter named Timestamp...). Error texts carry
// offsets, never payload bytes.
func (d *Decoder) Decode(headers []wsdest.Header, value []byte, dst *Result) error {
	dst.reset()
	d.zbuf, d.vbuf, d.bin, d.elems, d.ts = shrink(d.zbuf), shrink(d.vbuf), shrink(d.bin), shrink(d.elems), shrink(d.ts)
	if isSplitMarker(value) {
		dst.Kind, dst.Reason = KindUnsupported, ReasonSplitMessage
		return nil
	}
	if bytes.HasPrefix(value, []byte(`{"C":`)) && bytes.Contains(value, []byte(`"K":`)) {
		if ok, err := d.legacy(value, dst); ok || err != nil {
			return d.fail(dst, err)
		}
	}
	var model, codec []byte
	var haveModel, haveCodec, split bool
	for i := range headers {
		h := &headers[i]
		switch h.Key {
		case HeaderModelKey:
			model, haveModel = h.Value, true
		case HeaderCodecID:
			codec, haveCodec = h.Value, true
		case HeaderSplitMessageID:
			split = true
		}
	}
	if split {
		dst.Kind, dst.Reason = KindUnsupported, ReasonSplitMessage
		return nil
	}
	if !haveModel && !haveCodec {
		return nil
	}
	dst.ModelKey, dst.Codec = internModel(model), internCodec(codec)
	return d.fail(dst, d.decodeBody(value, dst, false))
}

func (d *Decoder) fail(dst *Result, err error) error {
	if err != nil {
		dst.Kind = KindMalformed
		dst.ends = dst.ends[:0]
		return fmt.Errorf("quix: %s: %w", orUnknown(dst.ModelKey), err)
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "record"
	}
	return s
}

// isSplitMarker reports whether v starts with the split marker of the Quix
// .NET SDK: '<', a 4-byte id, '/', a 1-byte index, '/', a 1-byte count, '>'.
func isSplitMarker(v []byte) bool {
	return len(v) >= 10 && v[0] == '<' && v[5] == '/' && v[7] == '/' && v[9] == '>'
}

// decodeBody applies the checks Quix Streams applies, in its order, and
// decodes the payload. For the header variant body is the record value;
// for the legacy envelope (legacyV) it is the raw JSON of V.
func (d *Decoder) decodeBody(body []byte, dst *Result, legacyV bool) error {
	if dst.Codec == "" {
		dst.Kind, dst.Reason = KindUnsupported, ReasonMissingCodec
		return nil
	}
	if dst.ModelKey == "" {
		dst.Kind, dst.Reason = KindUnsupported, ReasonMissingModelKey
		return nil
	}
	if isProtocol(dst.ModelKey) {
		dst.Kind = KindIgnored
		return nil
	}
	codec, gz := dst.Codec, false
	if len(codec) >= len(gzipPrefix) && codec[:len(gzipPrefix)] == gzipPrefix {
		codec, gz = codec[len(gzipPrefix):], true
	}
	if codec != "J" && codec != "JT" {
		dst.Kind, dst.Reason = KindUnsupported, ReasonCodec
		return nil
	}
	if !isData(dst.ModelKey) {
		dst.Kind, dst.Reason = KindUnsupported, ReasonModelKey
		return nil
	}
	if legacyV && len(body) > 0 && body[0] == '"' {
		var err error
		if body, err = d.legacyBytes(body); err != nil {
			return err
		}
	} else if legacyV && gz {
		return errors.New("gzip codec but legacy value V is not a base64 string")
	}
	if gz {
		var err error
		if body, err = d.gunzip(body); err != nil {
			return err
		}
	}
	dst.Kind = KindRows
	var err error
	switch dst.ModelKey {
	case ModelTimeseriesData, ModelParameterData:
		err = d.timeseries(body, dst)
	case ModelEventData:
		err = d.event(body, dst)
	default:
		err = d.eventList(body, dst)
	}
	return err
}

// legacyBytes decodes V given as a JSON string holding base64.
func (d *Decoder) legacyBytes(raw []byte) ([]byte, error) {
	d.tmp = jsonscan.Unescape(d.tmp[:0], raw)
	var err error
	d.vbuf, err = base64.StdEncoding.AppendDecode(d.vbuf[:0], d.tmp)
	if err != nil {
		return nil, errors.New("legacy value V is a string but not valid base64")
	}
	return d.vbuf, nil
}

func (d *Decoder) maxDecoded() int {
	if d.MaxDecoded > 0 {
		return d.MaxDecoded
	}
	return DefaultMaxDecoded
}

func (d *Decoder) maxRows() int {
	if d.MaxRows > 0 {
		return d.MaxRows
	}
	return DefaultMaxRows
}

func (d *Decoder) gunzip(b []byte) ([]byte, error) {
	limit := d.maxDecoded()
	d.br.Reset(b)
	defer d.br.Reset(nil) // do not keep the record alive
	var err error
	if d.gz == nil {
		d.gz, err = gzip.NewReader(&d.br)
	} else {
		err = d.gz.Reset(&d.br)
	}
	if err != nil {
		return nil, fmt.Errorf("gunzip: %w", err)
	}
	out := d.zbuf[:0]
	if cap(out) == 0 {
		out = make([]byte, 0, min(gunzipHint(b), limit+1))
	}
	for {
		if len(out) == cap(out) {
			// Grow by doubling, but never past the limit: a bomb costs at
			// most limit+1 bytes, then the buffer is dropped.
			out = slices.Grow(out, min(cap(out), limit+1-len(out)))
		}
		n, err := d.gz.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if len(out) > limit {
			d.zbuf = nil
			return nil, fmt.Errorf("gunzip: payload exceeds %d bytes: %w", limit, ErrLimit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			d.zbuf = shrink(out)
			return nil, fmt.Errorf("gunzip: %w", err)
		}
	}
	d.zbuf = out
	return out, nil
}

// maxDeflateRatio is the most that deflate can expand its input (a stream
// of the longest back-references).
const maxDeflateRatio = 1032

// gunzipHint guesses the decompressed size of the gzip stream b: the size
// its trailer states (the last member's, modulo 4 GiB) when deflate could
// expand b that much, else 4 times b. It is only where the buffer starts:
// it grows when the guess is short.
func gunzipHint(b []byte) int {
	// The smallest gzip stream: a 10-byte header, an empty deflate
	// block, an 8-byte trailer ending with the size.
	if len(b) >= 20 {
		if n := int(binary.LittleEndian.Uint32(b[len(b)-4:])); n <= maxDeflateRatio*len(b) {
			return n + 1 // room for the read that finds the end
		}
	}
	return 4*len(b) + 512
}

// legacy decodes a value that looks like a legacy envelope. ok is false
// when the value is not really one (see the package comment).
func (d *Decoder) legacy(value []byte, dst *Result) (ok bool, err error) {
	sc := newScanner(value)
	it, err := sc.ObjectStart(0)
	if err != nil {
		return false, nil
	}
	var c, k, v jsonscan.Span
	var cEsc, kEsc bool
	for {
		key, esc, vs, more, err := sc.ObjectNext(&it)
		if err != nil {
			return false, nil
		}
		if !more {
			break
		}
		end, err := sc.Value(vs)
		if err != nil {
			return false, nil
		}
		it.Pos = end
		val := jsonscan.Span{Start: vs, End: end}
		switch {
		case d.keyIs(value, key, esc, "C"):
			c, cEsc = val, value[vs] == '"' && hasEscape(value[vs:end])
		case d.keyIs(value, key, esc, "K"):
			k, kEsc = val, value[vs] == '"' && hasEscape(value[vs:end])
		case d.keyIs(value, key, esc, "V"):
			v = val
		}
	}
	if sc.Space(it.Pos) != len(value) || v.End == 0 || c.End == 0 || k.End == 0 ||
		value[c.Start] != '"' || value[k.Start] != '"' {
		return false, nil
	}
	cb := d.strContent(value, c, cEsc, &d.tmp)
	codec := cb
	if bytes.HasPrefix(codec, []byte(gzipPrefix)) {
		codec = codec[len(gzipPrefix):]
	}
	if !isCodecID(codec) {
		return false, nil
	}
	dst.Codec = internCodec(cb)
	dst.ModelKey = internModel(d.strContent(value, k, kEsc, &d.tmp2))
	return true, d.decodeBody(value[v.Start:v.End], dst, true)
}

func hasEscape(b []byte) bool { return bytes.IndexByte(b, '\\') >= 0 }

// strContent returns the content of the JSON string at sp, unescaped into
// *scratch when needed.
func (d *Decoder) strContent(s []byte, sp jsonscan.Span, esc bool, scratch *[]byte) []byte {
	if !esc {
		return s[sp.Start+1 : sp.End-1]
	}
	*scratch = jsonscan.Unescape((*scratch)[:0], s[sp.Start:sp.End])
	return *scratch
}

// keyIs reports whether the JSON string at key decodes to want.
func (d *Decoder) keyIs(s []byte, key jsonscan.Span, esc bool, want string) bool {
	if !esc {
		return string(s[key.Start+1:key.End-1]) == want
	}
	d.tmp = jsonscan.Unescape(d.tmp[:0], s[key.Start:key.End])
	return string(d.tmp) == want
}

func isCodecID(b []byte) bool {
	switch string(b) {
	case "J", "JT", "PB", "S", "B[]", "null":
		return true
	}
	return false
}

func isProtocol(m string) bool {
	switch m {
	case ModelStreamProperties, ModelStreamEnd, ModelParameterDefinitions, ModelEventDefinitions:
		return true
	}
	return false
}

func isData(m string) bool {
	switch m {
	case ModelTimeseriesData, ModelParameterData, ModelEventData, ModelEventDataList:
		return true
	}
	return false
}

// internModel returns the model key as a string without allocating for the
// known keys.
func internModel(b []byte) string {
	switch string(b) {
	case ModelTimeseriesData:
		return ModelTimeseriesData
	case ModelParameterData:
		return ModelParameterData
	case ModelEventData:
		return ModelEventData
	case ModelEventDataList:
		return ModelEventDataList
	case ModelStreamProperties:
		return ModelStreamProperties
	case ModelStreamEnd:
		return ModelStreamEnd
	case ModelParameterDefinitions:
		return ModelParameterDefinitions
	case ModelEventDefinitions:
		return ModelEventDefinitions
	}
	return clip(b)
}

func internCodec(b []byte) string {
	switch string(b) {
	case "J":
		return "J"
	case "JT":
		return "JT"
	case "[GZIP]J":
		return "[GZIP]J"
	case "[GZIP]JT":
		return "[GZIP]JT"
	case "PB":
		return "PB"
	}
	return clip(b)
}

// clip bounds an unknown header value kept for diagnostics.
func clip(b []byte) string {
	const max = 64
	if len(b) > max {
		b = b[:max]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}
