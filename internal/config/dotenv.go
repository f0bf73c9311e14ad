package config

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// LoadDotEnv reads a .env file of KEY=VALUE lines. Blank lines and lines
// starting with # are skipped; a line may start with "export "; a value may
// be single-quoted (taken literally), double-quoted (with \n, \t, \", \\ and
// \$ escapes) or bare (trimmed, and cut at " #" which starts a comment). A
// later line overrides an earlier one for the same key.
//
// A missing file is an error (it was named on purpose: wsdest -env-file);
// use LoadDotEnvIfExists for the implicit ./.env. Errors name the file and
// line but never echo the line, which may hold a secret.
func LoadDotEnv(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("config: env file %s does not exist", path)
	}
	if err != nil {
		return nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	return dotEnvOf(path, data)
}

// LoadDotEnvIfExists is LoadDotEnv for a file that may be absent (the
// .env in the working directory): a missing file gives an empty result and
// found false.
func LoadDotEnvIfExists(path string) (env map[string]string, found bool, err error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("config: read %s: %w", path, err)
	}
	env, err = dotEnvOf(path, data)
	return env, err == nil, err
}

func dotEnvOf(path string, data []byte) (map[string]string, error) {
	env, err := parseDotEnv(data)
	if err != nil {
		return nil, fmt.Errorf("config: %s %w", path, err)
	}
	return env, nil
}

// Lookup returns a lookup function for FromEnv that reads the real
// environment through osLookup (normally os.LookupEnv) and falls back to
// dotenv. A variable present in the environment wins over .env even when it
// is empty there, so the environment can always override the file.
func Lookup(dotenv map[string]string, osLookup func(string) (string, bool)) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v, ok := osLookup(name); ok {
			return v, true
		}
		v, ok := dotenv[name]
		return v, ok
	}
}

func parseDotEnv(data []byte) (map[string]string, error) {
	env := make(map[string]string)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		if line == "" || line[0] == '#' {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "export"); ok && rest != "" && (rest[0] == ' ' || rest[0] == '\t') {
			line = strings.TrimSpace(rest)
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: missing '=' (want KEY=VALUE)", n)
		}
		key = strings.TrimSpace(key)
		if !validKey(key) {
			return nil, fmt.Errorf("line %d: bad variable name (want letters, digits, '_' or '.', not starting with a digit)", n)
		}
		v, err := parseValue(strings.TrimSpace(value))
		if err != nil {
			return nil, fmt.Errorf("line %d: %s %w", n, key, err)
		}
		env[key] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	return env, nil
}

func validKey(k string) bool {
	if k == "" || (k[0] >= '0' && k[0] <= '9') {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// parseValue decodes the text after '='. Errors never include the value.
func parseValue(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	switch s[0] {
	case '\'':
		end := strings.IndexByte(s[1:], '\'')
		if end < 0 {
			return "", errors.New("has an unterminated single quote")
		}
		if err := checkTrailer(s[end+2:]); err != nil {
			return "", err
		}
		return s[1 : end+1], nil
	case '"':
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			c := s[i]
			switch {
			case c == '"':
				if err := checkTrailer(s[i+1:]); err != nil {
					return "", err
				}
				return b.String(), nil
			case c == '\\' && i+1 < len(s):
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				case 't':
					b.WriteByte('\t')
				case 'r':
					b.WriteByte('\r')
				case '"', '\\', '$', '\'':
					b.WriteByte(s[i])
				default:
					b.WriteByte('\\')
					b.WriteByte(s[i])
				}
			default:
				b.WriteByte(c)
			}
		}
		return "", errors.New("has an unterminated double quote")
	}
	for i := 1; i < len(s); i++ {
		if s[i] == '#' && (s[i-1] == ' ' || s[i-1] == '\t') {
			s = s[:i]
			break
		}
	}
	return strings.TrimSpace(s), nil
}

// checkTrailer accepts what may follow a closing quote: blanks and an
// optional comment.
func checkTrailer(s string) error {
	s = strings.TrimSpace(s)
	if s == "" || s[0] == '#' {
		return nil
	}
	return errors.New("has text after the closing quote")
}
