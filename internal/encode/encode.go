// Package encode turns Kafka records into hub messages: it decides what a
// record becomes (nothing, one message, or one message per Quix row) and
// builds, once per message, the frame of each shape somebody is subscribed
// to: WebSocket text frames, and Server-Sent Events (the same JSON as data,
// the message's cursor as id) for the SSE shapes. EncodeAt stamps each
// message with its cursor (the stream position after it; a Quix row's is
// computed from the record's position when asked for, message.Origin);
// EncodeKept builds messages for the history, which keep what every shape
// can be built from (the plain frame and the envelope's head); Reframe
// builds a message's frame again for another cursor, or for a shape it was
// built without; the notices (gap, reset) are built here too (cursor.go).
//
// The plain frames of a record's Quix rows are built where the decoder
// wrote the rows (quix.Result.Gap leaves room for each frame header), so
// that a record of many rows is not copied once more.
//
// Plain shape: the record's value (or one decoded Quix row) exactly as
// received, when it is JSON; no re-encoding. A value that is null (a
// tombstone), empty, not UTF-8 or not JSON has no plain frame.
//
// Envelope shape:
//
//	{"topic":"t","partition":0,"offset":42,"timestamp":1700000000000,
//	 "key":"k","headers":{"h":"v"},"value":<value>,"cursor":"AQ..."}
//
// cursor, present when the message was encoded with a position (EncodeAt),
// is always the last member.
//
// timestamp is the record's Kafka timestamp in milliseconds since the epoch.
// key and header values are JSON strings when they are UTF-8, null when
// absent, and {"base64":"..."} otherwise. When a header name repeats, the
// last value wins and the name sits where its last occurrence was; header
// names and the topic are written as JSON strings, invalid UTF-8 in them
// replaced by U+FFFD. value is the JSON value verbatim (or the decoded Quix
// row), a JSON string for UTF-8 text that is not JSON, {"base64":"..."} for
// other bytes, and null for a tombstone: nothing is dropped from the
// envelope shape except Quix protocol messages and Quix records that cannot
// be decoded.
package encode

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/jsonscan"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/quix"
	"github.com/wsdest/wsdest/internal/ratelog"
)

// Format selects how record values are interpreted.
type Format uint8

const (
	// FormatAuto (the default) passes plain JSON values through unchanged
	// and decodes Quix-formatted records into rows.
	FormatAuto Format = iota
	// FormatRaw passes every value through unchanged, Quix-formatted or
	// not; no Quix decoding.
	FormatRaw
)

// String returns "auto" or "raw".
func (f Format) String() string {
	switch f {
	case FormatAuto:
		return "auto"
	case FormatRaw:
		return "raw"
	}
	return "unknown"
}

// ParseFormat parses "auto" or "raw" (case-insensitive, surrounding spaces
// ignored); an empty string means FormatAuto.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "auto":
		return FormatAuto, nil
	case "raw":
		return FormatRaw, nil
	}
	return 0, fmt.Errorf("encode: unknown format %q (want auto or raw)", s)
}

// SkipReason says why a record, or its plain frame, was not delivered.
type SkipReason string

const (
	// SkipTombstone: a null value; no plain frame (the envelope carries null).
	SkipTombstone SkipReason = "tombstone"
	// SkipEmpty: an empty value; no plain frame.
	SkipEmpty SkipReason = "empty"
	// SkipNotUTF8: the value is not UTF-8; no plain frame.
	SkipNotUTF8 SkipReason = "not_utf8"
	// SkipNotJSON: the value is UTF-8 text but not JSON; no plain frame.
	SkipNotJSON SkipReason = "not_json"
	// SkipQuixProtocol: a Quix protocol message (StreamEnd...), dropped
	// silently in every shape.
	SkipQuixProtocol SkipReason = "quix_protocol"
	// SkipQuixUnsupported: a Quix record the decoder cannot read (split
	// message, non-JSON codec, unknown model key), dropped in every shape.
	SkipQuixUnsupported SkipReason = "quix_unsupported"
	// SkipQuixMalformed: a Quix record with a broken payload, dropped in
	// every shape.
	SkipQuixMalformed SkipReason = "quix_malformed"
	// SkipTooLarge: a Quix record with more rows than MaxRecordRows or
	// more decoded bytes than MaxDecodedBytes, dropped in every shape.
	SkipTooLarge SkipReason = "too_large"
)

var skipReasons = [...]SkipReason{
	SkipTombstone, SkipEmpty, SkipNotUTF8, SkipNotJSON,
	SkipQuixProtocol, SkipQuixUnsupported, SkipQuixMalformed, SkipTooLarge,
}

