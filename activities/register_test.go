package activities_test

import (
	"testing"

	"github.com/kiln-ml/kiln/activities"
)

// TestRegisterRetryDoesNotMoveAliasBack: run A registers v1 into staging,
// run B moves staging on to v2, then A's register step is retried (a crash
// after the registry write). The retry returns v1 and leaves staging at v2.
func TestRegisterRetryDoesNotMoveAliasBack(t *testing.T) {
	e := newEnv(t)
	spec := loadSpec(t, "breast_cancer.yaml")
	reg := step(t, spec, "register")
	reg.Register.Alias = "staging"
	in := func(run string, bundle string) activities.StepInput {
		return activities.StepInput{Run: runInfo(spec, run), Step: reg, Inputs: activities.Artifacts{
			Bundle: &activities.BundleRef{URI: bundle, Runtime: "process"},
		}}
	}
	first, err := e.acts.Register(e.ctx, in("run-a", "file:///bundles/a"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.acts.Register(e.ctx, in("run-b", "file:///bundles/b")); err != nil {
		t.Fatal(err)
	}
	retry, err := e.acts.Register(e.ctx, in("run-a", "file:///bundles/a"))
	if err != nil {
		t.Fatal(err)
	}
	if retry.Artifacts.Model.Version != first.Artifacts.Model.Version || retry.Artifacts.Model.Created {
		t.Errorf("retry registered %+v, want version %d again", retry.Artifacts.Model, first.Artifacts.Model.Version)
	}
	if v, _, err := e.reg.Alias(e.ctx, reg.Register.Model, "staging"); err != nil || v != 2 {
		t.Errorf("staging = v%d (%v) after the retry, want v2", v, err)
	}
	history, err := e.reg.AliasHistory(e.ctx, reg.Register.Model, "staging")
	if err != nil {
		t.Fatal(err)
	}
	if len(history) != 2 {
		t.Errorf("%d alias moves, want 2 (the retry must not add one): %+v", len(history), history)
	}
}
