package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseKeysFile(t *testing.T) {
	tests := []struct {
		name string
		file string
		want map[string]Grant // by key
		err  string
	}{
		{"star grants all", "k1 *\n", map[string]Grant{"k1": {All: true}}, ""},
		// A key alone is what a line cut short by a write in progress
		// looks like: it must not grant every key.
		{"key alone", "k0 a\nk1\n", nil, "line 2: a key without patterns (write * to grant every key)"},
		{"key alone before a comment", "k1 # all\n", nil, "line 1: a key without patterns (write * to grant every key)"},
		{"no final newline", "k1 a\nk2 b", nil, "the last line does not end in a newline (a write in progress? replace the file by rename)"},
		{"no final newline after a comment", "k1 a\n# end", nil, "the last line does not end in a newline (a write in progress? replace the file by rename)"},
		{"patterns", "k1 t-a/* t-b/1\n\tk2\tx  y \n", map[string]Grant{"k1": {Keys: []string{"t-a/*", "t-b/1"}}, "k2": {Keys: []string{"x", "y"}}}, ""},
		{"patterns as a set", "k1 b a b\n", map[string]Grant{"k1": {Keys: []string{"a", "b"}}}, ""},
		{"pattern too long", "k1 " + strings.Repeat("p", 257) + "\n", nil, "line 1: a pattern of 257 bytes, at most 256"},
		{"too many globs", "k1" + patterns("g*", 65) + "\n", nil, "line 1: 65 patterns with * or ?, at most 64"},
		{"globs at the bound, many exact keys", "k1" + patterns("g*", 64) + patterns("e", 900) + "\n", nil, ""},
		{"star grants all", "k1 a *\n", map[string]Grant{"k1": {All: true}}, ""},
		{"comments and blanks", "# keys\n\nk1 a # tenant a\n  # k2\nk#3 b\n", map[string]Grant{"k1": {Keys: []string{"a"}}, "k#3": {Keys: []string{"b"}}}, ""},
		{"CRLF", "k1 a\r\nk2 *\r\n", map[string]Grant{"k1": {Keys: []string{"a"}}, "k2": {All: true}}, ""},
		{"empty", "# nothing\n\n", nil, "holds no key"},
		{"duplicate", "k1 a\nk2 *\nk1 b\n", nil, "line 3: the key of an earlier line again"},
		{"control character", "k1 a\x01b\n", nil, "line 1: a pattern holds a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := parseKeysFile([]byte(tt.file), limits{}.orDefaults(), newKeyIDs())
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("error %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil && len(set) != len(tt.want) {
				t.Fatalf("%d keys, want %d", len(set), len(tt.want))
			}
			if tt.want == nil {
				return
			}
			for key, g := range tt.want {
				k, ok := set.lookup(digestOf(key))
				if !ok {
					t.Fatalf("key %q missing", key)
				}
				if k.grant.All != g.All || !slices.Equal(k.grant.Keys, g.Keys) {
					t.Errorf("key %q: grant %+v, want %+v", key, k.grant, g)
				}
			}
		})
	}
}

// patterns returns n distinct patterns, each a space and p with a number
// in front.
func patterns(p string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, " %d%s", i, p)
	}
	return b.String()
}

func digestOf(s string) digest {
	a := newKey(s, Grant{}, false, newKeyIDs())
	return a.digest
}