func (r SkipReason) index() int {
	for i, s := range skipReasons {
		if s == r {
			return i
		}
	}
	panic("encode: unknown skip reason " + string(r))
}

// Stats is a snapshot of an Encoder's counters.
type Stats struct {
	// Records is the number of records passed to Encode.
	Records uint64 `json:"records"`
	// Messages is the number of messages Encode returned.
	Messages uint64 `json:"messages"`
	// Skipped counts, by reason, records dropped or delivered without a
	// plain frame. Every reason is present, zero or not.
	Skipped map[SkipReason]uint64 `json:"skipped"`
}

// WarnInterval is the least time between two warning lines for the same
// skip reason; the line says how many records were skipped since the last.
const WarnInterval = 10 * time.Second

// Options configure an Encoder.
type Options struct {
	// Format is how values are interpreted; the zero value is FormatAuto.
	Format Format
	// Logger receives the rate-limited warnings about skipped records; nil
	// discards them.
	Logger *slog.Logger
	// MaxRecordRows limits the rows one Quix record may decode into; a
	// record with more is skipped (SkipTooLarge). Zero means
	// quix.DefaultMaxRows (250,000).
	MaxRecordRows int
	// MaxDecodedBytes limits a Quix record's decompressed payload and its
	// decoded rows; a record over it is skipped (SkipTooLarge), and a gzip
	// payload is abandoned as soon as it passes it. Zero means
	// quix.DefaultMaxDecoded (16 MiB).
	MaxDecodedBytes int
}

// Encoder turns records into hub messages. It is safe for concurrent use.
type Encoder struct {
	format  Format
	log     *slog.Logger
	maxRows int // Options.MaxRecordRows
	maxDec  int // Options.MaxDecodedBytes

	records  atomic.Uint64
	messages atomic.Uint64
	skipped  [len(skipReasons)]atomic.Uint64
	warn     *ratelog.Limiter // a line per skip reason every WarnInterval

	// scratch holds *scratch: a Quix decoder and the buffers Encode reuses.
	scratch sync.Pool
}

type scratch struct {
	dec  quix.Decoder
	res  quix.Result
	env  []byte
	cur  []byte // the cursor text (cursor.go)
	tmp  []byte // an envelope being built for SSE (cursor.go)
	ends []int  // where each row's cursor text ends (advanceRows)
}

// maxPooledEnv bounds the envelope buffer kept in the pool, so that one
// huge record does not pin its memory forever.
const maxPooledEnv = 1 << 20

// New returns an Encoder.
func New(opts Options) *Encoder {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Encoder{format: opts.Format, log: log, maxRows: opts.MaxRecordRows, maxDec: opts.MaxDecodedBytes,
		warn: ratelog.New(WarnInterval, 1)}
}

// Stats returns a snapshot of the counters.
func (e *Encoder) Stats() Stats {
	s := Stats{
		Records:  e.records.Load(),
		Messages: e.messages.Load(),
		Skipped:  make(map[SkipReason]uint64, len(skipReasons)),
	}
	for i, r := range skipReasons {
		s.Skipped[r] = e.skipped[i].Load()
	}
	return s
}

// Encode appends to dst the messages for rec and returns the extended
// slice: none for Quix protocol messages and Quix records that cannot be
// decoded, one per row for decoded Quix rows (in row order, all with the
// record's key, partition and offset), and one otherwise. want[s] says which
// shapes anybody is subscribed to: only those frames are built, the others
// are left nil. A message is returned even when none of its frames could be
// built, so that the caller sees every record's position.
func (e *Encoder) Encode(dst []*message.Message, rec *wsdest.Record, want [message.NumShapes]bool) []*message.Message {
	return e.EncodeAt(dst, rec, want, nil)
}

// EncodeAt is Encode for a stream whose position is pos: pos is advanced
// past every message (and past rec when it yields none), and each message
// carries the cursor of the position just after it (Message.Cursor, the
// envelope's "cursor" member and the SSE event id). pos nil means no
// cursor, as Encode.
func (e *Encoder) EncodeAt(dst []*message.Message, rec *wsdest.Record, want [message.NumShapes]bool, pos *wsdest.Cursor) []*message.Message {
	return e.encode(dst, rec, want, pos, false)
}

