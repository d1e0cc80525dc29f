package runtime_test

import (
	"context"
	"errors"
	"testing"

	"github.com/claimsmith/claimsmith/runtime"
)

// TestTraceNamesTheRuleOnce: a rule whose error already names it (as
// WebAssembly and JavaScript rules return theirs) is not named again in the
// trace — it read `rule "x": rule "x": …` — while a plain error is named,
// and an error naming another rule keeps both names.
func TestTraceNamesTheRuleOnce(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"names itself", &runtime.RuleError{Rule: "r0", Cause: errors.New("trap: unreachable")}, `rule "r0": trap: unreachable`},
		{"plain error", errors.New("boom"), `rule "r0": boom`},
		{"another rule's", &runtime.RuleError{Rule: "engine", Cause: errors.New("boom")}, `rule "r0": rule "engine": boom`},
	} {
		t.Run(c.name, func(t *testing.T) {
			reg := testRules(t, map[string]ruleFunc{
				"fail": func(context.Context, *runtime.Event, *runtime.Commands) error { return c.err },
			})
			res := run(t, build(t, runtime.PipelineConfig{Rules: entries("fail")}, runtime.Deps{Registry: reg}), event())
			if len(res.Trace) != 1 || res.Trace[0].Error != c.want {
				t.Fatalf("trace %+v, want error %q", res.Trace, c.want)
			}
			if !errors.Is(res.Trace[0].Cause, c.err) {
				t.Fatalf("cause %v lost", res.Trace[0].Cause)
			}
		})
	}
}