// writeAtomically replaces path the way a Kubernetes secret mount does:
// the new contents in a new directory, then a symlink swapped over.
func writeAtomically(t *testing.T, dir, contents string) string {
	t.Helper()
	gen := filepath.Join(dir, "..data-"+time.Now().Format("150405.000000000"))
	if err := os.Mkdir(gen, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(gen, "keys"), []byte(contents), 0o600); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "keys")
	if _, err := os.Lstat(path); err != nil {
		if err := os.Symlink("..data/keys", path); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// The keys file is re-read when it changes: a key removed, or whose
// patterns changed, is revoked (its holders are told and its principals
// report Revoked); a bad file keeps the last good one and is logged once.
func TestKeysFileReload(t *testing.T) {
	dir := t.TempDir()
	path := writeAtomically(t, dir, "keep-key t-a/*\ngone-key *\nnarrowed-key t-*\n")
	var mu sync.Mutex
	var log bytes.Buffer
	a := mustNew(t, Config{KeysFile: path, KeysFilePoll: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&lockedWriter{w: &log, mu: &mu}, nil))})
	revoked := make(chan []string, 10)
	runAuth(t, a, func(r []string) { revoked <- r })

	principal := func(key string) (Principal, error) { return authorizeToken(a, key) }
	gone, err := principal("gone-key")
	if err != nil {
		t.Fatal(err)
	}
	narrowed, _ := principal("narrowed-key")
	keep, _ := principal("keep-key")
	if !gone.Grant.All || gone.Revocation == "" || !strings.HasPrefix(gone.ID, "key:") || len(gone.ID) != 12 {
		t.Fatalf("principal %+v", gone)
	}

	writeAtomically(t, dir, "keep-key t-a/* t-a/*\nnarrowed-key t-a/*\nnew-key x\n")
	var got []string
	select {
	case got = <-revoked:
	case <-time.After(20 * time.Second):
		t.Fatal("no revocation")
	}
	slices.Sort(got)
	want := []string{gone.Revocation, narrowed.Revocation}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("revoked %q, want %q", got, want)
	}
	if !gone.Revoked() || !narrowed.Revoked() || keep.Revoked() {
		t.Errorf("Revoked: gone %v narrowed %v keep %v", gone.Revoked(), narrowed.Revoked(), keep.Revoked())
	}
	if _, err := principal("gone-key"); reasonOfErr(err) != ReasonUnknownKey {
		t.Errorf("removed key: %v", err)
	}
	if p, err := principal("new-key"); err != nil || p.Grant.Keys[0] != "x" {
		t.Errorf("added key: %+v %v", p, err)
	}

	// A bad file: the last good one stays, one log line however long it stays bad.
	writeAtomically(t, dir, "keep-key a\nkeep-key b\n")
	waitFor(t, "the bad file logged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(log.String(), "keys file not reloaded")
	})
	writeAtomically(t, dir, "keep-key a\nkeep-key b\n# still bad\n")
	waitFor(t, "the second bad file logged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(log.String(), "keys file not reloaded") == 2
	})
	for range 3 { // more polls of the same bad contents
		before := len(revoked)
		time.Sleep(20 * time.Millisecond)
		if len(revoked) != before {
			t.Fatal("revocation from a bad file")
		}
	}
	mu.Lock()
	if n := strings.Count(log.String(), "keys file not reloaded"); n != 2 {
		t.Errorf("%d lines for two bad versions, want 2", n)
	}
	for _, secret := range []string{"keep-key", "gone-key", "narrowed-key", "new-key"} {
		if strings.Contains(log.String(), secret) {
			t.Errorf("log holds the key %q:\n%s", secret, log.String())
		}
	}
	mu.Unlock()
	if _, err := principal("keep-key"); err != nil {
		t.Errorf("the last good file lost: %v", err)
	}
}

func TestKeysFileAtStart(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Config{KeysFile: filepath.Join(dir, "none")}); err == nil {
		t.Error("missing file accepted")
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("secret-one a\nsecret-one b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Config{KeysFile: bad})
	if err == nil || strings.Contains(err.Error(), "secret-one") || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad file: %v", err)
	}
}

// Static keys and file keys live side by side; static keys are never
// revoked.
func TestStaticAndFileKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte("file-key t-a/*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := mustNew(t, Config{APIKeys: []string{"static-key"}, KeysFile: path})
	p, err := a.Authorize(httptest.NewRequest(http.MethodGet, "/ws?token=static-key", nil), AmbientAllowed)
	if err != nil || !p.Grant.All || p.Revocation != "" {
		t.Errorf("static key: %+v %v", p, err)
	}
	r := httptest.NewRequest(http.MethodGet, "/ws", nil)
	r.AddCookie(&http.Cookie{Name: CookieName, Value: "file-key"})
	if p, err = a.Authorize(r, AmbientAllowed); err != nil || p.Grant.All || p.Revocation == "" {
		t.Errorf("file key in a cookie: %+v %v", p, err)
	}
}

