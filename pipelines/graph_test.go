package pipelines

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// graphSpec builds a spec from "name:uses:need1,need2" entries, bypassing the
// decoder so that any graph shape (including invalid ones) can be tested.
func graphSpec(t *testing.T, steps ...string) *Spec {
	t.Helper()
	s := &Spec{}
	for _, entry := range steps {
		parts := strings.Split(entry, ":")
		if len(parts) != 3 {
			t.Fatalf("bad step %q", entry)
		}
		st := Step{Name: parts[0], Uses: StepType(parts[1])}
		if parts[2] != "" {
			st.Needs = strings.Split(parts[2], ",")
		}
		s.Steps = append(s.Steps, st)
	}
	return s
}

func TestOrder(t *testing.T) {
	tests := []struct {
		name  string
		steps []string
		want  []string
	}{
		{"chain in spec order", []string{"a:ingest:", "b:preprocess:a", "c:train:b"}, []string{"a", "b", "c"}},
		{"chain written backwards", []string{"c:train:b", "b:preprocess:a", "a:ingest:"}, []string{"a", "b", "c"}},
		{"independent steps keep spec order", []string{"z:ingest:", "y:ingest:", "x:ingest:"}, []string{"z", "y", "x"}},
		{"ready steps keep spec order", []string{"d:train:b,c", "c:preprocess:a", "b:preprocess:a", "a:ingest:"}, []string{"a", "c", "b", "d"}},
		{"earliest ready step first", []string{"late:ingest:", "mid:preprocess:first", "first:ingest:"}, []string{"late", "first", "mid"}},
		{"diamond", []string{"a:ingest:", "b:preprocess:a", "c:preprocess:a", "d:train:c,b"}, []string{"a", "b", "c", "d"}},
		{"unknown needs are ignored", []string{"a:ingest:ghost"}, []string{"a"}},
		{"a cycle goes last in spec order", []string{"x:ingest:y", "y:ingest:x", "z:ingest:"}, []string{"z", "x", "y"}},
		{"empty", nil, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := graphSpec(t, tt.steps...).Order(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Order() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAncestors(t *testing.T) {
	// ingest ← prep ← train ← evaluate ← register ← {score, deploy}; deploy
	// also needs evaluate directly; prep2 is a second preprocess branch.
	s := graphSpec(t,
		"ingest:ingest:",
		"prep:preprocess:ingest",
		"prep2:preprocess:ingest",
		"train:train:prep",
		"train2:train:prep2",
		"evaluate:evaluate:train",
		"register:register:evaluate",
		"score:score:register",
		"deploy:deploy:register,evaluate,register",
		"both:evaluate:train2,train",
	)
	tests := []struct {
		name string
		want []string
	}{
		{"ingest", nil},
		{"prep", []string{"ingest"}},
		{"train", []string{"prep", "ingest"}},
		{"register", []string{"evaluate", "train", "prep", "ingest"}},
		// evaluate is needed directly and through register: listed once, at distance 1.
		{"deploy", []string{"register", "evaluate", "train", "prep", "ingest"}},
		// Ties at the same distance follow needs order.
		{"both", []string{"train2", "train", "prep2", "prep", "ingest"}},
		{"nope", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Ancestors(tt.name); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Ancestors(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}

	nearest := []struct {
		name string
		t    StepType
		want string
	}{
		{"score", StepRegister, "register"},
		{"score", StepTrain, "train"},
		{"score", StepIngest, "ingest"},
		{"deploy", StepEvaluate, "evaluate"},
		{"both", StepTrain, "train2"},
		{"both", StepPreprocess, "prep2"},
		{"ingest", StepIngest, ""},
		{"train", StepDeploy, ""},
		{"nope", StepIngest, ""},
	}
	for _, tt := range nearest {
		if got := s.NearestAncestor(tt.name, tt.t); got != tt.want {
			t.Errorf("NearestAncestor(%q, %s) = %q, want %q", tt.name, tt.t, got, tt.want)
		}
	}
	if st := s.Step("train2"); st == nil || st.Name != "train2" {
		t.Errorf("Step(train2) = %+v", st)
	}
	if st := s.Step("nope"); st != nil {
		t.Errorf("Step(nope) = %+v, want nil", st)
	}
}

// TestGraphProblems covers graph validation cases beyond the golden files.
func TestGraphProblems(t *testing.T) {
	head := "apiVersion: kiln/v1\nkind: Pipeline\nname: g\nsteps:\n"
	step := func(name, uses string, needs ...string) string {
		s := fmt.Sprintf("  - name: %s\n    uses: %s\n", name, uses)
		if len(needs) > 0 {
			s += fmt.Sprintf("    needs: [%s]\n", strings.Join(needs, ", "))
		}
		switch StepType(uses) {
		case StepIngest:
			s += "    with: {source: a.csv}\n"
		case StepPreprocess:
			s += "    with: {target: y}\n"
		case StepTrain:
			s += "    with: {algorithm: logistic}\n"
		}
		return s
	}
	tests := []struct {
		name  string
		steps []string
		want  []string
	}{
		{"two separate cycles", []string{
			step("a", "ingest", "b"), step("b", "ingest", "a"),
			step("c", "ingest", "d"), step("d", "ingest", "c"),
		}, []string{
			"steps[0].needs[0]: cycle: a → b → a",
			"steps[2].needs[0]: cycle: c → d → c",
		}},
		{"shortest cycle is named", []string{
			step("a", "ingest", "b"), step("b", "ingest", "c", "a"), step("c", "ingest", "a"),
		}, []string{"steps[0].needs[0]: cycle: a → b → a"}},
		{"need listed twice", []string{step("i", "ingest"), step("p", "preprocess", "i", "i")}, []string{
			`steps[1].needs[1]: "i" is listed twice in needs`,
		}},
		{"upstream through an intermediate step", []string{
			step("i", "ingest"), step("p", "preprocess", "i"), step("t", "train", "p"),
			step("e", "evaluate", "t"), step("r", "register", "e"), step("m", "monitor", "r"),
		}, []string{`steps[5].needs: step "m" (uses: monitor) needs an upstream deploy step; add it to needs`}},
		{"step without needs", []string{step("p", "preprocess")}, []string{
			`steps[0]: step "p" (uses: preprocess) needs an upstream ingest step; add it to needs`,
		}},
		{"nearer ancestor of the type wins over a farther one", []string{
			step("i", "ingest"), step("p", "preprocess", "i"), step("i2", "ingest", "p"),
			step("p2", "preprocess", "i2"),
		}, nil},
		{"approval and noop steps need no upstream", []string{step("a", "approval"), step("n", "noop", "a")}, nil},
		{"a foreach ingest at the same distance makes the input ambiguous", []string{
			step("f", "ingest") + "    foreach: {items: [a]}\n", step("i", "ingest", "f"), step("p", "preprocess", "i", "f"),
		}, []string{
			// p needs f directly, so f and i are at the same distance.
			`steps[2].needs: step "p" (uses: preprocess) has 2 upstream ingest steps at the same distance ("i", "f") and cannot tell which one is its input; make the one it should use its nearest`,
		}},
		{"a foreach ingest farther than a plain one is not an input", []string{
			step("f", "ingest") + "    foreach: {items: [a]}\n", step("i", "ingest", "f"), step("p", "preprocess", "i"),
		}, nil},
		{"a foreach ingest as the nearest one is not an input", []string{
			step("i", "ingest"), step("f", "ingest", "i") + "    foreach: {items: [a]}\n", step("p", "preprocess", "f"),
		}, []string{`steps[2].needs: step "p" (uses: preprocess) would read its input from "f", a foreach step: its per-item outputs are not one input`}},
		{"row_groups through an intermediate step", []string{
			step("i", "ingest"), step("n", "noop", "i"), step("r", "noop", "n") + "    foreach: {row_groups: true}\n",
		}, nil},
		{"row_groups without needs", []string{step("i", "ingest"), step("r", "noop") + "    foreach: {row_groups: true}\n"}, []string{
			`steps[1].foreach.row_groups: foreach row_groups needs an upstream ingest step, whose dataset's row groups are the items; add it to needs`,
		}},
		{"no row_groups check when needs are wrong", []string{step("r", "noop", "ghost") + "    foreach: {row_groups: true}\n"}, []string{
			`steps[0].needs[0]: unknown step "ghost" in needs (steps: r)`,
		}},
		{"score with a model needs no register step", []string{step("s", "score") + "    with: {model: churn@production, input: a.parquet}\n"}, nil},
		{"score with a model and a register step", []string{
			step("i", "ingest"), step("p", "preprocess", "i"), step("t", "train", "p"), step("r", "register", "t"),
			step("s", "score", "r") + "    with: {model: churn:3}\n",
		}, []string{`steps[4].with.model: step "s" has both with.model and an upstream register step ("r"), and would not know which model to score with: remove model to score the version the register step registers, or take the register step out of its needs`}},
		{"score with neither", []string{step("s", "score")}, []string{
			`steps[0]: step "s" (uses: score) needs a model: set with.model to a registry reference (e.g. churn@production), or add an upstream register step to needs`,
		}},
		{"a bad model does not also ask for a register step", []string{step("s", "score") + "    with: {model: Churn}\n"}, []string{
			`steps[0].with.model: invalid model "Churn": use a registry reference such as churn@production, churn:3 or churn (the latest version)`,
		}},
		{"report with an input needs no score step", []string{step("r", "report") + "    with: {input: scores/}\n"}, nil},
		{"report with an input may also have a score step", []string{
			step("s", "score") + "    with: {model: churn}\n", step("r", "report", "s") + "    with: {input: other/}\n",
		}, nil},
		{"report reads the nearest score step", []string{
			step("s", "score") + "    with: {model: churn}\n", step("n", "noop", "s"), step("r", "report", "n"),
		}, nil},
		{"report without a scored output", []string{step("n", "noop"), step("r", "report", "n")}, []string{
			`steps[1].needs: step "r" (uses: report) needs a scored output: set with.input, or add an upstream score step to needs`,
		}},
		{"no reference checks on a cycle", []string{
			step("a", "noop", "b") + "    when: steps.c.dataset.x\n", step("b", "noop", "a"),
		}, []string{"steps[0].needs[0]: cycle: a → b → a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("g.yaml", []byte(head+strings.Join(tt.steps, "")), nil)
			var got []string
			if ps, ok := err.(Problems); ok {
				for _, p := range ps {
					got = append(got, p.Path+": "+p.Message)
				}
			} else if err != nil {
				t.Fatalf("error %T: %v", err, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestGraphWithConditions checks that when and references to step outputs
// add no edges: Order, Ancestors and NearestAncestor follow needs only.
func TestGraphWithConditions(t *testing.T) {
	spec, err := ParseFile(filepath.Join("testdata", "valid", "when-and-refs.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := []string{"ingest", "prep", "train", "evaluate", "register", "approve", "score", "deploy", "announce", "fallback"}
	if got := spec.Order(); !reflect.DeepEqual(got, wantOrder) {
		t.Errorf("Order() = %q, want %q", got, wantOrder)
	}
	ancestors := map[string][]string{
		"approve":  {"register", "evaluate", "train", "prep", "ingest"},
		"score":    {"register", "evaluate", "train", "prep", "ingest"},
		"deploy":   {"approve", "register", "evaluate", "train", "prep", "ingest"},
		"fallback": {"deploy", "approve", "register", "evaluate", "train", "prep", "ingest"},
	}
	for name, want := range ancestors {
		if got := spec.Ancestors(name); !reflect.DeepEqual(got, want) {
			t.Errorf("Ancestors(%q) = %q, want %q", name, got, want)
		}
	}
	if got := spec.NearestAncestor("deploy", StepRegister); got != "register" {
		t.Errorf("NearestAncestor(deploy, register) = %q", got)
	}
	if got := spec.NearestAncestor("fallback", StepApproval); got != "approve" {
		t.Errorf("NearestAncestor(fallback, approval) = %q", got)
	}

	fan, err := ParseFile(filepath.Join("testdata", "valid", "foreach.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantOrder = []string{"shards", "ingest", "prep", "train", "register", "score", "regions", "done"}
	if got := fan.Order(); !reflect.DeepEqual(got, wantOrder) {
		t.Errorf("Order() = %q, want %q", got, wantOrder)
	}
	if got, want := fan.Ancestors("done"), []string{"regions", "score", "shards", "register", "train", "prep", "ingest"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Ancestors(done) = %q, want %q", got, want)
	}
}