// EncodeKept is EncodeAt for messages that are kept to be delivered later
// (the history), in any shape, whoever is subscribed now: a message whose
// value is JSON always gets its plain frame, and unless want asks for an
// envelope frame it keeps the head of its envelope instead (message.Origin.Head,
// one string shared by the rows of a record), from which Reframe builds the
// envelope frames, byte for byte as EncodeAt would, when a client asks for
// one; a message whose value is not JSON (it has no plain frame) gets its
// envelope frame.
func (e *Encoder) EncodeKept(dst []*message.Message, rec *wsdest.Record, want [message.NumShapes]bool, pos *wsdest.Cursor) []*message.Message {
	want[message.ShapePlain] = true
	return e.encode(dst, rec, want, pos, true)
}

func (e *Encoder) encode(dst []*message.Message, rec *wsdest.Record, want [message.NumShapes]bool, pos *wsdest.Cursor, keep bool) []*message.Message {
	e.records.Add(1)
	var s *scratch
	if e.format == FormatAuto || wantsEnvelope(want) || pos != nil || keep {
		s = e.getScratch()
		defer e.putScratch(s)
	}
	n := len(dst)
	defer func() {
		if pos != nil && len(dst) == n {
			pos.Advance(rec.Partition, rec.Offset, 0, 1)
		}
	}()
	if e.format == FormatAuto {
		err := s.dec.Decode(rec.Headers, rec.Value, &s.res)
		switch s.res.Kind {
		case quix.KindRows:
			dst = e.rows(dst, rec, want, s, pos, keep)
			return dst
		case quix.KindIgnored:
			e.skip(SkipQuixProtocol, rec, nil)
			return dst
		case quix.KindUnsupported:
			e.skip(SkipQuixUnsupported, rec, &s.res, slog.String("detail", s.res.Reason))
			return dst
		case quix.KindMalformed:
			r := SkipQuixMalformed
			if errors.Is(err, quix.ErrLimit) {
				r = SkipTooLarge
			}
			e.skip(r, rec, &s.res, slog.String("error", err.Error()))
			return dst
		}
	}

	reason, isJSON := classify(rec.Value)
	if !isJSON {
		e.skip(reason, rec, nil)
	}
	var plain, value []byte
	if isJSON {
		plain, value = rec.Value, rec.Value
	} else if keep {
		// No plain frame to build the envelope from later.
		want[message.ShapeEnvelope] = true
	}
	head := keep && isJSON && !wantsEnvelope(want)
	m, o := newMessage(pos != nil || head)
	m.Key, m.Partition, m.Offset, m.Timestamp, m.Rows = rec.Key, rec.Partition, rec.Offset, message.UnixMilli(rec.Timestamp), 1
	if wantsEnvelope(want) || head {
		s.env = appendEnvelopeHead(s.env[:0], rec)
		if !isJSON {
			s.env = appendBytes(s.env, rec.Value)
		}
	}
	if o != nil {
		var cursor []byte
		if pos != nil {
			pos.Advance(m.Partition, m.Offset, m.Row, m.Rows)
			s.cur = pos.AppendText(s.cur[:0])
			cursor = s.cur
		}
		setOrigin(o, cursor, head, s)
	}
	frames(m, m.Cursor(), plain, value, want, s)
	e.messages.Add(1)
	return append(dst, m)
}

func (e *Encoder) rows(dst []*message.Message, rec *wsdest.Record, want [message.NumShapes]bool, s *scratch, pos *wsdest.Cursor, keep bool) []*message.Message {
	nrows := s.res.Len()
	if nrows == 0 {
		return dst
	}
	if wantsEnvelope(want) || keep {
		s.env = appendEnvelopeHead(s.env[:0], rec)
	}
	// The rows share one Origin: the position before the record, from
	// which each row's cursor is computed, and the envelope's head when
	// kept.
	var o *message.Origin
	if pos != nil || keep && !wantsEnvelope(want) {
		o = new(message.Origin)
		if pos != nil {
			before := pos.Clone()
			o.Before = &before
		}
		if keep && !wantsEnvelope(want) {
			o.Head = string(s.env)
		}
	}
	// One allocation for all the row messages of the record and one per
	// shape for all their frames: a record of many rows is then a few
	// large objects, not many small ones.
	msgs := make([]message.Message, nrows)
	ts := message.UnixMilli(rec.Timestamp)
	for i := range msgs {
		m := &msgs[i]
		m.Key, m.Partition, m.Offset, m.Timestamp, m.Origin = rec.Key, rec.Partition, rec.Offset, ts, o
		m.Row, m.Rows = int32(i), int32(nrows)
	}
	var texts string
	if pos != nil {
		texts = advanceRows(msgs, pos, want, s)
	}
	rowFrames(msgs, &s.res, texts, want, s)
	dst = slices.Grow(dst, len(msgs))
	for i := range msgs {
		dst = append(dst, &msgs[i])
	}
	e.messages.Add(uint64(nrows))
	return dst
}

