package pipelines

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// evalSpec is a valid pipeline up to an evaluate step whose with mapping is
// the given text, indented under "with:" on line 17.
func evalSpec(with string) string {
	return `apiVersion: kiln/v1
kind: Pipeline
name: g
params: {expr: "auc >= 0.9 &&", n: 3}
steps:
  - name: ingest
    uses: ingest
    with: {source: a.csv}
  - name: prep
    uses: preprocess
    needs: [ingest]
    with: {target: y}
  - name: train
    uses: train
    needs: [prep]
    with: {algorithm: logistic}
  - name: evaluate
    uses: evaluate
    needs: [train]
    with:
` + with
}

// TestFieldProblems checks single problems, with their exact positions, for
// cases the golden files do not cover: gate columns in each scalar style, and
// type errors.
func TestFieldProblems(t *testing.T) {
	tests := []struct {
		name string
		with string
		want string // "line:col path: message"
	}{
		{"gate plain", "      gate: auc >= 0.9 && f1 >\n",
			`21:31 steps[3].with.gate: invalid gate: unexpected end of expression; expected a value, an identifier or "("`},
		{"gate single-quoted with an escaped quote", "      gate: 'auc >= 0.9 && ''x'' && f1 > 0'\n",
			`21:28 steps[3].with.gate: invalid gate: operator "&&" needs bool operands, found string "'x'"`},
		{"gate double-quoted with an escape", "      gate: \"auc >= 0.9 \\t&& f2 > 0\"\n",
			`21:30 steps[3].with.gate: unknown metric "f2" in gate, did you mean "f1"? (known metrics: auc, pr_auc, logloss, accuracy, precision, recall, f1, ece, positive_rate, f1_macro, f1_weighted, precision_macro, recall_macro, auc_ovr, rmse, mae, r2)`},
		{"gate double-quoted with an unmapped escape", "      gate: \"\\x41 >= 0.9 && f2 > 0\"\n",
			"21:13 steps[3].with.gate: unknown metric \"f2\" in gate, did you mean \"f1\"? (known metrics: auc, pr_auc, logloss, accuracy, precision, recall, f1, ece, positive_rate, f1_macro, f1_weighted, precision_macro, recall_macro, auc_ovr, rmse, mae, r2)\n" +
				"21:14 steps[3].with.gate: unknown metric \"A\" in gate (known metrics: auc, pr_auc, logloss, accuracy, precision, recall, f1, ece, positive_rate, f1_macro, f1_weighted, precision_macro, recall_macro, auc_ovr, rmse, mae, r2)"},
		{"gate block scalar points at the scalar", "      gate: |\n        auc >= 0.9 &&\n        f2 > 0\n",
			`21:13 steps[3].with.gate: unknown metric "f2" in gate, did you mean "f1"? (known metrics: auc, pr_auc, logloss, accuracy, precision, recall, f1, ece, positive_rate, f1_macro, f1_weighted, precision_macro, recall_macro, auc_ovr, rmse, mae, r2)`},
		{"gate from a param points at the reference", "      gate: ${params.expr}\n",
			`21:13 steps[3].with.gate: invalid gate: unexpected end of expression; expected a value, an identifier or "("`},
		{"gate is a list", "      gate: [auc > 0]\n",
			`21:13 steps[3].with.gate: expected a gate expression (a string), found a list`},
		{"empty gate is no gate", "      gate: \"\"\n", ""},
		{"number given a mapping", "      threshold: {value: 0.5}\n",
			`21:18 steps[3].with.threshold: expected a number, found a mapping`},
		{"number given a bool", "      threshold: yes\n",
			`21:18 steps[3].with.threshold: expected a number, found string "yes"`},
		{"number given infinity", "      threshold: .inf\n",
			`21:18 steps[3].with.threshold: expected a finite number, found .inf`},
		{"number from an int param", "      threshold: ${params.n}\n",
			`21:18 steps[3].with.threshold: threshold must be between 0 and 1 (exclusive), found 3`},
		{"null means default", "      threshold: ~\n", ""},
		{"unsupported tag", "      threshold: !weird 0.5\n",
			`21:18 steps[3].with.threshold: unsupported YAML tag !weird`},
		{"unterminated reference", "      gate: auc > ${params.n\n",
			`21:13 steps[3].with.gate: unterminated reference "${params.n": write ${params.NAME}`},
		{"explicit key with no value", "      gate:\n      threshold: 0.5\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(evalSpec(tt.with)), nil)
			got := ""
			var ps Problems
			if errors.As(err, &ps) {
				var lines []string
				for _, p := range ps {
					lines = append(lines, fmt.Sprintf("%d:%d %s: %s", p.Line, p.Column, p.Path, p.Message))
				}
				got = strings.Join(lines, "\n")
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

// TestRequiredAndTypes covers missing required fields and kind mismatches
// at the top level and in steps.
func TestRequiredAndTypes(t *testing.T) {
	tests := []struct {
		name, src, want string
	}{
		{"everything missing", "description: nothing\n", strings.Join([]string{
			`1:1 : missing required field "apiVersion"`,
			`1:1 : missing required field "kind"`,
			`1:1 : missing required field "name"`,
			`1:1 : missing required field "steps"`,
		}, "\n")},
		{"steps is a mapping", "apiVersion: kiln/v1\nkind: Pipeline\nname: x\nsteps: {a: 1}\n",
			`4:8 steps: expected a list, found a mapping`},
		{"step is a string", "apiVersion: kiln/v1\nkind: Pipeline\nname: x\nsteps: [ingest]\n",
			`4:9 steps[0]: expected a mapping, found string "ingest"`},
		{"step without name and uses", "apiVersion: kiln/v1\nkind: Pipeline\nname: x\nsteps:\n  - needs: []\n", strings.Join([]string{
			`5:5 steps[0]: missing required field "name"`,
			`5:5 steps[0]: missing required field "uses"`,
		}, "\n")},
		{"required field with no value", "apiVersion: kiln/v1\nkind: Pipeline\nname: x\nsteps:\n  - name: i\n    uses: ingest\n    with: {source: }\n",
			`7:12 steps[0].with.source: required field "source" has no value`},
		{"empty required string", "apiVersion: kiln/v1\nkind: Pipeline\nname: x\nsteps:\n  - name: i\n    uses: ingest\n    with: {source: ''}\n",
			`7:20 steps[0].with.source: must not be empty`},
		{"non-string key", "apiVersion: kiln/v1\nkind: Pipeline\nname: x\n[a]: 1\nsteps: [{name: i, uses: ingest, with: {source: a.csv}}]\n",
			`4:1 : mapping keys must be strings, found a list`},
		{"param with a list default", "apiVersion: kiln/v1\nkind: Pipeline\nname: x\nparams: {cols: [a]}\nsteps: [{name: i, uses: ingest, with: {source: a.csv}}]\n",
			`4:16 params.cols: a param's default must be a single value (its type comes from it), found a list`},
		{"param with no default", "apiVersion: kiln/v1\nkind: Pipeline\nname: x\nparams: {seed: }\nsteps: [{name: i, uses: ingest, with: {source: a.csv}}]\n",
			`4:16 params.seed: param "seed" needs a default value; its type comes from the default`},
		{"bad param name", "apiVersion: kiln/v1\nkind: Pipeline\nname: x\nparams: {my-seed: 1}\nsteps: [{name: i, uses: ingest, with: {source: a.csv}}]\n",
			`4:10 params.my-seed: invalid param name "my-seed": use letters, digits and underscores, starting with a letter or underscore`},
		{"recursive alias", "apiVersion: kiln/v1\nkind: Pipeline\nname: x\nsteps:\n" +
			"  - {name: i, uses: ingest, with: {source: a.csv}}\n" +
			"  - {name: p, uses: preprocess, needs: [i], with: {target: y}}\n" +
			"  - {name: t, uses: train, needs: [p], with: {algorithm: logistic, params: &p {a: *p}}}\n",
			`7:83 : too many YAML alias expansions (more than 1000); is an alias recursive?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("f.yaml", []byte(tt.src), nil)
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("error = %v, want Problems", err)
			}
			var lines []string
			for _, p := range ps {
				lines = append(lines, fmt.Sprintf("%d:%d %s: %s", p.Line, p.Column, p.Path, p.Message))
			}
			if got := strings.Join(lines, "\n"); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
