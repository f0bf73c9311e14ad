package snapshot

import (
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"
)

// totalAlloc returns the bytes allocated so far.
func totalAlloc() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.TotalAlloc
}

// What a snapshot does under the publisher's lock (Capture) costs the
// same at any number of keys: it copies nothing, however many points
// records make between two snapshots; the view is built afterwards
// (ViewOf), outside that lock, and each point's view holds no framed
// copy.
func TestCaptureCopiesNothingPerKey(t *testing.T) {
	msgs := keptMessages(DefaultMaxKeys)
	tbl := New(Config{Logger: discard()})
	for _, m := range msgs {
		tbl.Put(m)
	}
	tbl.View()
	const points = 10
	captures := make([]Capture, 0, points)
	for i := range points {
		tbl.Put(msgs[i]) // a record published: a new point
		before := totalAlloc()
		captures = append(captures, tbl.Capture())
		if got := totalAlloc() - before; got > 64<<10 {
			t.Fatalf("Capture at %d keys allocated %d KB under the publisher's lock", DefaultMaxKeys, got>>10)
		}
	}
	for i, c := range captures {
		if n := tbl.ViewOf(c).Len(); n != DefaultMaxKeys {
			t.Fatalf("view %d holds %d keys", i, n)
		}
	}
}

// Records that change nothing in the table (no key, or skipped) move the
// point but not the table: the snapshots at those points share one view.
func TestViewSharedBetweenPointsWithoutAChange(t *testing.T) {
	tbl := New(Config{Logger: discard()})
	for _, m := range keptMessages(1000) {
		tbl.Put(m)
	}
	a, b := tbl.Capture(), tbl.Capture()
	if tbl.ViewOf(a) != tbl.ViewOf(b) {
		t.Fatal("two snapshots of an unchanged table built two views")
	}
}

// Without snapshots, the changes kept to build views are folded into the
// base in the background: they stay about as many as the keys, and so do
// the old messages they hold.
func TestChangesStayBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tbl := New(Config{Logger: discard()})
		for i := range 100 * minChanges {
			tbl.Put(msg(fmt.Sprintf("k%d", i%10), 0, int64(i)))
			synctest.Wait()
		}
		tbl.mu.Lock()
		n := len(tbl.changes)
		tbl.mu.Unlock()
		if n > 2*minChanges {
			t.Fatalf("%d changes kept for a table of 10 keys", n)
		}
		if got := contents(tbl); len(got) != 10 || got[9] != fmt.Sprintf("k%d@0/%d", (100*minChanges-1)%10, 100*minChanges-1) {
			t.Fatalf("table %q", got)
		}
	})
}
