package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/wsdest/wsdest/internal/boolval"
)

// parser reads variables through lookup and collects every problem, so that
// one start-up attempt reports all of them.
type parser struct {
	lookup   func(string) (string, bool)
	problems []string
	failed   map[string]bool // variables with a problem, to avoid follow-on errors
	warnings []string
}

// fail records a problem. The format's first argument must be the name of
// the variable at fault.
func (p *parser) fail(format string, args ...any) {
	if p.failed == nil {
		p.failed = make(map[string]bool)
	}
	if len(args) > 0 {
		if name, ok := args[0].(string); ok {
			p.failed[name] = true
		}
	}
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

func (p *parser) failedAny(names ...string) bool {
	for _, n := range names {
		if p.failed[n] {
			return true
		}
	}
	return false
}

func (p *parser) warn(msg string) { p.warnings = append(p.warnings, msg) }

// get returns the trimmed value of name; a blank value counts as unset.
func (p *parser) get(name string) (string, bool) {
	v, ok := p.lookup(name)
	if !ok {
		return "", false
	}
	v = strings.TrimSpace(v)
	return v, v != ""
}

// secret returns the value of name untrimmed, since blanks may be part of a
// password; an all-blank value still counts as unset.
func (p *parser) secret(name string) (string, bool) {
	v, ok := p.lookup(name)
	if !ok || strings.TrimSpace(v) == "" {
		return "", false
	}
	return v, true
}

func (p *parser) str(name string) string {
	v, _ := p.get(name)
	return v
}

// optBoolean parses a boolean and reports whether it was set.
func (p *parser) optBoolean(name string) (val, set bool) {
	v, ok := p.get(name)
	if !ok {
		return false, false
	}
	b, err := boolval.Parse(v)
	if err != nil {
		p.fail("%s: %s is not a boolean (want %s)", name, quote(v), boolval.Want)
		return false, false
	}
	return b, true
}

func (p *parser) boolean(name string, def bool) bool {
	v, set := p.optBoolean(name)
	if !set {
		return def
	}
	return v
}

func (p *parser) port(name string, def int) int {
	v, ok := p.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 65535 {
		p.fail("%s: %s is not a port number (want 0-65535)", name, quote(v))
		return def
	}
	return n
}

// integer parses a whole number that must be at least min.
func (p *parser) integer(name string, def, min int) int {
	v, ok := p.get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail("%s: %s is not a whole number", name, quote(v))
		return def
	}
	if n < min {
		p.fail("%s: %s is too small (want at least %d)", name, quote(v), min)
		return def
	}
	return n
}

// duration parses a Go duration that must be greater than zero; def is
// what an unset variable gives, and the example in an error.
func (p *parser) duration(name string, def time.Duration) time.Duration {
	return p.durationExample(name, def, def)
}

// durationOr0 is duration for a setting whose unset value is 0 (the
// default of the part that applies it, or no bound); example goes into
// errors.
func (p *parser) durationOr0(name string, example time.Duration) time.Duration {
	return p.durationExample(name, 0, example)
}

func (p *parser) durationExample(name string, def, example time.Duration) time.Duration {
	v, ok := p.get(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail("%s: %s is not a duration (want a Go duration such as %s)", name, quote(v), example)
		return def
	}
	if d <= 0 {
		p.fail("%s: %s is not positive (want a duration greater than 0, such as %s)", name, quote(v), example)
		return def
	}
	return d
}

// enum parses one of allowed, case-insensitively. what completes the
// sentence `"x" is not ...`.
func (p *parser) enum(name, def, what string, allowed ...string) string {
	v, ok := p.get(name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	p.fail("%s: %s is not %s (want %s)", name, quote(v), what, strings.Join(allowed, " or "))
	return def
}

// byteSize parses a byte count such as 4096, 64KiB or 4 MB that must be at
// least min.
func (p *parser) byteSize(name string, def, min int) int {
	v, ok := p.get(name)
	if !ok {
		return def
	}
	n, ok := parseByteSize(v)
	if !ok {
		p.fail("%s: %s is not a byte size (want an integer with an optional KiB, MiB, GiB, KB, MB or GB suffix, e.g. 4MiB)", name, quote(v))
		return def
	}
	if n < int64(min) {
		p.fail("%s: %s is too small (want at least %d)", name, quote(v), min)
		return def
	}
	return int(n)
}

func parseByteSize(s string) (int64, bool) {
	// IEC units are powers of 1024, SI units powers of 1000. Longer
	// suffixes come first so that "kib" is not read as "b".
	units := [...]struct {
		suffix string
		mult   int64
	}{
		{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30},
		{"kb", 1e3}, {"mb", 1e6}, {"gb", 1e9},
		{"b", 1},
	}
	lower := strings.ToLower(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(lower, u.suffix) {
			lower = strings.TrimSpace(strings.TrimSuffix(lower, u.suffix))
			mult = u.mult
			break
		}
	}
	n, err := strconv.ParseInt(lower, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt/mult {
		return 0, false
	}
	return n * mult, true
}
