package pipelines

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/expr"
)

// FuzzParse feeds arbitrary specs (seeded with every spec under testdata) and
// one override to Parse. Parse must never panic, must report failures as
// sorted, located Problems, and must return only specs that satisfy the
// invariants the workflow relies on.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*", "*.yaml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed specs: %v", err)
	}
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src, "")
		f.Add(src, "seed=3")
	}
	// Small specs around when, foreach and references, so that the fuzzer
	// reaches their checks quickly.
	for _, src := range []string{
		"apiVersion: kiln/v1\nkind: Pipeline\nname: f\nparams: {on: true, n: 2}\nsteps:\n" +
			"- {name: i, uses: ingest, with: {source: a.csv}}\n" +
			"- {name: w, uses: noop, needs: [i], when: \"params.on && steps.i.dataset.rows > params.n\"}\n",
		"apiVersion: kiln/v1\nkind: Pipeline\nname: f\nsteps:\n" +
			"- {name: i, uses: ingest, foreach: {items: [a, b], parallelism: 2}, with: {source: \"${item}.csv\"}}\n" +
			"- {name: j, uses: ingest, with: {source: b.parquet}}\n" +
			"- {name: n, uses: noop, needs: [j], foreach: {row_groups: true}}\n",
		"apiVersion: kiln/v1\nkind: Pipeline\nname: f\nsteps:\n" +
			"- {name: i, uses: ingest, foreach: {files: \"d/*.csv\"}, with: {source: \"${item}\"}}\n" +
			"- {name: a, uses: approval, needs: [i], with: {approvers: [x], timeout: 1h, on_timeout: skip}}\n" +
			"- {name: s, uses: ingest, needs: [a], with: {source: \"${steps.a.approval.by}.csv\"}, when: steps.i.foreach.failed == 0}\n",
		"apiVersion: kiln/v1\nkind: Pipeline\nname: f\nschedule: {cron: \"30 2 * * *\", timezone: Europe/Paris, deadline: 3h, jitter: 1m, start: 2027-01-01}\nsteps:\n" +
			"- {name: s, uses: score, with: {model: churn@production, input: \"in/${run.logical_date}/\"}}\n" +
			"- {name: r, uses: report, needs: [s], with: {labels: {column: y}, drift: {method: {numeric: ks}, thresholds: {ks: 0.01}}}}\n",
		"apiVersion: kiln/v1\nkind: Pipeline\nname: f\nschedule: {cron: \"@every 90m\", overlap: buffer_one, webhook: \"https://h/x\", deadline: 1h}\nsteps:\n" +
			"- {name: r, uses: report, with: {input: \"s/${run.key}\", labels: {file: l.parquet, id: id}, trend: 0}}\n",
	} {
		f.Add([]byte(src), "")
		f.Add([]byte(src), "n=3")
	}
	f.Fuzz(func(t *testing.T, src []byte, override string) {
		var overrides map[string]string
		if k, v, ok := strings.Cut(override, "="); ok {
			overrides = map[string]string{k: v}
		}
		spec, err := Parse("fuzz.yaml", src, overrides)
		spec2, err2 := Parse("fuzz.yaml", src, overrides)
		if err != nil {
			checkProblems(t, src, spec, err)
			if err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("Parse is not deterministic:\n%v\n---\n%v", err, err2)
			}
			return
		}
		a, err := json.Marshal(spec)
		if err != nil {
			t.Fatalf("a valid spec does not marshal: %v", err)
		}
		b, _ := json.Marshal(spec2)
		if !bytes.Equal(a, b) {
			t.Fatalf("Parse is not deterministic:\n%s\n%s", a, b)
		}
		checkSpec(t, spec)
	})
}

func checkProblems(t *testing.T, src []byte, spec *Spec, err error) {
	t.Helper()
	if spec != nil {
		t.Fatalf("Parse returned a spec with an error")
	}
	var problems Problems
	if !errors.As(err, &problems) || len(problems) == 0 {
		t.Fatalf("error %T %v is not a non-empty Problems", err, err)
	}
	lines := len(splitLines(string(src)))
	for _, p := range problems {
		if p.File != "fuzz.yaml" || p.Message == "" || p.Line < 0 || p.Line > lines || p.Column < 0 {
			t.Fatalf("malformed problem %#v (source has %d lines)", p, lines)
		}
	}
	if !sort.SliceIsSorted(problems, func(i, j int) bool {
		a, b := problems[i], problems[j]
		return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
	}) {
		t.Fatalf("problems are not sorted:\n%v", err)
	}
}

