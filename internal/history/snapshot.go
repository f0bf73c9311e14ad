package history

import (
	"context"
	"errors"

	"github.com/wsdest/wsdest"
	"github.com/wsdest/wsdest/internal/encode"
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
// two are taken together between two batches (Tap.join), the messages
// framed with P as their cursor (shared by every client that snapshots
// at P) and pushed outside any shared lock, paced by the client's
// backlog, then the snapshot_end notice. The catch-up then goes on from
// P like any other: for each key, nothing older than its snapshot message
// follows, and nothing published after P is missed.
func (j *job) snapshot(ctx context.Context) error {
	tbl := j.r.cfg.Table
	if tbl == nil {
		return errNoTable
	}
	var view *snapshot.View
	var at wsdest.Cursor
	j.r.cfg.Tap.join(func(pub *wsdest.Cursor) bool {
		view, at = tbl.View(), pub.Clone()
		return true
	})
	if at.Topic != j.pos.Topic {
		return errRecreated
	}
	j.pos = at
	cursor := at.String()
	msgs := j.snapshotMessages(view, cursor)
	tbl.Served()
	if !j.push(ctx, msgs) {
		return errLeft
	}
	if end := snapshot.End(j.shape, len(msgs), cursor); end != nil {
		j.c.Push([]*message.Message{end})
	}
	return nil
}

// snapshotMessages returns the client's snapshot at cursor: the view's
// messages of the keys it takes, framed with cursor. A client with a
// view (hub.View) gets what its view makes of each key's latest message,
// and none for a key whose latest message the view drops; the messages
// a filter keeps as they are share the framing of every client at
// cursor, derived ones are framed for this client alone.
func (j *job) snapshotMessages(view *snapshot.View, cursor string) []*message.Message {
	msgs := view.Messages(j.match)
	v := j.c.View()
	if v == nil {
		return view.Frames(msgs, j.shape, cursor)
	}
	kept := msgs[:0:0]
	var derived []*message.Message
	for _, m := range msgs {
		switch d := v.Apply(m); {
		case d == nil:
		case d == m:
			kept = append(kept, m)
		case encode.Deliverable(d, j.shape):
			derived = append(derived, encode.Reframe(d, j.shape, cursor))
		}
	}
	return append(view.Frames(kept, j.shape, cursor), derived...)
}
