package snapshot

import (
	"maps"
	"slices"
	"sync"

	"github.com/wsdest/wsdest/internal/message"
)

// minChanges is the fewest changes folded into a new base at a time
// (changedLocked): below it a snapshot applies them to the base itself.
const minChanges = 1024

// frozen is what the table held after some change: a map from key to
// latest message, never modified once built.
type frozen struct {
	keys map[string]*message.Message
}

// change is one change to the table's contents: key's latest message is
// msg, or the key is gone (msg nil).
type change struct {
	key string
	msg *message.Message
}

// Capture is what the table held at one moment, taken in O(1) under the
// table's lock (Table.Capture): a base and the changes since, both
// immutable. ViewOf turns it into a View outside every lock the
// publisher takes.
type Capture struct {
	base    *frozen
	changes []change
}

// viewSlot is the View of one Capture, built once (Table.ViewOf).
type viewSlot struct {
	base *frozen
	n    int
	// installed is the base made of view (install), whose Capture
	// without changes is the same view; guarded by Table.viewMu.
	installed *frozen
	once      sync.Once
	view      *View
}

// changedLocked records a change of key's latest message (msg nil: gone).
// When the changes outgrow the base (and minChanges), a goroutine folds
// them into a new base (compact), so that they cost the table at most
// about as much as its keys; it works outside the table's lock and
// takes it only to swap the base. t.mu must be held.
func (t *Table) changedLocked(key string, msg *message.Message) {
	t.changes = append(t.changes, change{key, msg})
	if !t.compacting && len(t.changes) > max(minChanges, len(t.base.keys)) {
		t.compacting = true
		go t.compact(t.captureLocked())
	}
}

// compact folds c into a new base (through ViewOf, which installs it).
func (t *Table) compact(c Capture) {
	t.ViewOf(c)
	t.mu.Lock()
	t.compacting = false
	t.mu.Unlock()
}

// Capture returns what the table holds now, in O(1): call it under the
// publisher's lock, so that it matches the published position, and turn
// it into a View (ViewOf) after releasing that lock.
func (t *Table) Capture() Capture {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.captureLocked()
}

func (t *Table) captureLocked() Capture {
	return Capture{base: t.base, changes: t.changes[:len(t.changes):len(t.changes)]}
}

// ViewOf returns the View of c: built once, by the first caller, outside
// the table's lock (a copy of the base's map with c's changes applied),
// and shared by every caller with the same Capture (every snapshot taken
// while the table did not change). The view becomes the table's new base
// when the table has not been reset since c, so that the next views
// start from it.
func (t *Table) ViewOf(c Capture) *View {
	t.viewMu.Lock()
	s := t.slot
	if s == nil || !s.holds(c) {
		s = &viewSlot{base: c.base, n: len(c.changes)}
		t.slot = s
	}
	t.viewMu.Unlock()
	s.once.Do(func() {
		s.view = build(c)
		if b := t.install(c, s.view); b != nil {
			t.viewMu.Lock()
			s.installed = b
			t.viewMu.Unlock()
		}
	})
	return s.view
}

// holds reports whether s is the slot of c. Table.viewMu must be held.
func (s *viewSlot) holds(c Capture) bool {
	return s.base == c.base && s.n == len(c.changes) || s.installed == c.base && len(c.changes) == 0
}

// View returns the View of what the table holds now (ViewOf(Capture())).
func (t *Table) View() *View { return t.ViewOf(t.Capture()) }

// build applies c's changes to a copy of its base.
func build(c Capture) *View {
	var keys map[string]*message.Message
	if len(c.changes) == 0 && c.base.keys != nil {
		keys = c.base.keys
	} else {
		keys = make(map[string]*message.Message, len(c.base.keys)+len(c.changes))
		maps.Copy(keys, c.base.keys)
		for _, ch := range c.changes {
			if ch.msg == nil {
				delete(keys, ch.key)
			} else {
				keys[ch.key] = ch.msg
			}
		}
	}
	return &View{keys: keys}
}

// install makes v, the view of c, the table's base, keeping the changes
// made since c (copied under the lock: as many as the publisher made
// while v was built), and returns the new base; nil when the table was
// reset since c, or c had no change.
func (t *Table) install(c Capture, v *View) *frozen {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.base != c.base || len(c.changes) == 0 {
		return nil
	}
	t.base = &frozen{keys: v.keys}
	t.changes = slices.Clone(t.changes[len(c.changes):])
	return t.base
}