// BenchmarkKeysFileLookup is the cost of checking an API key among 500.
func BenchmarkKeysFileLookup(b *testing.B) {
	var sb strings.Builder
	for i := range 500 {
		sb.WriteString("key-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "-" + time.Duration(i).String() + " t-a/*\n")
	}
	path := filepath.Join(b.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	a := mustNew(b, Config{KeysFile: path})
	r := httptest.NewRequest(http.MethodGet, "/ws?token=key-a-0s", nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Authorize(r, AmbientAllowed); err != nil {
			b.Fatal(err)
		}
	}
}

// A file caught in the middle of a write keeps the last good one, however
// it was cut: a line left without its patterns, or without its newline,
// never widens a grant.
func TestKeysFilePartialWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	if err := os.WriteFile(path, []byte("k-other x\nk-cust *-eu\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := mustNew(t, Config{KeysFile: path, KeysFilePoll: time.Hour})
	for _, cut := range []string{"k-other x\nk-cust *", "k-other x\nk-cust ", "k-other x\nk-cust\n", "k-other x\nk-cust"} {
		if err := os.WriteFile(path, []byte(cut), 0o600); err != nil {
			t.Fatal(err)
		}
		revoked, changed, err := a.file.reload()
		if err == nil || changed || len(revoked) > 0 {
			t.Errorf("%q: reload %v %v %v, want an error and nothing changed", cut, revoked, changed, err)
		}
		if p, err := authorizeToken(a, "k-cust"); err != nil || p.Grant.All || !slices.Equal(p.Grant.Keys, []string{"*-eu"}) {
			t.Errorf("%q: k-cust now grants %+v (%v), want *-eu", cut, p.Grant, err)
		}
	}
}

// Patterns are compared as sets: a file that lists a key's patterns in
// another order, or repeats one, does not revoke it.
func TestKeysFileReorderKeepsKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys")
	if err := os.WriteFile(path, []byte("k a b\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := mustNew(t, Config{KeysFile: path, KeysFilePoll: time.Hour})
	p, err := authorizeToken(a, "k")
	if err != nil {
		t.Fatal(err)
	}
	for _, same := range []string{"k b a\n", "k a b a\n", "# reordered\nk b b a\n"} {
		if err := os.WriteFile(path, []byte(same), 0o600); err != nil {
			t.Fatal(err)
		}
		if revoked, _, err := a.file.reload(); err != nil || len(revoked) > 0 || p.Revoked() {
			t.Errorf("%q: revoked %v (%v)", same, revoked, err)
		}
	}
}

// A keys file is read through a bound: a huge file (or a device that
// never ends) is refused without being read whole.
func TestKeysFileTooLarge(t *testing.T) {
	if _, err := New(Config{KeysFile: "/dev/zero"}); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("New with /dev/zero: %v", err)
	}
}

// A key's log name is no oracle against a guessed key: it is not the
// SHA-256 of the key, and another process names the same key otherwise.
func TestKeyIDNotAHash(t *testing.T) {
	const key = "k-guessable"
	sum := sha256.Sum256([]byte(key))
	var ids []string
	for range 2 {
		a := mustNew(t, Config{APIKeys: []string{key}})
		p, err := authorizeToken(a, key)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.ID, "key:") || len(p.ID) != 12 || strings.Contains(p.ID, hex.EncodeToString(sum[:4])) {
			t.Errorf("ID %q: want key: and 8 hex digits, not the key's SHA-256", p.ID)
		}
		ids = append(ids, p.ID)
	}
	if ids[0] == ids[1] {
		t.Errorf("two authenticators name the key %q both", ids[0])
	}
}