func checkSpec(t *testing.T, spec *Spec) {
	t.Helper()
	if spec.APIVersion != APIVersion || spec.Kind != "Pipeline" || !pipelineNameRE.MatchString(spec.Name) || len(spec.Steps) == 0 {
		t.Fatalf("invalid header accepted: %+v", spec)
	}
	order := spec.Order()
	if len(order) != len(spec.Steps) {
		t.Fatalf("Order() = %q for %d steps", order, len(spec.Steps))
	}
	pos := map[string]int{}
	for i, name := range order {
		if _, dup := pos[name]; dup {
			t.Fatalf("step %q twice in Order() %q", name, order)
		}
		pos[name] = i
	}
	for _, st := range spec.Steps {
		configs := 0
		for _, set := range []bool{st.Ingest != nil, st.Preprocess != nil, st.Train != nil, st.Evaluate != nil,
			st.Register != nil, st.Score != nil, st.Report != nil, st.Deploy != nil, st.Monitor != nil, st.Approval != nil, st.Noop != nil} {
			if set {
				configs++
			}
		}
		if configs != 1 {
			t.Fatalf("step %q has %d configs", st.Name, configs)
		}
		if (st.Container != nil) != (st.Uses == StepTrain) {
			t.Fatalf("step %q (uses %s): container %+v", st.Name, st.Uses, st.Container)
		}
		if st.Retry.MaxAttempts < 1 || st.Retry.Backoff <= 0 || st.Timeout < 0 {
			t.Fatalf("step %q: bad retry or timeout %+v %v", st.Name, st.Retry, st.Timeout)
		}
		for _, need := range st.Needs {
			if spec.Step(need) == nil || pos[need] >= pos[st.Name] {
				t.Fatalf("step %q needs %q, which is unknown or not before it in %q", st.Name, need, order)
			}
		}
		if want, ok := RequiredUpstream(&st); ok {
			up := spec.NearestAncestor(st.Name, want)
			if up == "" || spec.Step(up).Foreach != nil {
				t.Fatalf("step %q (uses %s) has no upstream %s that is not a foreach step (found %q)", st.Name, st.Uses, want, up)
			}
		}
		if st.Score != nil && st.Score.Model != "" && spec.NearestAncestor(st.Name, StepRegister) != "" {
			t.Fatalf("step %q has both with.model and an upstream register step", st.Name)
		}
		checkForeach(t, spec, &st)
		checkRefs(t, spec, &st)
	}
}

// checkForeach checks a decoded step's foreach.
func checkForeach(t *testing.T, spec *Spec, st *Step) {
	t.Helper()
	fe := st.Foreach
	if fe == nil {
		return
	}
	if !slices.Contains(ForeachTypes, st.Uses) {
		t.Fatalf("step %q (uses %s) has a foreach", st.Name, st.Uses)
	}
	sources := 0
	for _, set := range []bool{fe.Items != nil, fe.Files != "", fe.RowGroups} {
		if set {
			sources++
		}
	}
	if sources != 1 || fe.Parallelism < 1 || fe.Items != nil && len(fe.Items) == 0 {
		t.Fatalf("step %q: invalid foreach %+v", st.Name, fe)
	}
	if _, err := filepath.Match(fe.Files, ""); err != nil {
		t.Fatalf("step %q: bad files pattern %q accepted", st.Name, fe.Files)
	}
	if fe.RowGroups {
		if up := spec.NearestAncestor(st.Name, StepIngest); up == "" || spec.Step(up).Foreach != nil {
			t.Fatalf("step %q: foreach row_groups without a plain upstream ingest step (found %q)", st.Name, up)
		}
	}
}

// checkRefs checks that a decoded step's when parses and that it and every
// reference kept in its with name params, upstream steps' outputs of the
// right kind and, in foreach steps only, the item.
func checkRefs(t *testing.T, spec *Spec, st *Step) {
	t.Helper()
	checkStep := func(ref string) {
		parts := strings.Split(ref, ".")
		if len(parts) < 3 || parts[0] != "steps" {
			t.Fatalf("step %q: malformed reference %q accepted", st.Name, ref)
		}
		up := spec.Step(parts[1])
		if up == nil || !slices.Contains(spec.Ancestors(st.Name), parts[1]) || OutputKind(up) != parts[2] {
			t.Fatalf("step %q: reference %q to a step that is not upstream, or of another kind", st.Name, ref)
		}
	}
	if st.When != "" {
		e, err := expr.Parse(st.When)
		if err != nil {
			t.Fatalf("step %q: when %q does not parse: %v", st.Name, st.When, err)
		}
		for _, id := range e.Idents() {
			if name, ok := strings.CutPrefix(id.Path, "params."); ok {
				if _, ok := spec.Param(name); !ok {
					t.Fatalf("step %q: when reads unknown %s", st.Name, id.Path)
				}
				continue
			}
			checkStep(id.Path)
		}
	}
	// The workflow expands references in the step's JSON form: "${" may
	// only start a reference the decoder checked.
	whole, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for text := string(whole); ; {
		i := strings.Index(text, "${")
		if i < 0 {
			break
		}
		j := strings.IndexByte(text[i:], '}')
		if j < 0 || !isRuntimeRef(text[i+2:i+j]) || strings.ContainsAny(text[i+2:i+j], "\"\\ ") {
			t.Fatalf("step %q: stray \"${\" in %s", st.Name, whole)
		}
		text = text[i+j:]
	}
	configs, err := json.Marshal([]any{st.Ingest, st.Preprocess, st.Train, st.Evaluate, st.Register, st.Score, st.Report, st.Deploy, st.Monitor, st.Approval, st.Noop})
	if err != nil {
		t.Fatal(err)
	}
	var tree any
	if err := json.Unmarshal(configs, &tree); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			_, _ = ExpandRefs(v, func(ref string) (string, error) {
				if isItemRef(ref) {
					if st.Foreach == nil {
						t.Fatalf("step %q: %s kept in a step without foreach", st.Name, ref)
					}
				} else if isRunRef(ref) {
					// Any run reference is defined in every run.
				} else {
					checkStep(ref)
					if len(strings.Split(ref, ".")) < 4 {
						t.Fatalf("step %q: reference %q without a field accepted", st.Name, ref)
					}
				}
				return "", nil
			})
		case []any:
			for _, x := range v {
				walk(x)
			}
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(tree)
}
