package web_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/wsdest/wsdest/internal/web"
)

// TestNothingFromElsewhere reads the page's own files: every asset they
// name is under /_wsdest/ and is served, and no URL points to another host.
func TestNothingFromElsewhere(t *testing.T) {
	v, err := web.New()
	if err != nil {
		t.Fatal(err)
	}
	page := httptest.NewRecorder()
	v.ServePage(page, httptest.NewRequest("GET", "/", nil))
	html := page.Body.String()
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(html, -1)
	if len(refs) < 4 {
		t.Fatalf("page names %d assets, want the script, style and chart library", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		if ref == "data:," { // the empty favicon: no request at all
			continue
		}
		if !strings.HasPrefix(ref, web.AssetPrefix) {
			t.Errorf("page refers to %q, outside %s", ref, web.AssetPrefix)
			continue
		}
		rec := httptest.NewRecorder()
		v.ServeAsset(rec, httptest.NewRequest("GET", ref, nil))
		if rec.Code != http.StatusOK {
			t.Errorf("GET %s = %d", ref, rec.Code)
		}
	}
	for _, name := range []string{"index.html", "viewer.js", "viewer.css", "client.js", "client.d.ts"} {
		b, err := os.ReadFile(filepath.Join("static", name))
		if err != nil {
			t.Fatal(err)
		}
		if u := regexp.MustCompile(`https?://[a-zA-Z0-9]`).Find(b); u != nil {
			t.Errorf("%s names an absolute URL (%s...): the page must fetch only from wsdest", name, u)
		}
		if regexp.MustCompile(`(localStorage|sessionStorage|document\.cookie)`).Match(b) {
			t.Errorf("%s uses web storage: secrets must stay in the tab's memory", name)
		}
	}
}

// TestUPlotVendored checks the vendored chart library is complete: its
// script, style, license and version file.
func TestUPlotVendored(t *testing.T) {
	for _, name := range []string{"uPlot.iife.min.js", "uPlot.min.css", "LICENSE", "VERSION"} {
		if fi, err := os.Stat(filepath.Join("static", "uplot", name)); err != nil || fi.Size() == 0 {
			t.Errorf("static/uplot/%s: %v", name, err)
		}
	}
	js, _ := os.ReadFile(filepath.Join("static", "uplot", "uPlot.iife.min.js"))
	ver, _ := os.ReadFile(filepath.Join("static", "uplot", "VERSION"))
	if v := strings.TrimSpace(string(ver)); !strings.Contains(string(js[:min(200, len(js))]), "(v"+v+")") {
		t.Errorf("VERSION says %q but the script's banner is %.80q", v, js)
	}
	lic, _ := os.ReadFile(filepath.Join("static", "uplot", "LICENSE"))
	if !strings.Contains(string(lic), "MIT License") {
		t.Errorf("static/uplot/LICENSE is not uPlot's MIT license")
	}
}

func TestAssetTypes(t *testing.T) {
	v, err := web.New()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", "": "text/plain; charset=utf-8",
		".ts": "application/typescript; charset=utf-8", // client.d.ts
	}
	err = fs.WalkDir(os.DirFS("static"), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == "index.html" {
			return err
		}
		rec := httptest.NewRecorder()
		v.ServeAsset(rec, httptest.NewRequest("GET", web.AssetPrefix+p, nil))
		if ct, ok := want[filepath.Ext(p)]; rec.Code != 200 || (ok && rec.Header().Get("Content-Type") != ct) {
			t.Errorf("%s: %d %q", p, rec.Code, rec.Header().Get("Content-Type"))
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
