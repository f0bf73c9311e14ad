package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
)

// MaxGrantPatterns bounds the patterns of one grant (a keys file line or a
// JWT's keys claim), so that no credential makes routing expensive.
const MaxGrantPatterns = 1024

// maxKeysFile bounds the size of AUTH_API_KEYS_FILE.
const maxKeysFile = 4 << 20

// apiKey is one configured API key: only its digest is kept.
type apiKey struct {
	digest  digest
	grant   Grant
	id      string       // "key:" and 8 hex digits of the digest
	revoked *atomic.Bool // nil for static keys, which are never revoked
}

// keySet maps key digests to keys: a presented key costs one SHA-256 and
// one map lookup however many keys there are. It is immutable once built.
type keySet map[digest]*apiKey

// lookup returns the key whose digest is d. The map finds the candidate
// by the digest; the digests are then compared in constant time.
func (s keySet) lookup(d digest) (*apiKey, bool) {
	k, ok := s[d]
	if !ok || subtle.ConstantTimeCompare(k.digest[:], d[:]) != 1 {
		return nil, false
	}
	return k, true
}

func keyID(d digest) string { return "key:" + hex.EncodeToString(d[:4]) }

func newKey(secret string, g Grant, revocable bool) *apiKey {
	k := &apiKey{digest: sha256.Sum256([]byte(secret)), grant: g}
	k.id = keyID(k.digest)
	if revocable {
		k.revoked = new(atomic.Bool)
	}
	return k
}

// principal returns who the key names.
func (k *apiKey) principal() Principal {
	p := Principal{ID: k.id, Grant: k.grant, revoked: k.revoked}
	if k.revoked != nil {
		p.Revocation = hex.EncodeToString(k.digest[:])
	}
	return p
}

// parseKeysFile reads the AUTH_API_KEYS_FILE format: one key a line,
// then whitespace-separated patterns it may read (none: every key); '#'
// at the start of a line or after a blank starts a comment; blank lines
// are skipped. Its errors name the line, never the key.
func parseKeysFile(b []byte) (keySet, error) {
	if len(b) > maxKeysFile {
		return nil, fmt.Errorf("larger than %d bytes", maxKeysFile)
	}
	set := make(keySet)
	for n, line := range bytes.Split(b, []byte("\n")) {
		fields := strings.Fields(stripComment(string(line)))
		if len(fields) == 0 {
			continue
		}
		key, patterns := fields[0], fields[1:]
		if len(patterns) > MaxGrantPatterns {
			return nil, fmt.Errorf("line %d: %d patterns, at most %d", n+1, len(patterns), MaxGrantPatterns)
		}
		for _, p := range patterns {
			if strings.ContainsFunc(p, isControl) {
				return nil, fmt.Errorf("line %d: a pattern holds a control character", n+1)
			}
		}
		if strings.ContainsFunc(key, isControl) {
			return nil, fmt.Errorf("line %d: the key holds a control character", n+1)
		}
		g := Grant{All: true}
		if len(patterns) > 0 {
			g = grantOf(slices.Clone(patterns))
		}
		k := newKey(key, g, true)
		if _, dup := set[k.digest]; dup {
			return nil, fmt.Errorf("line %d: the key of an earlier line again", n+1)
		}
		set[k.digest] = k
	}
	if len(set) == 0 {
		return nil, errors.New("holds no key")
	}
	return set, nil
}

func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// sameGrant reports whether two grants are equal.
func sameGrant(a, b Grant) bool { return a.All == b.All && slices.Equal(a.Keys, b.Keys) }

// keysFile is AUTH_API_KEYS_FILE as last read. Owned by the goroutine
// that polls it (Authenticator.Run); set is read by every request.
type keysFile struct {
	path string
	set  atomic.Pointer[keySet]

	// Owned by the polling goroutine.
	seen [sha256.Size]byte // digest of the contents last read, good or bad
}

// load reads the file; it is used at start, when a bad file is an error.
func (f *keysFile) load() error {
	b, err := os.ReadFile(f.path)
	if err != nil {
		return fmt.Errorf("read keys file: %w", err)
	}
	set, err := parseKeysFile(b)
	if err != nil {
		return fmt.Errorf("keys file %s: %w", f.path, err)
	}
	f.seen = sha256.Sum256(b)
	f.set.Store(&set)
	return nil
}

// reload reads the file again. If its contents changed and are good, it
// replaces the set and returns the revocation identities of the keys
// removed or changed (marked revoked); if they are bad, it returns an
// error once per distinct contents, and the last good set stays.
func (f *keysFile) reload() (revoked []string, changed bool, err error) {
	b, err := os.ReadFile(f.path)
	if err != nil {
		d := sha256.Sum256([]byte("unreadable: " + err.Error()))
		if d == f.seen {
			return nil, false, nil
		}
		f.seen = d
		return nil, false, fmt.Errorf("read keys file: %w", err)
	}
	d := sha256.Sum256(b)
	if d == f.seen {
		return nil, false, nil
	}
	f.seen = d
	set, err := parseKeysFile(b)
	if err != nil {
		return nil, false, fmt.Errorf("keys file %s: %w", f.path, err)
	}
	old := *f.set.Load()
	for dg, k := range old {
		if nk, ok := set[dg]; ok && sameGrant(nk.grant, k.grant) {
			set[dg] = k // the same key with the same grant: keep its identity
			continue
		}
		k.revoked.Store(true)
		revoked = append(revoked, hex.EncodeToString(dg[:]))
	}
	f.set.Store(&set)
	return revoked, true, nil
}
