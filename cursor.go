package wsdest

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"slices"
	"time"
)

// TopicIdentity identifies one incarnation of a topic: a hash of its name
// and (a prefix of) the topic id Kafka gave it when it was created. Two
// clusters, or two replicas, serving the same topic agree on it; a topic
// deleted and created again under the same name keeps the name hash and
// gets a new id.
type TopicIdentity struct {
	// NameHash is the 32-bit FNV-1a hash of the topic's name.
	NameHash uint32
	// ID is the first 8 bytes of the Kafka topic id; zero when the broker
	// does not report topic ids (or the id is not known yet).
	ID [8]byte
}

// NewTopicIdentity returns the identity of the topic named name with the
// Kafka topic id id (zero if unknown).
func NewTopicIdentity(name string, id [16]byte) TopicIdentity {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	var t TopicIdentity
	t.NameHash = h.Sum32()
	copy(t.ID[:], id[:8])
	return t
}

// Cursor is a position in a topic, valid on every replica that serves the
// same topic: for each partition, the next offset to read. It is the value
// behind the opaque "cursor" string of an envelope message and the id of a
// Server-Sent Event, and means "everything up to and including this
// record".
//
// A partition the cursor has no offset for (one the writer of the cursor
// had seen no record of) is read from the first record stamped at or after
// Since. The rows of one Kafka record that decodes into several messages
// (Quix rows) share an offset: Partial says how many rows of the record at
// the next offset of one partition were already delivered.
//
// A Cursor is a value; its methods with a pointer receiver modify it and
// are not safe for concurrent use.
type Cursor struct {
	Topic TopicIdentity
	// Since is where partitions without an offset start (millisecond
	// precision); zero means their first record.
	Since time.Time
	// Offsets holds, by partition, the next offset to read; Unknown where
	// the cursor has none.
	Offsets []int64
	// PartialPartition and PartialRows: the record at
	// Offsets[PartialPartition] has had its first PartialRows messages
	// delivered. PartialRows is 0 when no record is partly delivered.
	PartialPartition int32
	PartialRows      int32
}

// Unknown marks a partition without an offset in Cursor.Offsets.
const Unknown int64 = -1

// cursorVersion is the first byte of a cursor's binary form.
const cursorVersion = 1

// maxCursorPartitions bounds the partitions a parsed cursor may carry, so a
// hostile cursor cannot make the server allocate without bound.
const maxCursorPartitions = 1 << 16

// Errors returned by ParseCursor.
var (
	ErrCursorSyntax  = errors.New("cursor is not valid (not a cursor wsdest wrote, or truncated)")
	ErrCursorVersion = errors.New("cursor has an unknown version (written by a newer wsdest?)")
)

// Next returns the next offset to read in partition p and how many rows of
// the record there were already delivered; offset is Unknown when the
// cursor has none for p.
func (c *Cursor) Next(p int32) (offset int64, rows int32) {
	if p < 0 || int(p) >= len(c.Offsets) {
		return Unknown, 0
	}
	o := c.Offsets[p]
	if o >= 0 && c.PartialRows > 0 && c.PartialPartition == p {
		return o, c.PartialRows
	}
	return o, 0
}

// Delivered reports whether the message row (0-based) of the record at
// offset in partition p is already covered by c. Partitions without an
// offset cover nothing.
func (c *Cursor) Delivered(p int32, offset int64, row int32) bool {
	next, rows := c.Next(p)
	if next < 0 {
		return false
	}
	return offset < next || offset == next && row < rows
}

// Advance moves c past message row of rows (rows ≥ 1) of the record at
// offset in partition p. It does not move backwards, except that a record
// in a partition never seen before is taken as it comes.
func (c *Cursor) Advance(p int32, offset int64, row, rows int32) {
	if p < 0 {
		return
	}
	for int(p) >= len(c.Offsets) {
		c.Offsets = append(c.Offsets, Unknown)
	}
	if c.Delivered(p, offset, row) {
		return
	}
	if c.PartialRows > 0 && c.PartialPartition != p {
		// Only one partly delivered record is kept. The rows of a record
		// are always delivered one after the other, so this does not
		// happen on the publish path; if it did, the other record's rows
		// would be delivered again after a resume, never lost.
		c.PartialRows = 0
	}
	if row+1 < rows {
		c.Offsets[p] = offset
		c.PartialPartition, c.PartialRows = p, row+1
		return
	}
	c.Offsets[p] = offset + 1
	if c.PartialPartition == p {
		c.PartialRows = 0
	}
}

// Covers reports whether c is at or past o in every partition o has an
// offset for: a client at o that receives a message whose cursor is c can
// take c as its own position.
func (c *Cursor) Covers(o *Cursor) bool {
	for p, off := range o.Offsets {
		if off < 0 {
			continue
		}
		n, r := c.Next(int32(p))
		if n < 0 {
			return false
		}
		_, or := o.Next(int32(p))
		if n < off || n == off && r < or {
			return false
		}
	}
	return true
}

