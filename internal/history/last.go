package history

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/message"
)

// last starts a last=N client: it queues the N most recent matching
// messages by timestamp (history first, Kafka for partitions the history
// has too few of), and in each partition everything after the first of
// them (keptFrom: a partition whose timestamps are not in offset order
// gives more than its share, never a hole), merged by timestamp (each
// partition's in offset order), with pos placed just before them and moved
// past each (at the published position for partitions with none). What a
// Kafka scan read below a fresh log start listed after it is dropped
// (records deleted between two reads: not contiguous); a scan of a topic
// recreated meanwhile, or a history reset since start, fails closed
// (errRecreated) before anything is pushed.
func (j *job) last(ctx context.Context, n int) error {
	out, err := j.lastMessages(ctx, n)
	if err != nil {
		return err
	}
	// The N records are the start of the stream, not a move: the
	// position starts just before them and passes each.
	j.push(ctx, out)
	return nil
}

// lastMessages returns last's messages, framed with the client's cursors,
// and places and moves pos as last says.
func (j *job) lastMessages(ctx context.Context, n int) ([]*message.Message, error) {
	var byPart [][]*message.Message
	var from []int64
	if s := j.r.cfg.Store; s != nil {
		byPart, from = s.Last(n, func(m *message.Message) bool { return encode.Deliverable(m, j.shape) && j.match(m.Key) })
		if s.Epoch() != j.epoch {
			return nil, errRecreated // the history is of a newer topic
		}
	}
	rd := j.r.cfg.Reader
	starts, err := rd.StartOffsets(ctx, true)
	if err != nil {
		return nil, err
	}
	ends, err := rd.EndOffsets(ctx, true)
	if err != nil {
		return nil, err
	}
	pub := j.r.cfg.Tap.Published()
	parts := int32(len(ends))
	olders := make([][]*message.Message, parts)
	read := false
	for p := range parts {
		bound := ends[p]
		if int(p) < len(from) && from[p] >= 0 {
			bound = from[p]
		}
		if int(p) < len(byPart) && len(byPart[p]) >= n || bound <= starts[p] {
			continue
		}
		var err error
		if olders[p], err = j.lastFromKafka(ctx, p, starts[p], bound, n-len(partOf(byPart, p))); err != nil {
			return nil, err
		}
		read = true
	}
	if read {
		// Kafka gives the records of a topic recreated under the same
		// name as readily as the old one's: the identity, asked after
		// the reads, says which these are.
		id, err := rd.IdentityAfter(ctx, time.Now())
		if err != nil {
			return nil, err
		}
		if id != j.pos.Topic {
			return nil, errRecreated
		}
		// Kafka may have deleted records between two reads of a scan:
		// what it read before them is not contiguous with what follows,
		// so only what Kafka still holds after the scans is kept (a fresh
		// listing, made after every read).
		if starts, err = rd.StartOffsets(ctx, false); err != nil {
			return nil, err
		}
		for p, older := range olders {
			i := 0
			for i < len(older) && older[i].Offset < starts[int32(p)] {
				i++
			}
			olders[p] = older[i:]
		}
	}
	lists := make([][]*message.Message, parts)
	for p := range parts {
		lists[p] = ordered(append(olders[p], partOf(byPart, p)...))
	}
	// The n newest by timestamp overall, each partition in offset order.
	var all []*message.Message
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.SortStableFunc(all, func(a, b *message.Message) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	if len(all) > n {
		all = all[len(all)-n:]
	}
	keep := make(map[*message.Message]bool, len(all))
	for _, m := range all {
		keep[m] = true
	}
	first := make([]int64, parts)
	for p := range parts {
		first[p] = -1
		if i := keptFrom(lists[p], keep); i < len(lists[p]) {
			first[p] = lists[p][i].Offset
		}
		if first[p] < 0 {
			// None of p: from what was published on (a partition the
			// publisher knows nothing of yet is left to resolve).
			first[p], _ = pub.Next(p)
		}
		if first[p] >= 0 {
			j.place(p, first[p])
		}
	}
	// Merge by timestamp, each partition's list kept in its order.
	heads := make([]int, parts)
	var out []*message.Message
	for {
		best := -1
		for p := range lists {
			for heads[p] < len(lists[p]) && !keep[lists[p][heads[p]]] {
				heads[p]++
			}
			if heads[p] == len(lists[p]) {
				continue
			}
			if best < 0 || lists[p][heads[p]].Timestamp < lists[best][heads[best]].Timestamp {
				best = p
			}
		}
		if best < 0 {
			break
		}
		m := lists[best][heads[best]]
		heads[best]++
		j.pos.Advance(m.Partition, m.Offset, m.Row, m.Rows)
		if m = j.view(m); m != nil {
			out = append(out, encode.Reframe(m, j.shape, j.pos.String()))
		}
	}
	return out, nil
}

// partOf returns byPart's messages of partition p (none past its end).
func partOf(byPart [][]*message.Message, p int32) []*message.Message {
	if int(p) < len(byPart) {
		return byPart[p]
	}
	return nil
}

// keptFrom marks as kept every message of l (a partition's messages that
// a client gets, in offset order) from the first kept one on, and from the
// first row of that one's record, and returns its index (len(l) when none
// is kept). The position passes every message it keeps, so a message older
// by its timestamp than the N newest but after one of them in its
// partition is delivered too, never moved over unsent, and a record's rows
// are never cut.
func keptFrom(l []*message.Message, keep map[*message.Message]bool) int {
	i := slices.IndexFunc(l, func(m *message.Message) bool { return keep[m] })
	if i < 0 {
		return len(l)
	}
	for i > 0 && l[i-1].Offset == l[i].Offset {
		i--
	}
	for _, m := range l[i:] {
		keep[m] = true
	}
	return i
}

// A last=N scan of Kafka (for a partition the history holds too few
// matching messages of) reads the partition backwards in windows of
// lastWindow records, each chunk as it comes (a window is never held
// whole), keeping only the newest matching messages it needs; it stops
// after lastScanRecords records or lastScanBytes bytes of keys and values.
// At most lastScans partitions are scanned at once, for all clients; the
// others wait their turn.
const (
	lastWindow      = 4096
	lastScanRecords = 100000
	lastScanBytes   = 32 << 20
	lastScans       = 4
)

// lastFromKafka returns the need newest messages of partition p below hi
// that the client gets, reading backwards from hi, down to start or the
// scan's bounds.
func (j *job) lastFromKafka(ctx context.Context, p int32, start, hi int64, need int) ([]*message.Message, error) {
	select {
	case j.r.scans <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-j.r.scans }()
	var out []*message.Message // the newest need, in offset order
	records, bytes := int64(0), 0
	for len(out) < need && hi > start && records < lastScanRecords && bytes < lastScanBytes {
		lo := max(start, hi-lastWindow)
		var window []*message.Message
		for from := lo; from < hi; {
			ch := j.r.cfg.Reader.Read(ctx, p, from, hi)
			if ch.Err != nil {
				return nil, ch.Err
			}
			for _, rec := range ch.Recs {
				records++
				bytes += len(rec.Key) + len(rec.Value)
				if j.match(rec.Key) {
					window = j.encodeLast(window, rec)
				}
			}
			// Of a window, only the newest need matter.
			if len(window) > need {
				window = append(window[:0], window[len(window)-need:]...)
			}
			if ch.Next <= from {
				break
			}
			from = ch.Next
		}
		out = append(window, out...)
		if len(out) > need {
			out = out[len(out)-need:]
		}
		hi = lo
	}
	return out, nil
}

// encodeLast appends the messages of rec that the client gets, with no
// cursor (last re-frames them).
func (j *job) encodeLast(dst []*message.Message, rec *wsdest.Record) []*message.Message {
	var tmp wsdest.Cursor
	return j.encodeRecord(dst, rec, &tmp)
}

// ordered drops from msgs, one partition's, every message not after the
// one before it (Kafka's and the history's may overlap when the topic was
// recreated meanwhile: the catch-up then fails closed).
func ordered(msgs []*message.Message) []*message.Message {
	out := msgs[:0]
	for _, m := range msgs {
		if n := len(out); n > 0 && (m.Offset < out[n-1].Offset || m.Offset == out[n-1].Offset && m.Row <= out[n-1].Row) {
			continue
		}
		out = append(out, m)
	}
	return out
}
