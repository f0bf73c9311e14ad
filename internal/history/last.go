package history

import (
	"cmp"
	"context"
	"slices"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
	"github.com/wsdest/wsdest/internal/hub"
)

// last starts a last=N client: it queues the N most recent matching
// messages (history first, Kafka for partitions the history has too few
// of), merged by timestamp (each partition's in offset order), with pos
// placed just before them and moved past each (at the published position
// for partitions with none).
func (j *job) last(ctx context.Context, n int) error {
	var byPart [][]*hub.Message
	var from []int64
	if s := j.r.cfg.Store; s != nil {
		byPart, from = s.Last(n, func(m *hub.Message) bool { return encode.Deliverable(m, j.shape) && j.match(m.Key) })
	}
	rd := j.r.cfg.Reader
	starts, err := rd.StartOffsets(ctx, true)
	if err != nil {
		return err
	}
	ends, err := rd.EndOffsets(ctx, true)
	if err != nil {
		return err
	}
	pub := j.r.cfg.Tap.Published()
	parts := int32(len(ends))
	lists := make([][]*hub.Message, parts)
	for p := range parts {
		var hist []*hub.Message
		if int(p) < len(byPart) {
			hist = byPart[p]
		}
		bound := ends[p]
		if int(p) < len(from) && from[p] >= 0 {
			bound = from[p]
		}
		var older []*hub.Message
		if len(hist) < n && bound > starts[p] {
			var err error
			if older, err = j.lastFromKafka(ctx, p, starts[p], bound, n-len(hist)); err != nil {
				return err
			}
		}
		lists[p] = ordered(append(older, hist...))
	}
	// The n newest by timestamp overall, each partition in offset order.
	var all []*hub.Message
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.SortStableFunc(all, func(a, b *hub.Message) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
	if len(all) > n {
		all = all[len(all)-n:]
	}
	keep := make(map[*hub.Message]bool, len(all))
	for _, m := range all {
		keep[m] = true
	}
	first := make([]int64, parts)
	for p := range parts {
		first[p] = -1
		for _, m := range lists[p] {
			if keep[m] {
				first[p] = m.Offset
				break
			}
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
	var out []*hub.Message
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
		out = append(out, encode.Reframe(m, j.shape, j.pos.String()))
	}
	// The N records are the start of the stream, not a move: the
	// position starts just before them and passes each.
	j.push(ctx, out)
	return nil
}

// maxLastScan bounds the records of one partition read from Kafka to find
// the last N matching ones.
const maxLastScan = 100000

// lastFromKafka returns the need newest messages of partition p below hi
// that the client gets, reading backwards from hi in windows that double,
// down to start or maxLastScan records.
func (j *job) lastFromKafka(ctx context.Context, p int32, start, hi int64, need int) ([]*hub.Message, error) {
	var out []*hub.Message
	size := int64(max(need, 64))
	for scanned := int64(0); len(out) < need && hi > start && scanned < maxLastScan; size *= 2 {
		lo := max(start, hi-size)
		recs, err := j.readRange(ctx, p, lo, hi)
		if err != nil {
			return nil, err
		}
		scanned += hi - lo
		var got []*hub.Message
		var tmp wsdest.Cursor
		for _, rec := range recs {
			if !j.match(rec.Key) {
				continue
			}
			k := len(got)
			got = j.r.cfg.Encoder.EncodeAt(got, rec, j.want, &tmp)
			kept := got[:k]
			for _, m := range got[k:] {
				if m.Frames[j.shape] != nil {
					kept = append(kept, m)
				}
			}
			got = kept
		}
		out = append(got, out...)
		hi = lo
	}
	if len(out) > need {
		out = out[len(out)-need:]
	}
	return out, nil
}

// readRange reads all of [lo, hi) of partition p.
func (j *job) readRange(ctx context.Context, p int32, lo, hi int64) ([]*wsdest.Record, error) {
	var out []*wsdest.Record
	for lo < hi {
		ch := j.r.cfg.Reader.Read(ctx, p, lo, hi)
		if ch.Err != nil {
			return nil, ch.Err
		}
		out = append(out, ch.Recs...)
		if ch.Next <= lo {
			break
		}
		lo = ch.Next
	}
	return out, nil
}

// ordered drops from msgs, one partition's, every message not after the
// one before it (Kafka's and the history's may overlap when the topic was
// recreated meanwhile: the catch-up then fails closed).
func ordered(msgs []*hub.Message) []*hub.Message {
	out := msgs[:0]
	for _, m := range msgs {
		if n := len(out); n > 0 && (m.Offset < out[n-1].Offset || m.Offset == out[n-1].Offset && m.Row <= out[n-1].Row) {
			continue
		}
		out = append(out, m)
	}
	return out
}