// Clone returns a copy of c that shares no memory with it.
func (c *Cursor) Clone() Cursor {
	d := *c
	d.Offsets = append([]int64(nil), c.Offsets...)
	return d
}

// AppendText appends c's URL-safe text form (unpadded base64url, about 30
// characters for four partitions) to b.
func (c *Cursor) AppendText(b []byte) []byte {
	// The binary form is built in b's own spare room, moved past where
	// its text goes and encoded from there, so that a cursor written once
	// per message costs no allocation of its own (a buffer of its own
	// would escape to the heap: the checksum reaches its data through a
	// function variable).
	start := len(b)
	b = c.appendBinary(b)
	n := len(b) - start
	enc := base64.RawURLEncoding.EncodedLen(n)
	b = slices.Grow(b, enc)[:start+enc+n]
	copy(b[start+enc:], b[start:start+n])
	base64.RawURLEncoding.Encode(b[start:start+enc], b[start+enc:])
	return b[:start+enc]
}

// String returns c's text form.
func (c Cursor) String() string { return string(c.AppendText(nil)) }

// appendBinary appends the binary form: version, name hash, topic id,
// Since (unix ms + 1, 0 = none), partition count, each offset + 1 (0 =
// Unknown), partial partition + 1 (0 = none) and rows, then the low 16
// bits of the CRC-32 of all that.
// The JavaScript client reads it too (decodeCursor in
// internal/web/static/client.js): a new form needs a new cursorVersion and
// a change there.
func (c *Cursor) appendBinary(b []byte) []byte {
	start := len(b)
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint32(b, c.Topic.NameHash)
	b = append(b, c.Topic.ID[:]...)
	var since uint64
	if !c.Since.IsZero() && c.Since.UnixMilli() >= 0 {
		since = uint64(c.Since.UnixMilli()) + 1
	}
	b = binary.AppendUvarint(b, since)
	b = binary.AppendUvarint(b, uint64(len(c.Offsets)))
	for _, o := range c.Offsets {
		b = binary.AppendUvarint(b, uint64(o+1))
	}
	if c.PartialRows > 0 {
		b = binary.AppendUvarint(b, uint64(c.PartialPartition)+1)
		b = binary.AppendUvarint(b, uint64(c.PartialRows))
	} else {
		b = append(b, 0)
	}
	sum := crc32.ChecksumIEEE(b[start:])
	return binary.BigEndian.AppendUint16(b, uint16(sum))
}

// ParseCursor parses a cursor's text form. The error is ErrCursorSyntax or
// ErrCursorVersion, wrapped with detail fit for a one-line answer to the
// client.
func ParseCursor(s string) (Cursor, error) {
	var c Cursor
	if len(s) == 0 || len(s) > 4*maxCursorPartitions {
		return c, ErrCursorSyntax
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return c, fmt.Errorf("%w: not base64url", ErrCursorSyntax)
	}
	if len(raw) < 1+4+8+1+1+1+2 {
		return c, fmt.Errorf("%w: too short", ErrCursorSyntax)
	}
	body, sum := raw[:len(raw)-2], binary.BigEndian.Uint16(raw[len(raw)-2:])
	if uint16(crc32.ChecksumIEEE(body)) != sum {
		return c, fmt.Errorf("%w: checksum mismatch", ErrCursorSyntax)
	}
	if body[0] != cursorVersion {
		return c, ErrCursorVersion
	}
	c.Topic.NameHash = binary.BigEndian.Uint32(body[1:5])
	copy(c.Topic.ID[:], body[5:13])
	r := body[13:]
	next := func() (uint64, bool) {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			return 0, false
		}
		r = r[n:]
		return v, true
	}
	since, ok := next()
	if !ok || since > 1<<53 {
		return Cursor{}, fmt.Errorf("%w: bad time", ErrCursorSyntax)
	}
	if since > 0 {
		c.Since = time.UnixMilli(int64(since - 1))
	}
	n, ok := next()
	if !ok || n > maxCursorPartitions || n > uint64(len(r)) {
		return Cursor{}, fmt.Errorf("%w: bad partition count", ErrCursorSyntax)
	}
	c.Offsets = make([]int64, n)
	for i := range c.Offsets {
		v, ok := next()
		if !ok || v > 1<<62 {
			return Cursor{}, fmt.Errorf("%w: bad offset", ErrCursorSyntax)
		}
		c.Offsets[i] = int64(v) - 1
	}
	pp, ok := next()
	if !ok || pp > n {
		return Cursor{}, fmt.Errorf("%w: bad partial record", ErrCursorSyntax)
	}
	if pp > 0 {
		rows, ok := next()
		if !ok || rows == 0 || rows > 1<<31-1 || c.Offsets[pp-1] < 0 {
			return Cursor{}, fmt.Errorf("%w: bad partial record", ErrCursorSyntax)
		}
		c.PartialPartition, c.PartialRows = int32(pp-1), int32(rows)
	}
	if len(r) != 0 {
		return Cursor{}, fmt.Errorf("%w: trailing bytes", ErrCursorSyntax)
	}
	return c, nil
}
