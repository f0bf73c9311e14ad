// Package web is wsdest's live viewer and its JavaScript client: one HTML
// page, its script and style, the client module (static/client.js, with
// its types in client.d.ts) that the page and any dashboard import to
// stream, reconnect and resume, and the vendored chart library uPlot
// (static/uplot: the dist files of the npm package at the version in
// static/uplot/VERSION, with its MIT LICENSE), all embedded in the binary.
// There is no build step, and the page fetches nothing from anywhere but
// the wsdest that served it.
//
// The page works out its subscription from its own URL (the same paths and
// query as a WebSocket client: /, /{key}, /ws/{key}, ?key=, ?envelope=,
// ?last=, ?from=, ?token=), so the server serves the same bytes for every
// path; internal/server decides which requests get it.
//
// Everything here is read-only after New and safe for concurrent use.
package web

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed static
var static embed.FS

// AssetPrefix is the URL path under which Handler serves the assets; the
// page refers to them by these absolute paths.
const AssetPrefix = "/_wsdest/"

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
	public      bool // served to pages of any origin (CORS)
}

// publicAssets are the files that pages of other origins load: the
// JavaScript client, which a dashboard anywhere imports as an ES module
// (a cross-origin module is fetched with CORS), and its types. They hold
// no secret and are sent with Access-Control-Allow-Origin: *.
var publicAssets = map[string]bool{"client.js": true, "client.d.ts": true}

// contentTypes fixes the types of the page's own kinds of file, so that
// they do not depend on the host's mime.types (which may call .js
// application/javascript, or .ts an MPEG stream).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".d.ts": "application/typescript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// contentType is the Content-Type of the embedded file name.
func contentType(name string) string {
	if strings.HasSuffix(name, ".d.ts") {
		return contentTypes[".d.ts"]
	}
	if ct, ok := contentTypes[path.Ext(name)]; ok {
		return ct
	}
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		return ct
	}
	return "text/plain; charset=utf-8" // LICENSE, VERSION
}

// Viewer serves the page and its assets.
type Viewer struct {
	page   asset
	assets map[string]asset // by name under static/, e.g. "viewer.js"
}

// New loads the embedded files. It fails only if the binary was built
// without them, which the package's tests rule out.
func New() (*Viewer, error) {
	v := &Viewer{assets: make(map[string]asset)}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "static/")
		sum := sha256.Sum256(b)
		a := asset{body: b, contentType: contentType(name), etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
			public: publicAssets[name]}
		if name == "index.html" {
			v.page = a
		} else {
			v.assets[name] = a
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: load embedded files: %w", err)
	}
	if v.page.body == nil {
		return nil, fmt.Errorf("web: index.html is not embedded")
	}
	return v, nil
}

// securityHeaders are sent with every answer. The policy lets the page
// load only its own assets and connect only back to the server that
// served it (ws: and wss: to the same host count as 'self'); no-referrer
// keeps a ?token= in the page URL from leaking to any link target.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// ServePage answers with the viewer page. It is never cached: the page
// may carry a token in its URL, and a new binary may bring a new page.
func (v *Viewer) ServePage(w http.ResponseWriter, r *http.Request) {
	v.ServePageStatus(w, r, http.StatusOK)
}

// ServePageStatus is ServePage with another status, such as 401 with a
// challenge the caller has set.
func (v *Viewer) ServePageStatus(w http.ResponseWriter, r *http.Request, status int) {
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", v.page.contentType)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(v.page.body)
}

// ServeAsset answers a GET for AssetPrefix+name: 404 for a name that is
// not embedded, 304 when the client already has this version (ETag).
func (v *Viewer) ServeAsset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, AssetPrefix)
	a, ok := v.assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache") // revalidate: cheap with the ETag
	if a.public {
		h.Set("Access-Control-Allow-Origin", "*")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && strings.Contains(match, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(a.body)
}
