package wsdest_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// docFiles are the Markdown files whose links TestDocLinks checks.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{"README.md", "CHANGELOG.md"}, files...)
}

var (
	mdLink    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdHeading = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	slugDrop  = regexp.MustCompile(`[^\p{L}\p{N}\s_-]`)
)

// slug is GitHub's anchor for a heading: lower case, punctuation dropped,
// each space a hyphen.
func slug(heading string) string {
	s := slugDrop.ReplaceAllString(strings.ToLower(heading), "")
	return strings.ReplaceAll(s, " ", "-")
}

// prose returns the lines of a Markdown file outside fenced code blocks.
func prose(text string) []string {
	var out []string
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out = append(out, line)
		}
	}
	return out
}

// anchors returns the anchors of a Markdown file's headings, numbered as
// GitHub numbers repeated ones (-1, -2, ...).
func anchors(text string) map[string]bool {
	have := map[string]bool{}
	seen := map[string]int{}
	for _, line := range prose(text) {
		m := mdHeading.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a := slug(m[1])
		if n := seen[a]; n > 0 {
			have[a+"-"+strconv.Itoa(n)] = true
		} else {
			have[a] = true
		}
		seen[a]++
	}
	return have
}

// brokenLinks returns every relative link of the Markdown file at path
// (outside code blocks) whose file does not exist or whose #anchor is no
// heading of that file.
func brokenLinks(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var broken []string
	for _, line := range prose(string(b)) {
		for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, anchor, _ := strings.Cut(target, "#")
			dest := path
			if file != "" {
				dest = filepath.Join(filepath.Dir(path), file)
				if _, err := os.Stat(dest); err != nil {
					broken = append(broken, target+": no such file")
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(dest, ".md") {
				broken = append(broken, target+": an anchor into a file that is not Markdown")
				continue
			}
			text, err := os.ReadFile(dest)
			if err != nil {
				return nil, err
			}
			if !anchors(string(text))[anchor] {
				broken = append(broken, target+": no such heading")
			}
		}
	}
	return broken, nil
}

// TestDocLinks: every relative link and #anchor in README.md, CHANGELOG.md
// and docs/*.md resolves.
func TestDocLinks(t *testing.T) {
	for _, f := range docFiles(t) {
		broken, err := brokenLinks(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range broken {
			t.Errorf("%s: broken link %s", f, b)
		}
	}
}

// TestDocLinksCheck: the link check itself finds a missing file, a
// missing heading and a repeated heading's numbered anchor.
func TestDocLinksCheck(t *testing.T) {
	dir := t.TempDir()
	md := "# Top\n\n## Close codes and HTTP refusals\n\n## Twice\n\n## Twice\n\n" +
		"[a](#top) [b](#close-codes-and-http-refusals) [c](#twice-1) [d](other.md#x)\n" +
		"[e](#nowhere) [f](missing.md) [g](other.md#y) [h](https://example.com/#z)\n" +
		"```\n[i](#inside-code)\n```\n"
	if err := os.WriteFile(filepath.Join(dir, "a.md"), []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other.md"), []byte("### `X`\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	broken, err := brokenLinks(filepath.Join(dir, "a.md"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"#nowhere: no such heading", "missing.md: no such file", "other.md#y: no such heading"}
	if strings.Join(broken, "\n") != strings.Join(want, "\n") {
		t.Errorf("broken links:\n%s\nwant:\n%s", strings.Join(broken, "\n"), strings.Join(want, "\n"))
	}
}

// closeRow is one row of docs/protocol.md's table of close codes and
// refusals: its code (a WebSocket status or an HTTP status) and reason.
type closeRow struct{ code, reason string }

// closeTable reads the table under the heading "Close codes and HTTP
// refusals" in docs/protocol.md.
func closeTable(t *testing.T) []closeRow {
	t.Helper()
	b, err := os.ReadFile("docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []closeRow
	in := false
	for _, line := range prose(string(b)) {
		if m := mdHeading.FindStringSubmatch(line); m != nil {
			in = slug(m[1]) == "close-codes-and-http-refusals"
			continue
		}
		if !in || !strings.HasPrefix(line, "|") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		code := strings.TrimSpace(cells[1])
		if _, err := strconv.Atoi(code); err != nil {
			continue // the head and its rule
		}
		rows = append(rows, closeRow{code, strings.TrimSpace(cells[2])})
	}
	if len(rows) == 0 {
		t.Fatal("docs/protocol.md: no table under a heading \"Close codes and HTTP refusals\"")
	}
	return rows
}

// goFiles parses every non-test Go file of the module.
func goFiles(t *testing.T) (*token.FileSet, []*ast.File) {
	t.Helper()
	fset := token.NewFileSet()
	var files []*ast.File
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fset, files
}

// wsframeConsts returns the string or integer value of every constant of
// package wsframe, by name.
func wsframeConsts(t *testing.T) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := filepath.Glob("internal/wsframe/*.go")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]string{}
	for _, path := range pkgs {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok {
							v := lit.Value
							if u, err := strconv.Unquote(v); err == nil {
								v = u
							}
							consts[n.Name] = v
						}
					}
				}
			}
		}
	}
	return consts
}

