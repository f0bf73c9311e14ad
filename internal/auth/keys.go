package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync/atomic"
)

// MaxGrantPatterns bounds the patterns of one grant (a keys file line or a
// JWT's keys claim), so that no credential makes routing expensive. Exact
// keys cost a map lookup per record however many; globs are bounded
// further (Config.MaxGrantGlobs).
const MaxGrantPatterns = 1024

// Defaults of the bounds on a grant's patterns: the same as a
// subscription's (the server's MAX_SUBSCRIPTION_KEYS and MAX_KEY_LENGTH),
// since a grant's globs are tested record by record as a subscription's
// are.
const (
	DefaultMaxGrantGlobs    = 64
	DefaultMaxPatternLength = 256
)

// maxKeysFile bounds the size of AUTH_API_KEYS_FILE.
const maxKeysFile = 4 << 20

// limits bound the patterns of one grant.
type limits struct {
	globs  int // patterns with '*' or '?'
	length int // bytes of one pattern
}

func (l limits) orDefaults() limits {
	if l.globs <= 0 {
		l.globs = DefaultMaxGrantGlobs
	}
	if l.length <= 0 {
		l.length = DefaultMaxPatternLength
	}
	return l
}

// check reports what makes patterns (distinct, as grantOf leaves them)
// too costly to route: more than MaxGrantPatterns, more globs than
// l.globs, or a pattern longer than l.length.
func (l limits) check(patterns []string) error {
	if len(patterns) > MaxGrantPatterns {
		return fmt.Errorf("%d patterns, at most %d", len(patterns), MaxGrantPatterns)
	}
	globs := 0
	for _, p := range patterns {
		if len(p) > l.length {
			return fmt.Errorf("a pattern of %d bytes, at most %d", len(p), l.length)
		}
		if strings.ContainsAny(p, "*?") {
			globs++
		}
	}
	if globs > l.globs {
		return fmt.Errorf("%d patterns with * or ?, at most %d", globs, l.globs)
	}
	return nil
}

// apiKey is one configured API key: only its digest is kept.
type apiKey struct {
	digest  digest
	grant   Grant
	id      string       // the key's name in log lines (keyIDs)
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

// keyIDs names API keys in log lines: "key:" and 8 hex digits of an
// HMAC-SHA256 of the key's digest, under a secret drawn at random for each
// Authenticator, so that a name in a log is no oracle against a guessed
// key (as a bare hash of a low-entropy key would be). A key keeps its name
// for the life of the process. Immutable.
type keyIDs struct{ secret [32]byte }

func newKeyIDs() keyIDs {
	var n keyIDs
	rand.Read(n.secret[:]) // never fails (crypto/rand)
	return n
}

func (n keyIDs) of(d digest) string {
	m := hmac.New(sha256.New, n.secret[:])
	m.Write(d[:])
	return "key:" + hex.EncodeToString(m.Sum(nil)[:4])
}

func newKey(secret string, g Grant, revocable bool, ids keyIDs) *apiKey {
	k := &apiKey{digest: sha256.Sum256([]byte(secret)), grant: g}
	k.id = ids.of(k.digest)
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
// then whitespace-separated patterns it may read ("*" for every key; a key
// alone is an error, since a line cut short by a write in progress looks
// like that); '#' at the start of a line or after a blank starts a
// comment; blank lines are skipped; the last line ends in a newline (one
// that does not is a write in progress). Its errors name the line, never
// the key.
func parseKeysFile(b []byte, l limits, ids keyIDs) (keySet, error) {
	if len(b) > maxKeysFile {
		return nil, fmt.Errorf("larger than %d bytes", maxKeysFile)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		return nil, errors.New("the last line does not end in a newline (a write in progress? replace the file by rename)")
	}
	set := make(keySet)
	for n, line := range bytes.Split(b, []byte("\n")) {
		fields := strings.Fields(stripComment(string(line)))
		if len(fields) == 0 {
			continue
		}
		key, patterns := fields[0], fields[1:]
		if len(patterns) == 0 {
			return nil, fmt.Errorf("line %d: a key without patterns (write * to grant every key)", n+1)
		}
		if strings.ContainsFunc(key, isControl) {
			return nil, fmt.Errorf("line %d: the key holds a control character", n+1)
		}
		for _, p := range patterns {
			if strings.ContainsFunc(p, isControl) {
				return nil, fmt.Errorf("line %d: a pattern holds a control character", n+1)
			}
		}
		g := grantOf(slices.Clone(patterns))
		if err := l.check(g.Keys); err != nil {
			return nil, fmt.Errorf("line %d: %w", n+1, err)
		}
		k := newKey(key, g, true, ids)
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

// sameGrant reports whether two grants are equal: their patterns are
// sorted and distinct (grantOf), so equal sets compare equal whatever
// order the file lists them in.
func sameGrant(a, b Grant) bool { return a.All == b.All && slices.Equal(a.Keys, b.Keys) }

// keysFile is AUTH_API_KEYS_FILE as last read. Owned by the goroutine
// that polls it (Authenticator.Run); set is read by every request.
type keysFile struct {
	path   string
	limits limits
	ids    keyIDs
	set    atomic.Pointer[keySet]

	// Owned by the polling goroutine.
	seen [sha256.Size]byte // digest of the contents last read, good or bad
}

// load reads the file; it is used at start, when a bad file is an error.
func (f *keysFile) load() error {
	b, err := readBounded(f.path)
	if err != nil {
		return fmt.Errorf("read keys file: %w", err)
	}
	set, err := parseKeysFile(b, f.limits, f.ids)
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
	b, err := readBounded(f.path)
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
	set, err := parseKeysFile(b, f.limits, f.ids)
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

// readBounded reads at most one byte more than maxKeysFile of the file at
// path, so that parseKeysFile refuses a larger one without it being read
// whole.
func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxKeysFile+1))
}
