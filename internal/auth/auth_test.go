package auth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

func TestCheck(t *testing.T) {
	keysOnly := Config{APIKeys: []string{"key1", "key two", "secret_key_3"}}
	basicOnly := Config{Username: "alice", Password: "s3cret pw"}
	both := Config{APIKeys: []string{"key1"}, Username: "alice", Password: "s3cret pw"}

	type req struct {
		query  string // raw query
		header string // Authorization
		basic  []string
	}
	tests := []struct {
		name  string
		creds Config
		req   req
		want  bool
	}{
		{"query token", keysOnly, req{query: "token=key1"}, true},
		{"query token second key", keysOnly, req{query: "token=secret_key_3"}, true},
		{"query token with space", keysOnly, req{query: "token=" + url.QueryEscape("key two")}, true},
		{"query token with other params", keysOnly, req{query: "shape=envelope&token=key1&x=1"}, true},
		{"bearer", keysOnly, req{header: "Bearer key1"}, true},
		{"bearer lower case scheme", keysOnly, req{header: "bearer key1"}, true},
		{"bearer key with space", keysOnly, req{header: "Bearer key two"}, true},
		{"bearer extra blanks", keysOnly, req{header: "Bearer   key1  "}, true},
		{"basic", basicOnly, req{basic: []string{"alice", "s3cret pw"}}, true},
		{"basic with keys too", both, req{basic: []string{"alice", "s3cret pw"}}, true},
		{"token with basic configured too", both, req{query: "token=key1"}, true},
		{"wrong token but valid bearer", keysOnly, req{query: "token=nope", header: "Bearer key1"}, true},

		{"no credential", keysOnly, req{}, false},
		{"wrong token", keysOnly, req{query: "token=key3"}, false},
		{"empty token", keysOnly, req{query: "token="}, false},
		{"token prefix of a key", keysOnly, req{query: "token=key"}, false},
		{"token extends a key", keysOnly, req{query: "token=key11"}, false},
		{"token case differs", keysOnly, req{query: "token=KEY1"}, false},
		{"half of a key with a space", keysOnly, req{query: "token=two"}, false},
		{"token param name differs", keysOnly, req{query: "Token=key1"}, false},
		{"wrong bearer", keysOnly, req{header: "Bearer key3"}, false},
		{"empty bearer", keysOnly, req{header: "Bearer "}, false},
		{"bare bearer", keysOnly, req{header: "Bearer"}, false},
		{"key without scheme", keysOnly, req{header: "key1"}, false},
		{"key in token scheme", keysOnly, req{header: "Token key1"}, false},
		{"key in basic scheme", keysOnly, req{header: "Basic key1"}, false},
		{"key as basic password", keysOnly, req{basic: []string{"x", "key1"}}, false},
		{"key as basic user", keysOnly, req{basic: []string{"key1", ""}}, false},
		{"basic when none configured", keysOnly, req{basic: []string{"", ""}}, false},
		{"wrong password", basicOnly, req{basic: []string{"alice", "wrong"}}, false},
		{"password prefix", basicOnly, req{basic: []string{"alice", "s3cret"}}, false},
		{"wrong user", basicOnly, req{basic: []string{"bob", "s3cret pw"}}, false},
		{"username only", basicOnly, req{basic: []string{"alice", ""}}, false},
		{"password only", basicOnly, req{basic: []string{"", "s3cret pw"}}, false},
		{"password as token", basicOnly, req{query: "token=" + url.QueryEscape("s3cret pw")}, false},
		{"password as bearer", basicOnly, req{header: "Bearer s3cret pw"}, false},
		{"malformed basic", basicOnly, req{header: "Basic !!!"}, false},
		{"nothing configured, token", Config{}, req{query: "token="}, false},
		{"nothing configured, basic", Config{}, req{basic: []string{"", ""}}, false},
		{"empty key configured", Config{APIKeys: []string{""}}, req{query: "token="}, false},
		{"empty key configured, bearer", Config{APIKeys: []string{""}}, req{header: "Bearer "}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := mustNew(t, tt.creds)
			r := httptest.NewRequest(http.MethodGet, "/ws?"+tt.req.query, nil)
			if tt.req.header != "" {
				r.Header.Set("Authorization", tt.req.header)
			}
			if tt.req.basic != nil {
				r.SetBasicAuth(tt.req.basic[0], tt.req.basic[1])
			}
			if got := accepts(a, r); got != tt.want {
				t.Errorf("accepted = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBasicConfigured(t *testing.T) {
	if mustNew(t, Config{APIKeys: []string{"k"}}).BasicConfigured() {
		t.Error("keys only: BasicConfigured = true")
	}
	if !mustNew(t, Config{Username: "u", Password: "p"}).BasicConfigured() {
		t.Error("user and password: BasicConfigured = false")
	}
}

// TestNewCopiesKeys checks that changing the caller's slice after New does
// not change what is accepted.
func TestNewCopiesKeys(t *testing.T) {
	keys := []string{"key1"}
	a := mustNew(t, Config{APIKeys: keys})
	keys[0] = "other"
	if !accepts(a, httptest.NewRequest(http.MethodGet, "/ws?token=key1", nil)) {
		t.Error("key1 rejected after the caller's slice changed")
	}
}

func TestCheckConcurrent(t *testing.T) {
	a := mustNew(t, Config{APIKeys: []string{"k1", "k2"}, Username: "u", Password: "p"})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 100 {
				r := httptest.NewRequest(http.MethodGet, "/ws?token=k2", nil)
				if i%2 == 1 {
					r = httptest.NewRequest(http.MethodGet, "/ws", nil)
					r.SetBasicAuth("u", "p")
				}
				if !accepts(a, r) {
					t.Error("valid credential rejected")
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkCheck(b *testing.B) {
	keys := make([]string, 16)
	for i := range keys {
		keys[i] = "key-" + string(rune('a'+i)) + "-0123456789abcdef"
	}
	a := mustNew(b, Config{APIKeys: keys})
	r := httptest.NewRequest(http.MethodGet, "/ws?token="+keys[15], nil)
	b.ReportAllocs()
	for b.Loop() {
		if !accepts(a, r) {
			b.Fatal("rejected")
		}
	}
}

func mustNew(t testing.TB, c Config) *Authenticator {
	t.Helper()
	a, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// accepts reports whether a accepts r.
func accepts(a *Authenticator, r *http.Request) bool {
	_, err := a.Authorize(r, AmbientAllowed)
	return err == nil
}

// The cookie and Basic credentials count only when the caller allows
// ambient credentials; refused, they are counted as cross_origin. The
// query token counts either way.
func TestAmbientCredentials(t *testing.T) {
	a := mustNew(t, Config{APIKeys: []string{"key-1"}, Username: "u", Password: "p"})
	cookie := httptest.NewRequest(http.MethodGet, "/ws", nil)
	cookie.AddCookie(&http.Cookie{Name: CookieName, Value: "key-1"})
	basic := httptest.NewRequest(http.MethodGet, "/ws", nil)
	basic.SetBasicAuth("u", "p")
	query := httptest.NewRequest(http.MethodGet, "/ws?token=key-1", nil)
	for _, r := range []*http.Request{cookie, basic, query} {
		if _, err := a.Authorize(r, AmbientAllowed); err != nil {
			t.Errorf("%v allowed: %v", r.Header, err)
		}
	}
	for _, r := range []*http.Request{cookie, basic} {
		if _, err := a.Authorize(r, AmbientRefused); err == nil || err.(*Error).Reason != ReasonCrossOrigin {
			t.Errorf("%v refused: %v, want %s", r.Header, err, ReasonCrossOrigin)
		}
	}
	if _, err := a.Authorize(query, AmbientRefused); err != nil {
		t.Errorf("query token from a foreign origin: %v", err)
	}
	if got := a.Refusals()[ReasonCrossOrigin]; got != 2 {
		t.Errorf("cross_origin refusals %d, want 2", got)
	}
}