// constName returns the name of a wsframe constant an expression refers
// to (wsframe.X, or X inside package wsframe).
func constName(e ast.Expr, inWsframe bool) string {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		if x, ok := e.X.(*ast.Ident); ok && x.Name == "wsframe" {
			return e.Sel.Name
		}
	case *ast.Ident:
		if inWsframe {
			return e.Name
		}
	}
	return ""
}

// TestCloseCodeTable: every close frame the code sends (a wsframe Close*
// code followed by its reason, in a call, a composite literal or an
// assignment) and every HTTP status the server refuses a request with has
// a row in docs/protocol.md's table; reasons are wsframe constants, never
// inline strings; and every wsframe Reason* constant is sent somewhere.
func TestCloseCodeTable(t *testing.T) {
	consts := wsframeConsts(t)
	rows := closeTable(t)
	hasRow := func(code, reason string) bool {
		for _, r := range rows {
			if r.code != code {
				continue
			}
			if reason == "" && (r.reason == "" || r.reason == "(none)") ||
				reason != "" && strings.Contains(r.reason, "`"+reason+"`") {
				return true
			}
		}
		return false
	}
	fset, files := goFiles(t)
	used := map[string]bool{}
	// pair checks one code-then-reason pair of expressions.
	pair := func(codeExpr, reasonExpr ast.Expr, inWsframe bool) {
		cn := constName(codeExpr, inWsframe)
		if !strings.HasPrefix(cn, "Close") || cn == "CloseNoStatus" || consts[cn] == "" {
			return // not a code, or 1005: what a peer's close without a code is reported as
		}
		code := consts[cn]
		pos := fset.Position(reasonExpr.Pos())
		switch r := reasonExpr.(type) {
		case *ast.BasicLit:
			s, _ := strconv.Unquote(r.Value)
			if s != "" {
				t.Errorf("%s: close reason %q written inline: declare it in internal/wsframe/reasons.go", pos, s)
				return
			}
			if !hasRow(code, "") {
				t.Errorf("%s: close %s without a reason has no row in docs/protocol.md", pos, code)
			}
		default:
			rn := constName(reasonExpr, inWsframe)
			if !strings.HasPrefix(rn, "Reason") {
				return // a reason passed through (a ProtocolError's)
			}
			used[rn] = true
			if !hasRow(code, consts[rn]) {
				t.Errorf("%s: close %s %q has no row in docs/protocol.md", pos, code, consts[rn])
			}
		}
	}
	pairs := func(list []ast.Expr, inWsframe bool) {
		for i := 0; i+1 < len(list); i++ {
			pair(list[i], list[i+1], inWsframe)
		}
	}
	statuses := map[string]bool{}
	for _, f := range files {
		inWsframe := f.Name.Name == "wsframe"
		inServer := strings.Contains(filepath.ToSlash(fset.Position(f.Pos()).Filename), "internal/server/")
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				pairs(n.Args, inWsframe)
				if inServer {
					if s, ok := n.Fun.(*ast.SelectorExpr); ok && s.Sel.Name == "NotFound" {
						if x, ok := s.X.(*ast.Ident); ok && x.Name == "http" {
							statuses["404"] = true
						}
					}
				}
			case *ast.CompositeLit:
				pairs(n.Elts, inWsframe)
			case *ast.AssignStmt:
				pairs(n.Rhs, inWsframe)
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && inServer && x.Name == "http" && strings.HasPrefix(n.Sel.Name, "Status") {
					code, ok := httpStatus[n.Sel.Name]
					if !ok {
						t.Errorf("%s: http.%s: add it to httpStatus in docs_test.go", fset.Position(n.Pos()), n.Sel.Name)
					} else if code != "" {
						statuses[code] = true
					}
				}
			}
			return true
		})
	}
	for name, v := range consts {
		if strings.HasPrefix(name, "Reason") && !used[name] {
			t.Errorf("wsframe.%s (%q) is never sent with a close code", name, v)
		}
	}
	// The WebSocket handshake library refuses bad upgrades itself.
	for _, code := range []string{"400", "405", "426", "505"} {
		statuses[code] = true
	}
	for code := range statuses {
		found := false
		for _, r := range rows {
			found = found || r.code == code
		}
		if !found {
			t.Errorf("HTTP %s, which internal/server answers, has no row in docs/protocol.md", code)
		}
	}
}

// httpStatus maps the net/http status constants internal/server uses to
// their codes; "" for answers that are not refusals.
var httpStatus = map[string]string{
	"StatusOK":                  "",
	"StatusNotModified":         "",
	"StatusBadRequest":          "400",
	"StatusUnauthorized":        "401",
	"StatusForbidden":           "403",
	"StatusNotFound":            "404",
	"StatusMethodNotAllowed":    "405",
	"StatusUpgradeRequired":     "426",
	"StatusTooManyRequests":     "429",
	"StatusInternalServerError": "500",
	"StatusServiceUnavailable":  "503",
}
