package view

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/interpreter"
)

// Bounds of a request.
const (
	// MaxExprLen is the longest ?where= expression, in bytes.
	MaxExprLen = 1024
	// maxRecursion bounds the parser's nesting of an expression.
	maxRecursion = 32
	// maxComprehensionNesting bounds comprehensions (all, exists, map,
	// filter) within one another: two, as in
	// value.rows.exists(r, r.tags.exists(t, t == "x")).
	maxComprehensionNesting = 2
)

// The variables an expression reads.
const (
	varKey       = "key"
	varValue     = "value"
	varHeaders   = "headers"
	varTimestamp = "timestamp"
	varPartition = "partition"
	varOffset    = "offset"
)

// newEnv returns the CEL environment of filters: the record's variables,
// numeric comparisons across int and double (JSON numbers are doubles:
// value.temperature > 30 compares one with an int), the parser's limits,
// and the validator of what an evaluation may cost (checkCalls) and of
// comprehensions' nesting.
func newEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable(varKey, cel.StringType),
		cel.Variable(varValue, cel.DynType),
		cel.Variable(varHeaders, cel.MapType(cel.StringType, cel.StringType)),
		cel.Variable(varTimestamp, cel.TimestampType),
		cel.Variable(varPartition, cel.IntType),
		cel.Variable(varOffset, cel.IntType),
		cel.CrossTypeNumericComparisons(true),
		cel.ParserRecursionLimit(maxRecursion),
		cel.ParserExpressionSizeLimit(MaxExprLen),
		cel.EnableMacroCallTracking(), // so that an expression with macros prints back (canonicalWhere)
		cel.ASTValidators(
			cel.ValidateComprehensionNestingLimit(maxComprehensionNesting),
			callValidator{},
		),
	)
}

// filter is a compiled ?where= expression, shared by every view with the
// same expression.
type filter struct {
	expr    string // canonical (parsed and printed back)
	prg     cel.Program
	value   bool // the expression reads value: false when the record has none
	headers bool // the expression reads headers
	id      int  // index of its verdict in a record's; unique among live filters
	gen     uint64
	refs    int // views using it; guarded by the Registry's mu
}

// parseWhere parses expr; the error, for a 400 answer, names the
// position of a syntax error.
func parseWhere(env *cel.Env, expr string) (*cel.Ast, error) {
	if len(expr) > MaxExprLen {
		return nil, fmt.Errorf("where: expression of %d bytes, over the limit of %d", len(expr), MaxExprLen)
	}
	ast, iss := env.Parse(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("where: %s", oneLine(iss.Err().Error()))
	}
	return ast, nil
}

// canonicalWhere returns parsed printed back: the same expression for
// every spelling of it (spaces, parentheses), so that they make one view.
func canonicalWhere(parsed *cel.Ast) (string, error) {
	s, err := cel.AstToString(parsed)
	if err != nil {
		return "", fmt.Errorf("where: %w", err)
	}
	return s, nil
}

// compileFilter checks and plans expr, a parsed expression whose
// canonical text is canon. The error, for a 400 answer, names the
// position of a type error or of a call refused (checkCalls).
func compileFilter(env *cel.Env, parsed *cel.Ast, canon string, costLimit uint64) (*filter, error) {
	ast, iss := env.Check(parsed)
	if iss.Err() != nil {
		return nil, fmt.Errorf("where: %s", oneLine(iss.Err().Error()))
	}
	if t := ast.OutputType(); !t.IsExactType(cel.BoolType) && !t.IsExactType(cel.DynType) {
		return nil, fmt.Errorf("where: the expression is a %s, not a bool", t)
	}
	rx := newRegexes(costLimit)
	prg, err := env.Program(ast,
		cel.CostLimit(costLimit),
		cel.OptimizeRegex(rx.optimizations()...),
		cel.CostTrackerOptions(rx.costTrackers()...),
	)
	if err != nil {
		return nil, fmt.Errorf("where: %s", oneLine(err.Error()))
	}
	f := &filter{expr: canon, prg: prg}
	for _, ref := range ast.NativeRep().ReferenceMap() {
		switch ref.Name {
		case varValue:
			f.value = true
		case varHeaders:
			f.headers = true
		}
	}
	return f, nil
}

// compileExpr parses and compiles expr: for tests and benchmarks.
func compileExpr(env *cel.Env, expr string, costLimit uint64) (*filter, error) {
	parsed, err := parseWhere(env, expr)
	if err != nil {
		return nil, err
	}
	canon, err := canonicalWhere(parsed)
	if err != nil {
		return nil, err
	}
	return compileFilter(env, parsed, canon, costLimit)
}

// maxErrors is the most errors an answer lists: a long expression can
// hold hundreds.
const maxErrors = 3

// oneLine turns CEL's error text (a line per error, each followed by the
// source line and a caret) into one line: the first maxErrors messages,
// which carry the positions (<input>:1:7), joined.
func oneLine(s string) string {
	var msgs []string
	n := 0
	for l := range strings.SplitSeq(s, "\n") {
		if !strings.HasPrefix(l, "ERROR: ") {
			continue
		}
		if n++; n <= maxErrors {
			msgs = append(msgs, clip(strings.TrimPrefix(strings.TrimPrefix(l, "ERROR: "), "<input>:"), 200))
		}
	}
	if len(msgs) == 0 {
		return clip(s, 200)
	}
	if n > maxErrors {
		msgs = append(msgs, fmt.Sprintf("and %d more", n-maxErrors))
	}
	return strings.Join(msgs, "; ")
}

// matches evaluates f for rec: false when the expression reads value and
// the record has no JSON value, or the evaluation fails (counted and
// logged by r).
func (f *filter) matches(r *Registry, rec *record) bool {
	if f.value && rec.value() == nil {
		return false
	}
	r.evals.Add(1)
	out, _, err := f.prg.Eval(activation{rec: rec, headers: f.headers})
	if err != nil {
		r.evalError(f, rec.m, err)
		return false
	}
	return out == types.True
}

// activation gives an evaluation the record's variables, each built when
// the expression reads it; value and headers are built once per record
// and shared by every filter.
type activation struct {
	rec     *record
	headers bool
}

var _ interpreter.Activation = activation{}

// ResolveName implements interpreter.Activation.
func (a activation) ResolveName(name string) (any, bool) {
	m := a.rec.m
	switch name {
	case varKey:
		return types.String(m.Key), true
	case varValue:
		if v := a.rec.value(); v != nil {
			return v, true
		}
		return nil, false
	case varHeaders:
		return a.rec.headers(), true
	case varTimestamp:
		return types.Timestamp{Time: time.UnixMilli(m.Timestamp).UTC()}, true
	case varPartition:
		return types.Int(m.Partition), true
	case varOffset:
		return types.Int(m.Offset), true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (activation) Parent() interpreter.Activation { return nil }
