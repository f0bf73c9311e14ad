package history

import (
	"context"
	"errors"
	"time"

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
// by every client that snapshots at P; a point serves the snapshots of
// the next snapshotReuse), and its messages are framed with P as their
// cursor (shared by the clients at P: View.SharedFrame) as they are
// pushed, paced by the client's backlog, then the snapshot_end notice. The catch-up then goes
// on from P like any other: for each key, nothing older than its
// snapshot message follows, and nothing published after P is missed.
func (j *job) snapshot(ctx context.Context) error {
	tbl := j.r.cfg.Table
	if tbl == nil {
		return errNoTable
	}
	point := j.r.snapshotPoint(func() snapshotPoint {
		var p snapshotPoint
		j.r.cfg.Tap.join(func(pub *wsdest.Cursor) bool {
			p.capture, p.at = tbl.Capture(), pub.Clone()
			return true
		})
		p.cursor = p.at.String()
		return p
	})
	if point.at.Topic != j.pos.Topic {
		return errRecreated
	}
	j.pos = point.at.Clone()
	cursor := point.cursor
	view := tbl.ViewOf(point.capture)
	tbl.Served()
	n, ok := j.pushSnapshot(ctx, view, view.Messages(j.match), cursor)
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
func (j *job) pushSnapshot(ctx context.Context, view *snapshot.View, msgs []*message.Message, cursor string) (int, bool) {
	v := j.c.View()
	limit := j.c.MaxQueueBytes() / 2
	var batch []*message.Message
	n, cost := 0, 0
	for _, m := range msgs {
		kept := m
		if v != nil {
			if m = v.Apply(m); m == nil {
				continue
			}
		}
		var f *message.Message
		if m == kept {
			f = view.SharedFrame(m, j.shape, cursor)
		} else {
			f = snapshot.Frame(m, j.shape, cursor) // derived for this client's view
		}
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

// snapshotReuse is how long a snapshot point serves the snapshots that
// follow it: a client placed at a point up to this old catches up from
// it like any resuming client (exact, from the history), and every client
// at one point shares its view and its frames (snapshot.View.SharedFrame)
// instead of each building its own.
const snapshotReuse = 250 * time.Millisecond

// snapshotPoint is a table capture and the published position it was
// taken at, with that position's text.
type snapshotPoint struct {
	capture snapshot.Capture
	at      wsdest.Cursor
	cursor  string
	taken   time.Time
}

// snapshotPoint returns the last point taken, when it is younger than
// snapshotReuse and of the topic the tap publishes now; otherwise one
// from take (outside pointMu: take waits for the tap between two
// batches), kept for the clients that follow. The returned point's
// cursor must not be modified.
func (r *Resumer) snapshotPoint(take func() snapshotPoint) snapshotPoint {
	r.pointMu.Lock()
	p := r.point
	r.pointMu.Unlock()
	if p != nil && time.Since(p.taken) < snapshotReuse && p.at.Topic == r.cfg.Tap.Identity() {
		return *p
	}
	q := take()
	q.taken = time.Now()
	r.pointMu.Lock()
	r.point = &q
	r.pointMu.Unlock()
	return q
}
