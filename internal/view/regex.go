package view

import (
	"fmt"
	"regexp"
	"regexp/syntax"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/interpreter"
)

// What a call of matches may cost. RE2 (Go's regexp) runs in time
// proportional to the text's length times the size of the pattern's
// compiled program, which CEL's own estimate (the pattern's length) does
// not see: \pL{1000} is 9 bytes and a thousand instructions.
const (
	// maxRegexInsts bounds the compiled program of a pattern.
	maxRegexInsts = 200
	// matchStepsPerCost is how many steps (a byte of text against an
	// instruction) a matches call does per unit of CEL cost: a unit of
	// CEL's cost is roughly the time of that many steps.
	matchStepsPerCost = 16
)

// timeZoned are the timestamp accessors that take a time zone, which
// loads it (time.LoadLocation, a file read) on every call: refused.
var timeZoned = map[string]bool{
	overloads.TimeGetFullYear: true, overloads.TimeGetMonth: true, overloads.TimeGetDayOfYear: true,
	overloads.TimeGetDayOfMonth: true, overloads.TimeGetDate: true, overloads.TimeGetDayOfWeek: true,
	overloads.TimeGetHours: true, overloads.TimeGetMinutes: true, overloads.TimeGetSeconds: true,
	overloads.TimeGetMilliseconds: true,
}

// callValidator refuses, when an expression is checked, the calls whose
// cost CEL's cost limit does not bound: a matches whose pattern is not a
// string literal (compiled on every call) or compiles to more than
// maxRegexInsts instructions, and a timestamp accessor with a time zone.
type callValidator struct{}

var _ cel.ASTValidator = callValidator{}

// Name implements cel.ASTValidator.
func (callValidator) Name() string { return "wsdest.view.calls" }

// Validate implements cel.ASTValidator.
func (callValidator) Validate(_ *cel.Env, _ cel.ValidatorConfig, a *ast.AST, iss *cel.Issues) {
	for _, e := range ast.MatchDescendants(ast.NavigateAST(a), ast.KindMatcher(ast.CallKind)) {
		call := e.AsCall()
		fn, args := call.FunctionName(), call.Args()
		switch {
		case fn == overloads.Matches:
			i := 1
			if call.IsMemberFunction() {
				i = 0
			}
			if i >= len(args) {
				continue
			}
			p := args[i]
			pattern, ok := p.AsLiteral().(types.String)
			if p.Kind() != ast.LiteralKind || !ok {
				iss.ReportErrorAtID(p.ID(), "matches: the pattern must be a string literal")
				continue
			}
			if _, err := regexInsts(string(pattern)); err != nil {
				iss.ReportErrorAtID(p.ID(), "matches: %v", err)
			}
		case timeZoned[fn] && call.IsMemberFunction() && len(args) == 1:
			iss.ReportErrorAtID(e.ID(), "%s: a time zone is not supported (timestamps are UTC)", fn)
		}
	}
}

// regexInsts returns the size of pattern's compiled program, or an error
// when it does not compile or is over maxRegexInsts. The size is
// estimated from the parsed pattern before it is compiled, so that a
// pattern that would compile to a huge program is refused without
// compiling it.
func regexInsts(pattern string) (int, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0, err
	}
	if n := regexSize(re); n > maxRegexInsts {
		return 0, fmt.Errorf("pattern of %d or more instructions, over the limit of %d", n, maxRegexInsts)
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0, err
	}
	if n := len(prog.Inst); n > maxRegexInsts {
		return 0, fmt.Errorf("pattern of %d instructions, over the limit of %d", n, maxRegexInsts)
	}
	return len(prog.Inst), nil
}

// regexSize estimates the instructions of re's program, saturating far
// above maxRegexInsts.
func regexSize(re *syntax.Regexp) int {
	const ceiling = 1 << 20
	sat := func(n int) int { return min(n, ceiling) }
	subs := 0
	for _, s := range re.Sub {
		subs = sat(subs + regexSize(s))
	}
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune)
	case syntax.OpConcat, syntax.OpAlternate:
		return sat(subs + len(re.Sub))
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		return sat(subs + 1)
	case syntax.OpCapture:
		return sat(subs + 2)
	case syntax.OpRepeat:
		// x{n,m} is n copies of x, then m-n optional ones; x{n,} n
		// copies and a star.
		if re.Max < 0 {
			return sat((re.Min + 1) * (subs + 1))
		}
		return sat(re.Max*subs + re.Max - re.Min)
	}
	return 1
}

