package pipelines

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestExpandRefs(t *testing.T) {
	values := map[string]string{
		"steps.ingest.dataset.uri":       "file:///a.parquet",
		"steps.register.model.version":   "7",
		"steps.my-step.scored.uri":       "s3://x",
		"item":                           "eu",
		"item.index":                     "3",
		"steps.value.has.refs":           "${item}",
		"steps.ingest.dataset.schema.id": "",
		"run.logical_date":               "2026-12-02",
		"run.key":                        "2026-12-02T0230",
	}
	resolve := func(ref string) (string, error) {
		v, ok := values[ref]
		if !ok {
			return "", fmt.Errorf("no value for %s", ref)
		}
		return v, nil
	}
	tests := []struct {
		in, want, err string
	}{
		{in: "", want: ""},
		{in: "plain text", want: "plain text"},
		{in: "${steps.ingest.dataset.uri}", want: "file:///a.parquet"},
		{in: "scores/v${steps.register.model.version}/${item}-${item.index}.parquet", want: "scores/v7/eu-3.parquet"},
		{in: "${steps.my-step.scored.uri}${item}", want: "s3://xeu"},
		{in: "[${steps.ingest.dataset.schema.id}]", want: "[]"},
		// Resolved values are not expanded again.
		{in: "${steps.value.has.refs}", want: "${item}"},
		// Anything else is left alone.
		{in: "${params.seed} ${items} ${item.value} ${stepsx} $item {item}", want: "${params.seed} ${items} ${item.value} ${stepsx} $item {item}"},
		{in: "unterminated ${item", want: "unterminated ${item"},
		{in: "${item} then unterminated ${steps.a", want: "eu then unterminated ${steps.a"},
		{in: "${}", want: "${}"},
		{in: "é ${item} é", want: "é eu é"},
		// Run references.
		{in: "landing/${run.logical_date}/part-${run.key}.parquet", want: "landing/2026-12-02/part-2026-12-02T0230.parquet"},
		{in: "${run.unknown} ${run} ${runs.key} ${run.key.x}", want: "${run.unknown} ${run} ${runs.key} ${run.key.x}"},
		// Errors propagate.
		{in: "a ${steps.unknown.x.y} b", err: "no value for steps.unknown.x.y"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ExpandRefs(tt.in, resolve)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("ExpandRefs(%q) error = %v, want %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ExpandRefs(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
	sentinel := errors.New("boom")
	if _, err := ExpandRefs("${item}", func(string) (string, error) { return "", sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("ExpandRefs error = %v, want the resolver's error", err)
	}
}

func TestOutputKind(t *testing.T) {
	tests := []struct {
		step Step
		want string
	}{
		{Step{Uses: StepIngest}, "dataset"},
		{Step{Uses: StepPreprocess}, "prepared"},
		{Step{Uses: StepTrain}, "bundle"},
		{Step{Uses: StepEvaluate}, "evaluation"},
		{Step{Uses: StepRegister}, "model"},
		{Step{Uses: StepScore}, "scored"},
		{Step{Uses: StepReport}, "report"},
		{Step{Uses: StepDeploy}, "deployment"},
		{Step{Uses: StepApproval}, "approval"},
		{Step{Uses: StepMonitor}, ""},
		{Step{Uses: StepNoop}, ""},
		{Step{Uses: "unknown"}, ""},
		{Step{Uses: StepIngest, Foreach: &Foreach{Items: []string{"a"}}}, "foreach"},
		{Step{Uses: StepScore, Foreach: &Foreach{RowGroups: true}}, "foreach"},
		{Step{Uses: StepNoop, Foreach: &Foreach{Files: "*.csv"}}, "foreach"},
	}
	for _, tt := range tests {
		if got := OutputKind(&tt.step); got != tt.want {
			t.Errorf("OutputKind(%s, foreach %v) = %q, want %q", tt.step.Uses, tt.step.Foreach != nil, got, tt.want)
		}
	}
	// Every step type is covered by the table above.
	for _, typ := range StepTypes {
		found := false
		for _, tt := range tests {
			found = found || tt.step.Uses == typ
		}
		if !found {
			t.Errorf("OutputKind is not tested for %s", typ)
		}
	}
}

func TestCheckRowGroups(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0", ""},
		{"3", ""},
		{"2-5", ""},
		{"4-4", ""},
		{"0-2147483647", ""},
		{"5-2", `row_groups range "5-2" is reversed: the first index must not be greater than the last`},
		{"99999999999", `row_groups "99999999999" is out of range`},
		{"1-99999999999", `row_groups "1-99999999999" is out of range`},
		{"-1", `invalid row_groups "-1": write one row group index "N" or an inclusive range "N-M" (indices start at 0), or ${item} in a foreach step`},
		{"1-", `invalid row_groups "1-"`},
		{"1,2", `invalid row_groups "1,2"`},
		{" 1", `invalid row_groups " 1"`},
		{"1 - 2", `invalid row_groups "1 - 2"`},
		{"+1", `invalid row_groups "+1"`},
		{"a", `invalid row_groups "a"`},
	}
	for _, tt := range tests {
		got := checkRowGroups(tt.in)
		if tt.want == "" && got != "" || tt.want != "" && !strings.HasPrefix(got, tt.want) {
			t.Errorf("checkRowGroups(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// refSpec is a valid pipeline through a register step; extra steps follow
// on line 21.
func refSpec(extra string) string {
	return `apiVersion: kiln/v1
kind: Pipeline
name: r
params: {deploy: true, n: 3, env: prod, cond: "params.n >", raw: "'${x'"}
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
  - name: register
    uses: register
    needs: [train]
  - name: other
    uses: noop
` + extra
}

// TestRefProblems checks the exact positions and messages of problems in
// when expressions and references, in each scalar style, and cases the
// golden files do not cover.
func TestRefProblems(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		want  string // "line:col path: message", one per line
	}{
		{"valid when and references", "  - name: s\n    uses: score\n    needs: [register]\n" +
			"    when: params.deploy && steps.train.bundle.params.l2 > 0\n" +
			"    with: {input: \"${steps.ingest.dataset.uri}\", output: 'o/${steps.register.model.name}.parquet'}\n", ""},
		{"when column in a plain scalar", "  - name: s\n    uses: noop\n    when: params.deploy && params.nope\n",
			`24:28 steps[5].when: unknown param "nope" in when (known params: deploy, n, env, cond, raw)`},
		{"when column in a double-quoted scalar with an escape", "  - name: s\n    uses: noop\n    when: \"params.env == \\\"x\\\" && params.nope\"\n",
			`24:35 steps[5].when: unknown param "nope" in when (known params: deploy, n, env, cond, raw)`},
		{"when column in a single-quoted scalar", "  - name: s\n    uses: noop\n    when: 'params.env == ''x'' && params.nope'\n",
			`24:35 steps[5].when: unknown param "nope" in when (known params: deploy, n, env, cond, raw)`},
		{"when in a block scalar points at the scalar", "  - name: s\n    uses: noop\n    when: |\n      params.deploy\n      && params.nope\n",
			`24:11 steps[5].when: unknown param "nope" in when (known params: deploy, n, env, cond, raw)`},
		{"when interpolated from a param points at the scalar", "  - name: s\n    uses: noop\n    when: ${params.cond} 1 &&\n",
			`24:11 steps[5].when: invalid when: unexpected end of expression; expected a value, an identifier or "("`},
		{"a param holding ${ in when", "  - name: s\n    uses: noop\n    when: ${params.raw} == 'x'\n",
			`24:11 steps[5].when: the value of param "raw", "'${x'", contains "${", which a param cannot pass on to a step`},
		{"a param holding ${ in a container", "  - name: t2\n    uses: train\n    needs: [prep]\n    container: {image: \"kiln/${params.raw}\"}\n    with: {algorithm: logistic}\n",
			`25:30 steps[5].container.image: the value of param "raw", "'${x'", contains "${", which a param cannot pass on to a step`},
		{"when from a bool param", "  - name: s\n    uses: noop\n    when: ${params.deploy}\n", ""},
		{"when is a YAML bool", "  - name: s\n    uses: noop\n    when: false\n", ""},
		{"empty when means always", "  - name: s\n    uses: noop\n    when: \"\"\n", ""},
		{"when is a number", "  - name: s\n    uses: noop\n    when: 1\n",
			`24:11 steps[5].when: expected a condition (a string such as params.deploy), found integer 1`},
		{"when is a list", "  - name: s\n    uses: noop\n    when: [params.deploy]\n",
			`24:11 steps[5].when: expected a condition (a string such as params.deploy), found a list`},
		{"when compares a string param with a number", "  - name: s\n    uses: noop\n    when: params.env > 3\n",
			`24:22 steps[5].when: invalid when: operator ">" needs two numbers or two strings, found string and number`},
		{"when subtracts without spaces", "  - name: s\n    uses: noop\n    when: params.n-1 > 0\n",
			`24:11 steps[5].when: unknown param "n-1" in when; to subtract, put spaces around "-": params.n - ...`},
		{"when reads a field of a param", "  - name: s\n    uses: noop\n    when: params.env.name == 'x'\n",
			`24:11 steps[5].when: params.env has no fields: a param is a single value, write params.env`},
		{"when reads params alone", "  - name: s\n    uses: noop\n    when: params\n",
			`24:11 steps[5].when: incomplete reference "params" in when: write params.NAME`},
		{"when reads a step without its kind", "  - name: s\n    uses: noop\n    needs: [train]\n    when: steps.train\n",
			`25:11 steps[5].when: incomplete reference "steps.train" in when: write steps.STEP.KIND[.FIELD...], e.g. steps.evaluate.evaluation.metrics.auc`},
		{"when reads a whole output", "  - name: s\n    uses: noop\n    needs: [register]\n    when: steps.register.model == 'x'\n", ""},
		{"when reads a monitor step", "  - name: d\n    uses: deploy\n    needs: [register]\n  - name: m\n    uses: monitor\n    needs: [d]\n" +
			"  - name: s\n    uses: noop\n    needs: [m]\n    when: steps.m.monitor.x\n",
			`31:11 steps[7].when: step "m" (uses: monitor) has no outputs to refer to`},
		{"when uses ${item} in a foreach step", "  - name: s\n    uses: noop\n    foreach: {items: [a]}\n    when: \"'${item}' == 'a'\"\n",
			`25:13 steps[5].when: ${item} is only defined in the with of a foreach step`},
		{"reference to a foreach step's outputs", "  - name: f\n    uses: noop\n    foreach: {items: [a]}\n  - name: s\n    uses: score\n    needs: [register, f]\n" +
			"    with: {output: \"${steps.f.foreach.results_uris}\"}\n", ""},
		{"reference to a foreach step under its type's kind", "  - name: f\n    uses: ingest\n    foreach: {items: [a.csv]}\n    with: {source: \"${item}\", format: csv}\n" +
			"  - name: s\n    uses: score\n    needs: [register, f]\n    with: {input: \"${steps.f.dataset.uri}\"}\n",
			`29:20 steps[6].with.input: wrong output kind "dataset" in steps.f.dataset.uri: step "f" runs foreach, so its outputs are under steps.f.foreach`},
		{"wrong kind and not upstream: both reported", "  - name: s\n    uses: score\n    needs: [register]\n    with: {input: \"${steps.other.dataset.uri}\"}\n",
			"25:20 steps[5].with.input: step \"other\" (uses: noop) has no outputs to refer to\n" +
				"25:20 steps[5].with.input: steps.other is not upstream of step \"s\"; add it to needs"},
		{"reference column after other text", "  - name: s\n    uses: score\n    needs: [register]\n    with:\n      output: out/${params.env}/${steps.nope.scored.uri}\n",
			`26:33 steps[5].with.output: unknown step "nope" in steps.nope.scored.uri (steps: ingest, prep, train, register, other, s)`},
		{"reference column without params", "  - name: s\n    uses: score\n    needs: [register]\n    with:\n      output: out/x/${steps.nope.scored.uri}\n",
			`26:21 steps[5].with.output: unknown step "nope" in steps.nope.scored.uri (steps: ingest, prep, train, register, other, s)`},
		{"reference to itself", "  - name: s\n    uses: score\n    needs: [register]\n    with: {output: \"${steps.s.scored.uri}.2\"}\n",
			`25:21 steps[5].with.output: step "s" cannot refer to its own outputs`},
		{"no upstream check when needs are wrong", "  - name: s\n    uses: score\n    needs: [register, ghost]\n    with: {input: \"${steps.other.dataset.uri}\"}\n",
			"24:23 steps[5].needs[1]: unknown step \"ghost\" in needs (steps: ingest, prep, train, register, other, s)\n" +
				"25:20 steps[5].with.input: step \"other\" (uses: noop) has no outputs to refer to"},
		{"reference in a list of strings", "  - name: s\n    uses: score\n    needs: [register]\n    with: {passthrough: [id, \"${steps.train.bundle.uri}\"]}\n", ""},
		{"reference in trainer params is a type error", "  - name: t2\n    uses: train\n    needs: [prep, ingest]\n    with: {algorithm: logistic, params: {l2: \"${steps.ingest.dataset.rows}\"}}\n",
			`25:46 steps[5].with.params.l2: expected a number, found string "${steps.ingest.dataset.rows}"; references to step outputs are only allowed in string fields`},
		{"reference in a duration field", "  - name: s\n    uses: noop\n    needs: [ingest]\n    with: {sleep: \"${steps.ingest.dataset.rows}s\"}\n",
			`25:19 steps[5].with.sleep: invalid duration "${steps.ingest.dataset.rows}s": use a number with a unit: ms, s, m or h, e.g. 30s or 1h30m; references to step outputs are only allowed in string fields`},
		{"reference in a needs entry", "  - name: s\n    uses: noop\n    needs: [\"${steps.ingest.dataset.uri}\"]\n",
			`24:14 steps[5].needs[0]: ${steps.ingest.dataset.uri}: references to step outputs are only allowed in the string fields of a step's with`},
		{"malformed reference", "  - name: s\n    uses: score\n    needs: [register]\n    with: {input: \"${steps.ingest.dataset.0}\"}\n",
			`25:20 steps[5].with.input: invalid reference "${steps.ingest.dataset.0}": write ${steps.STEP.KIND.FIELD}, e.g. ${steps.ingest.dataset.uri}`},
		{"${item} in a foreach step's foreach", "  - name: s\n    uses: noop\n    foreach: {items: [\"${item}\"]}\n",
			`24:24 steps[5].foreach.items[0]: ${item} is only defined in the with of a foreach step`},
		{"${item.index} in a foreach score step", "  - name: s\n    uses: score\n    needs: [register]\n    foreach: {row_groups: true}\n    with: {row_groups: \"${item.index}\", output: \"p${item}.parquet\"}\n", ""},
		{"row_groups range with a reference is not checked", "  - name: s\n    uses: score\n    needs: [register]\n    with: {row_groups: \"0-${steps.ingest.dataset.rows}\"}\n", ""},
		{"row_groups from an int", "  - name: s\n    uses: score\n    needs: [register]\n    with: {row_groups: 4}\n", ""},
		{"foreach on an unknown type reports only the type", "  - name: s\n    uses: nope\n    foreach: {items: [a]}\n",
			`23:11 steps[5].uses: unknown step type "nope" (known types: ingest, preprocess, train, evaluate, register, score, report, deploy, monitor, approval, noop)`},
		{"foreach items of every scalar type", "  - name: s\n    uses: noop\n    foreach: {items: [a, 1, 2.50, true, \"${params.n}\", \"${params.env}-x\"]}\n", ""},
		{"foreach items holding a list", "  - name: s\n    uses: noop\n    foreach: {items: [a, [b]]}\n",
			`24:26 steps[5].foreach.items[1]: expected an item (a single value), found a list`},
		{"foreach items holding null", "  - name: s\n    uses: noop\n    foreach: {items: [a, ~]}\n",
			`24:26 steps[5].foreach.items[1]: expected an item (a single value), found null`},
		{"foreach items is a string", "  - name: s\n    uses: noop\n    foreach: {items: a}\n",
			`24:22 steps[5].foreach.items: expected a list, found string "a"`},
		{"foreach row_groups false is no source", "  - name: s\n    uses: noop\n    foreach: {row_groups: false}\n",
			`24:14 steps[5].foreach: foreach needs one source: items (a list), files (a glob) or row_groups: true`},
		{"foreach row_groups false next to items", "  - name: s\n    uses: noop\n    foreach: {items: [a], row_groups: false}\n", ""},
		{"foreach is not a mapping", "  - name: s\n    uses: noop\n    foreach: [a, b]\n",
			`24:14 steps[5].foreach: expected a mapping, found a list`},
		{"foreach with no value", "  - name: s\n    uses: noop\n    foreach:\n",
			`24:13 steps[5].foreach: foreach needs one source: items (a list), files (a glob) or row_groups: true`},
		{"foreach empty files", "  - name: s\n    uses: noop\n    foreach: {files: \"\"}\n",
			`24:22 steps[5].foreach.files: must not be empty`},
		{"foreach row_groups through a foreach-free path", "  - name: s\n    uses: noop\n    needs: [register]\n    foreach: {row_groups: true, continue_on_error: true}\n", ""},
		{"foreach continue_on_error is not a bool", "  - name: s\n    uses: noop\n    foreach: {items: [a], continue_on_error: 1}\n",
			`24:46 steps[5].foreach.continue_on_error: expected a boolean (true or false), found integer 1`},
		{"approval with a container", "  - name: a\n    uses: approval\n    container: {image: x}\n",
			`24:5 steps[5].container: container is only allowed on train steps, and this step uses approval`},
		{"approval with an empty approver", "  - name: a\n    uses: approval\n    with: {approvers: [ana, \"\"]}\n",
			`24:23 steps[5].with.approvers: approver names must not be empty`},
		{"approval with an unknown key", "  - name: a\n    uses: approval\n    with: {mesage: hi}\n",
			`24:12 steps[5].with.mesage: unknown key "mesage", did you mean "message"?`},
		{"approval timeout must be positive", "  - name: a\n    uses: approval\n    with: {timeout: 0s}\n",
			`24:21 steps[5].with.timeout: duration 0s must be positive`},
		{"noop sleep must be a duration", "  - name: a\n    uses: noop\n    with: {sleep: 5}\n",
			`24:19 steps[5].with.sleep: expected a duration such as "30s", "10m" or "1h30m", found integer 5`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("r.yaml", []byte(refSpec(tt.extra)), nil)
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
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestNewStepDefaults spells out, independently of the golden files, the
// defaults of foreach, approval and noop, and what when and references
// decode to.
func TestNewStepDefaults(t *testing.T) {
	src := []byte(`apiVersion: kiln/v1
kind: Pipeline
name: d
params: {region: eu, on: true}
steps:
  - name: ingest
    uses: ingest
    with: {source: a.parquet}
  - name: fan
    uses: noop
    needs: [ingest]
    foreach: {items: ["${params.region}", 2]}
  - name: approve
    uses: approval
    needs: [fan]
    when: "  params.on  "
  - name: wait
    uses: noop
    needs: [approve]
    with: {sleep: 0s}
  - name: shards
    uses: ingest
    foreach: {files: "shards/*.PARQUET"}
    with: {source: "${item}"}
  - name: copy
    uses: ingest
    needs: [ingest]
    with: {source: "${steps.ingest.dataset.uri}", format: parquet}
`)
	spec, err := Parse("d.yaml", src, map[string]string{"region": "us"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := spec.Step("fan").Foreach, (&Foreach{Items: []string{"us", "2"}, Parallelism: 16}); !reflect.DeepEqual(got, want) {
		t.Errorf("fan foreach = %+v, want %+v", got, want)
	}
	if got := spec.Step("fan").Noop; got == nil || *got != (NoopConfig{}) {
		t.Errorf("fan noop = %+v, want the zero config", got)
	}
	if got := spec.Step("approve"); got.Approval == nil || !reflect.DeepEqual(*got.Approval, ApprovalConfig{OnTimeout: "fail"}) || got.When != "params.on" || got.Foreach != nil {
		t.Errorf("approve = %+v (approval %+v)", got, got.Approval)
	}
	if got := spec.Step("wait").Noop; got.Sleep != 0 {
		t.Errorf("wait sleep = %v", got.Sleep)
	}
	if got := spec.Step("shards"); got.Ingest.Format != "parquet" || got.Ingest.Source != "${item}" || got.Foreach.Files != "shards/*.PARQUET" {
		t.Errorf("shards = %+v, %+v", got.Ingest, got.Foreach)
	}
	if got := spec.Step("copy").Ingest.Source; got != "${steps.ingest.dataset.uri}" {
		t.Errorf("copy source = %q, want the reference kept", got)
	}
	for _, st := range spec.Steps {
		if st.Container != nil {
			t.Errorf("step %s has a container", st.Name)
		}
	}
}
