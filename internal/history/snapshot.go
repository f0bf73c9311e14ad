package history

import (
	"context"
	"errors"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/message"
	"github.com/wsdest/wsdest/internal/snapshot"
)

// errNoTable: a snapshot asked of a Resumer without a table.
var errNoTable = errors.New("history: snapshots are off")

// errLeft: the client closed while its snapshot was pushed.
var errLeft = errors.New("history: the client left")

// waitSeeded waits until the table is seeded (Seed), or returns ctx's
// error; without a table it returns at once (the snapshot then fails).
func (r *Resumer) waitSeeded(ctx context.Context) error {
	if r.cfg.Table == nil {
		return nil
	}
	return r.cfg.Table.WaitSeeded(ctx)
}

// snapshot places the client at the published position P after the
// latest message of every key it takes, as the table held it at P: the
// two are captured together between two batches (Tap.join), in O(1)
// (Table.Capture: no work per key under the tap's lock); the view is
// built from the capture outside every shared lock (Table.ViewOf, shared
// by every client that snapshots at P), and its messages are framed with
// P as their cursor a little at a time as they are pushed, paced by the
// client's backlog, then the snapshot_end notice. The catch-up then goes
// on from P like any other: for each key, nothing older than its
// snapshot message follows, and nothing published after P is missed.
func (j *job) snapshot(ctx context.Context) error {
	tbl := j.r.cfg.Table
	if tbl == nil {
		return errNoTable
	}
	var capture snapshot.Capture
	var at wsdest.Cursor
	j.r.cfg.Tap.join(func(pub *wsdest.Cursor) bool {
		capture, at = tbl.Capture(), pub.Clone()
		return true
	})
	if at.Topic != j.pos.Topic {
		return errRecreated
	}
	j.pos = at
	cursor := at.String()
	view := tbl.ViewOf(capture)
	tbl.Served()
	n, ok := j.pushSnapshot(ctx, view.Messages(j.match), cursor)
	if !ok {
		return errLeft
	}
	if end := snapshot.End(j.shape, n, cursor); end != nil {
		j.c.Push([]*message.Message{end})
	}
	return nil
}

// pushSnapshot frames msgs for the client at cursor and pushes them,
// half the client's queue bound at a time (push), so that the framed
// copies it holds beside its queue stay within that; it returns how many
// it pushed, and false when the client left. A client with a view
// (hub.View) gets what its view makes of each key's latest message, and
// none for a key whose latest message the view drops.
func (j *job) pushSnapshot(ctx context.Context, msgs []*message.Message, cursor string) (int, bool) {
	v := j.c.View()
	limit := j.c.MaxQueueBytes() / 2
	var batch []*message.Message
	n, cost := 0, 0
	for _, m := range msgs {
		if v != nil {
			if m = v.Apply(m); m == nil {
				continue
			}
		}
		f := snapshot.Frame(m, j.shape, cursor)
		if f == nil {
			continue
		}
		batch = append(batch, f)
		n++
		if cost += j.c.Cost(f); cost >= limit {
			if !j.push(ctx, batch) {
				return n, false
			}
			batch, cost = nil, 0
		}
	}
	return n, j.push(ctx, batch)
}