// regexes are a filter's patterns, each compiled once when the filter is
// planned (so never during an evaluation), with the size of its program
// for the cost of a call. Written while the filter's program is made,
// read-only after.
type regexes struct {
	insts    map[string]int // by pattern
	maxSteps int            // the most steps of one call: the cost limit's worth
}

func newRegexes(costLimit uint64) *regexes {
	return &regexes{insts: map[string]int{}, maxSteps: int(min(costLimit, 1<<30)) * matchStepsPerCost}
}

// optimizations replace each call of matches (a constant pattern: see
// callValidator) with one of the compiled pattern that refuses a text
// whose steps (its length times the program's size) are over maxSteps:
// one call does at most the cost limit's worth of work, which CEL charges
// after the call returns (costTrackers).
func (rx *regexes) optimizations() []*interpreter.RegexOptimization {
	factory := func(call interpreter.InterpretableCall, pattern string) (interpreter.InterpretableCall, error) {
		insts, err := regexInsts(pattern)
		if err != nil {
			return nil, err
		}
		re, err := regexp.Compile(pattern)
		if err != nil {
			return nil, err
		}
		rx.insts[pattern] = insts
		return interpreter.NewCall(call.ID(), call.Function(), call.OverloadID(), call.Args(), func(args ...ref.Val) ref.Val {
			if len(args) != 2 {
				return types.NoSuchOverloadErr()
			}
			text, ok := args[0].(types.String)
			if !ok {
				return types.MaybeNoSuchOverloadErr(args[0])
			}
			if len(text)*insts > rx.maxSteps {
				return types.NewErr("matches: a text of %d bytes, over the limit of %d for this pattern", len(text), rx.maxSteps/insts)
			}
			return types.Bool(re.MatchString(string(text)))
		}), nil
	}
	return []*interpreter.RegexOptimization{
		{Function: overloads.Matches, OverloadID: overloads.MatchesString, RegexIndex: 1, Factory: factory},
		{Function: overloads.Matches, OverloadID: overloads.Matches, RegexIndex: 1, Factory: factory},
	}
}

// costTrackers charge a concatenation by its result (growthCost) and a call of matches its steps (the text's length
// times the program's size) over matchStepsPerCost, instead of CEL's
// estimate from the pattern's length; a call refused (over maxSteps)
// costs 1, as it did not run.
func (rx *regexes) costTrackers() []interpreter.CostTrackerOption {
	track := func(args []ref.Val, result ref.Val) *uint64 {
		c := uint64(1)
		if len(args) == 2 && !types.IsError(result) { // an error: refused before it ran
			text, _ := args[0].(types.String)
			pattern, _ := args[1].(types.String)
			c += uint64(len(text)*rx.insts[string(pattern)]) / matchStepsPerCost
		}
		return &c
	}
	return []interpreter.CostTrackerOption{
		interpreter.OverloadCostTracker(overloads.MatchesString, track),
		interpreter.OverloadCostTracker(overloads.Matches, track),
		// A call dispatched at run time (its arguments are dyn, as
		// value's members are) has no overload ID: CEL charges it 1.
		interpreter.OverloadCostTracker("", growthCost),
		interpreter.OverloadCostTracker(overloads.AddList, growthCost),
	}
}

// growthBytesPerCost is how many bytes (or list elements, each a pointer
// and more, sixteen times that) a call that builds a larger text, bytes
// or list than its arguments copies per unit of cost.
const growthBytesPerCost = 256

// growthCost charges a call whose result is larger than each of its
// arguments (a concatenation: s + s) by the result's size, which it
// allocates and copies, where CEL charges 1 when the call is dispatched
// at run time, and a list concatenation 1 in any case. Other calls: CEL's
// charge (nil).
func growthCost(args []ref.Val, result ref.Val) *uint64 {
	n := sizeOf(result)
	for _, a := range args {
		if sizeOf(a) >= n {
			return nil
		}
	}
	c := 1 + uint64(n)/growthBytesPerCost
	if _, list := result.(traits.Lister); list {
		c += uint64(n) * 16 / growthBytesPerCost
	}
	return &c
}

// sizeOf returns the size of a text, bytes or list, 0 for another value.
func sizeOf(v ref.Val) int {
	switch v := v.(type) {
	case types.String:
		return len(v)
	case types.Bytes:
		return len(v)
	case traits.Lister:
		if n, ok := v.Size().(types.Int); ok {
			return int(n)
		}
	}
	return 0
}
