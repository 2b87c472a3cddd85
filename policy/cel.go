package policy

import (
	"errors"
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/interpreter"
)

// celEnv is what a rule's condition may read: the end user's verified claims (empty for other
// callers), the request's fields, and the caller kind.
func celEnv() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("claims", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("request", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("caller", cel.StringType),
	)
}

// compileCondition type-checks a condition at load, so that a typo is a start-up error and not
// a refusal at the first request, and bounds what evaluating it may cost.
func compileCondition(env *cel.Env, expr string) (cel.Program, error) {
	if len(expr) > maxExpression {
		return nil, fmt.Errorf("at most %d characters", maxExpression)
	}
	ast, issues := env.Compile(expr)
	if issues.Err() != nil {
		return nil, errors.New(issues.Err().Error())
	}
	if ast.OutputType() != cel.BoolType {
		return nil, fmt.Errorf("must be true or false, not %s", ast.OutputType())
	}
	return env.Program(ast, cel.CostLimit(celCostLimit), cel.EvalOptions(cel.OptOptimize))
}

// evaluate runs a condition. One that cannot be evaluated (a claim it reads is missing or of
// another type, the cost limit) is an error, which refuses the request: never a rule skipped.
func evaluate(prg cel.Program, vars interpreter.Activation) (bool, error) {
	out, _, err := prg.Eval(vars)
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, errors.New("condition is not true or false")
	}
	return b, nil
}