func (e *Encoder) getScratch() *scratch {
	if s, ok := e.scratch.Get().(*scratch); ok {
		return s
	}
	s := new(scratch)
	s.dec.MaxRows, s.dec.MaxDecoded = e.maxRows, e.maxDec
	s.res.Gap = rowGap
	return s
}

func (e *Encoder) putScratch(s *scratch) {
	if s.res.Kind != quix.KindNotQuix {
		s.dec.Release(&s.res) // only a Quix record grows the decoder's buffers
	}
	if cap(s.env) > maxPooledEnv {
		s.env = nil
	}
	if cap(s.tmp) > maxPooledEnv {
		s.tmp = nil
	}
	if cap(s.ends) > maxPooledEnv/8 {
		s.ends = nil
	}
	e.scratch.Put(s)
}

// classify reports whether v can be sent as is in the plain shape, and if
// not, why. jsonscan.Valid checks JSON and UTF-8 in one pass (json.Valid
// would let invalid UTF-8 through inside strings).
func classify(v []byte) (SkipReason, bool) {
	switch {
	case v == nil:
		return SkipTombstone, false
	case len(v) == 0:
		return SkipEmpty, false
	case jsonscan.Valid(v):
		return "", true
	case !utf8.Valid(v):
		return SkipNotUTF8, false
	}
	return SkipNotJSON, false
}

// skip counts a skipped record and logs it, at most one line per reason per
// WarnInterval. The line never carries value bytes.
func (e *Encoder) skip(r SkipReason, rec *wsdest.Record, res *quix.Result, extra ...slog.Attr) {
	i := r.index()
	e.skipped[i].Add(1)
	if r == SkipQuixProtocol {
		return
	}
	left, ok := e.warn.Allow(string(r))
	if !ok {
		return
	}
	n := uint64(left) + 1 // this record too

	msg := "record value is not JSON; plain-shape clients do not receive it"
	switch r {
	case SkipQuixUnsupported:
		msg = "unsupported Quix record dropped"
	case SkipQuixMalformed:
		msg = "malformed Quix record dropped"
	case SkipTooLarge:
		msg = "Quix record over MAX_RECORD_ROWS or MAX_DECODED_BYTES dropped"
	}
	attrs := make([]slog.Attr, 0, 8+len(extra))
	attrs = append(attrs,
		slog.String("reason", string(r)),
		slog.Uint64("skipped", n),
		slog.String("topic", rec.Topic),
		slog.Int("partition", int(rec.Partition)),
		slog.Int64("offset", rec.Offset),
	)
	if res != nil && res.ModelKey != "" {
		attrs = append(attrs, slog.String("model_key", res.ModelKey))
	}
	if res != nil && res.Codec != "" {
		attrs = append(attrs, slog.String("codec", res.Codec))
	}
	attrs = append(attrs, extra...)
	e.log.LogAttrs(context.Background(), slog.LevelWarn, msg, attrs...)
}

// appendEnvelopeHead appends the envelope up to and including `"value":`.
func appendEnvelopeHead(b []byte, rec *wsdest.Record) []byte {
	b = append(b, `{"topic":`...)
	b = appendText(b, rec.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(rec.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, rec.Offset, 10)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, rec.Timestamp.UnixMilli(), 10)
	b = append(b, `,"key":`...)
	b = appendBytes(b, rec.Key)
	b = append(b, `,"headers":{`...)
	first := true
	for i := range rec.Headers {
		h := &rec.Headers[i]
		if repeatedLater(rec.Headers[i+1:], h.Key) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendText(b, h.Key)
		b = append(b, ':')
		b = appendBytes(b, h.Value)
	}
	return append(b, `},"value":`...)
}

func repeatedLater(hs []wsdest.Header, key string) bool {
	for i := range hs {
		if hs[i].Key == key {
			return true
		}
	}
	return false
}

// appendText appends s as a JSON string, replacing invalid UTF-8 with
// U+FFFD.
func appendText(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return appendJSONString(b, s)
}

// appendBytes appends v as null (nil), a JSON string (UTF-8) or
// {"base64":"..."}.
func appendBytes(b, v []byte) []byte {
	switch {
	case v == nil:
		return append(b, "null"...)
	case utf8.Valid(v):
		return appendJSONString(b, v)
	}
	b = append(b, `{"base64":"`...)
	b = base64.StdEncoding.AppendEncode(b, v)
	return append(b, `"}`...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s, which must be valid UTF-8, as a JSON string.
// Only what JSON requires is escaped: quote, backslash and control
// characters.
func appendJSONString[S ~string | ~[]byte](b []byte, s S) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
