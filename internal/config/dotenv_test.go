package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDotEnv(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"comments and blanks", "# comment\n\n   # indented comment\nA=1\n", map[string]string{"A": "1"}},
		{"bare value trimmed", "A =  hello world  \n", map[string]string{"A": "hello world"}},
		{"inline comment", "A=value # comment\nB=a#b\n", map[string]string{"A": "value", "B": "a#b"}},
		{"export prefix", "export A=1\nexport\tB=2\nexported=3\n", map[string]string{"A": "1", "B": "2", "exported": "3"}},
		{"double quoted", `A="a \"q\" b\n\\ \$x # not a comment" # comment`, map[string]string{"A": "a \"q\" b\n\\ $x # not a comment"}},
		{"single quoted literal", `A='a \n "b" # c'`, map[string]string{"A": `a \n "b" # c`}},
		{"empty values", "A=\nB=\"\"\nC=''\n", map[string]string{"A": "", "B": "", "C": ""}},
		{"equals in value", "URL=https://x/?a=b&c=d\n", map[string]string{"URL": "https://x/?a=b&c=d"}},
		{"later wins", "A=1\nA=2\n", map[string]string{"A": "2"}},
		{"crlf", "A=1\r\nB=\"2\"\r\n", map[string]string{"A": "1", "B": "2"}},
		{"bom", "\uFEFFA=1\n", map[string]string{"A": "1"}},
		{"quix names", "Quix__Sdk__Token=tok\nQuix__Portal__Api=https://p\n", map[string]string{"Quix__Sdk__Token": "tok", "Quix__Portal__Api": "https://p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadDotEnv(writeFile(t, tt.content))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadDotEnvErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // suffix after "config: <path> "
	}{
		{"no equals", "A=1\nsup3rsecret\n", "line 2: missing '=' (want KEY=VALUE)"},
		{"bad key", "MY KEY=sup3rsecret\n", "line 1: bad variable name (want letters, digits, '_' or '.', not starting with a digit)"},
		{"digit key", "1A=sup3rsecret\n", "line 1: bad variable name (want letters, digits, '_' or '.', not starting with a digit)"},
		{"empty key", "=sup3rsecret\n", "line 1: bad variable name (want letters, digits, '_' or '.', not starting with a digit)"},
		{"unterminated double", "A=\"sup3rsecret\n", "line 1: A has an unterminated double quote"},
		{"unterminated single", "\nA='sup3rsecret\n", "line 2: A has an unterminated single quote"},
		{"text after quote", "A=\"x\"sup3rsecret\n", "line 1: A has text after the closing quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, tt.content)
			_, err := LoadDotEnv(path)
			if err == nil {
				t.Fatal("want an error")
			}
			if want := "config: " + path + " " + tt.want; err.Error() != want {
				t.Errorf("got  %s\nwant %s", err, want)
			}
			if strings.Contains(err.Error(), "sup3rsecret") {
				t.Errorf("error %q echoes the line", err)
			}
		})
	}
}

func TestLoadDotEnvMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.env")
	if _, err := LoadDotEnv(path); err == nil || !strings.Contains(err.Error(), path+" does not exist") {
		t.Errorf("LoadDotEnv of a missing file: err = %v, want one naming the file", err)
	}
	got, found, err := LoadDotEnvIfExists(path)
	if err != nil || found || len(got) != 0 {
		t.Errorf("LoadDotEnvIfExists of a missing file = %v, %v, %v; want empty, false, nil", got, found, err)
	}
	got, found, err = LoadDotEnvIfExists(writeFile(t, "PORT=1\n"))
	if err != nil || !found || got["PORT"] != "1" {
		t.Errorf("LoadDotEnvIfExists of a file = %v, %v, %v; want PORT=1, true, nil", got, found, err)
	}
	if _, found, err := LoadDotEnvIfExists(writeFile(t, "no equals\n")); err == nil || found {
		t.Errorf("LoadDotEnvIfExists of a bad file = found %v, err %v; want an error", found, err)
	}
}

func TestLoadDotEnvUnreadable(t *testing.T) {
	// A directory cannot be read as a file; that error must surface.
	if _, err := LoadDotEnv(t.TempDir()); err == nil {
		t.Fatal("want an error reading a directory")
	}
}

func TestLookupPrecedence(t *testing.T) {
	dot, err := LoadDotEnv(writeFile(t, "PORT=9001\nHOST=10.0.0.1\nLOG_LEVEL=debug\nFORMAT=raw\n"))
	if err != nil {
		t.Fatal(err)
	}
	osEnv := map[string]string{
		"PORT":   "9002", // the environment wins
		"FORMAT": "",     // present but empty in the environment: still wins, so the default applies
	}
	lookup := Lookup(dot, envOf(osEnv))

	tests := []struct {
		name   string
		want   string
		wantOK bool
	}{
		{"PORT", "9002", true},
		{"HOST", "10.0.0.1", true},
		{"FORMAT", "", true},
		{"MISSING", "", false},
	}
	for _, tt := range tests {
		if v, ok := lookup(tt.name); v != tt.want || ok != tt.wantOK {
			t.Errorf("lookup(%s) = %q, %v; want %q, %v", tt.name, v, ok, tt.want, tt.wantOK)
		}
	}

	c, err := FromEnv(lookup)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 9002 || c.Server.Host != "10.0.0.1" || c.Log.Level.String() != "DEBUG" || c.Decode.Format != FormatAuto {
		t.Errorf("got port %d host %q level %v format %q", c.Server.Port, c.Server.Host, c.Log.Level, c.Decode.Format)
	}
}
