package pipelines

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// overridesFrom reads param overrides from a leading "# overrides: a=1, b=2"
// comment, so a test file can carry its own command-line overrides.
func overridesFrom(t testing.TB, src []byte) map[string]string {
	first, _, _ := strings.Cut(string(src), "\n")
	spec, ok := strings.CutPrefix(first, "# overrides:")
	if !ok {
		return nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			t.Fatalf("malformed override %q", kv)
		}
		out[k] = v
	}
	return out
}

// golden compares got with the golden file, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./pipelines -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test ./pipelines -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func specFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no specs in testdata/%s", dir)
	}
	return files
}

// TestErrors parses every invalid spec under testdata/errors and compares the
// problems with the .golden file next to it. Each file holds one mistake and
// must produce exactly one problem, except the many-* files.
func TestErrors(t *testing.T) {
	files := specFiles(t, "errors")
	if len(files) < 20 {
		t.Errorf("only %d error specs; want at least 20", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := Parse(file, src, overridesFrom(t, src))
			if err == nil {
				t.Fatalf("Parse succeeded on an invalid spec: %+v", spec)
			}
			if spec != nil {
				t.Errorf("Parse returned a spec along with an error")
			}
			var problems Problems
			if !errors.As(err, &problems) {
				t.Fatalf("error is %T, want Problems", err)
			}
			if n := len(problems); n != 1 && !strings.HasPrefix(filepath.Base(file), "many-") {
				t.Errorf("got %d problems, want exactly 1 for a single mistake:\n%v", n, err)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".golden", []byte(err.Error()+"\n"))
		})
	}
}

// TestManyMistakes checks that every mistake in a file is reported, in
// position order.
func TestManyMistakes(t *testing.T) {
	file := filepath.Join("testdata", "errors", "many-mistakes.yaml")
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Parse(file, src, nil)
	var problems Problems
	if !errors.As(err, &problems) {
		t.Fatalf("Parse error = %v, want Problems", err)
	}
	// One entry per mistake written into the file: the path and a fragment
	// of the message.
	want := []struct{ path, fragment string }{
		{"apiVersion", `unsupported apiVersion "kiln/v2"`},
		{"name", `invalid pipeline name "Churn"`},
		{"steps[0].with.expect.min_rows", `expected an integer, found string "many"`},
		{"steps[1].need", `did you mean "needs"?`},
		{"steps[1].with.split.test", "must be in [0, 1)"},
		{"steps[1].with.split.seed", `unknown param "seeds"`},
		{"steps[1].with.transforms[0].impute.strategy", `unsupported impute strategy "avg"`},
		{"steps[1].with.transforms[1].scale", `unknown key "scale"`},
		{"steps[2].uses", `unknown step type "trian", did you mean "train"?`},
		{"steps[3].timeout", `invalid duration "soon"`},
		{"steps[3].with.gate", `unknown metric "f2" in gate, did you mean "f1"?`},
	}
	if len(problems) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(problems), len(want), err)
	}
	for i, w := range want {
		if p := problems[i]; p.Path != w.path || !strings.Contains(p.Message, w.fragment) {
			t.Errorf("problem %d = %s: %s; want %s: ...%s...", i, p.Path, p.Message, w.path, w.fragment)
		}
	}
	if !sort.SliceIsSorted(problems, func(i, j int) bool {
		a, b := problems[i], problems[j]
		return a.Line < b.Line || a.Line == b.Line && a.Column < b.Column
	}) {
		t.Errorf("problems are not in position order:\n%v", err)
	}
}

// TestValid decodes every spec under testdata/valid and compares the result,
// as indented JSON, with the .json golden file next to it.
func TestValid(t *testing.T) {
	for _, file := range specFiles(t, "valid") {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			spec, err := Parse(file, src, overridesFrom(t, src))
			if err != nil {
				t.Fatalf("Parse:\n%v", err)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(spec); err != nil {
				t.Fatal(err)
			}
			golden(t, strings.TrimSuffix(file, ".yaml")+".json", buf.Bytes())

			// The spec must survive a JSON round trip (workflow payloads).
			var back Spec
			if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
				t.Fatalf("unmarshal: %v", err)
			}
			if !reflect.DeepEqual(back.Params, spec.Params) {
				t.Errorf("params after a JSON round trip = %#v, want %#v", back.Params, spec.Params)
			}
			again, err := json.MarshalIndent(&back, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			first, _ := json.MarshalIndent(spec, "", "  ")
			if !bytes.Equal(again, first) {
				t.Errorf("JSON round trip changed the spec:\n%s\nwant\n%s", again, first)
			}
		})
	}
}

// TestDefaultsAndParams spells out, independently of the golden files, the
// defaults and the param substitution rules.
func TestDefaultsAndParams(t *testing.T) {
	src := []byte(`apiVersion: kiln/v1
kind: Pipeline
name: churn
params:
  seed: 7
  frac: 0.25
  version: v3
  strict: true
steps:
  - name: ingest
    uses: ingest
    with: {source: "data/churn-${params.version}-${params.seed}.csv"}
  - name: prep
    uses: preprocess
    needs: ingest
    with:
      target: churned
      split:
        test: ${params.frac}
        seed: "${params.seed}"
  - name: train
    uses: train
    needs: [prep]
    with:
      algorithm: logistic
      params: {max_iter: "${params.seed}", l2: "${params.frac}"}
  - name: evaluate
    uses: evaluate
    needs: [train]
  - name: register
    uses: register
    needs: [evaluate]
  - name: deploy
    uses: deploy
    needs: [register]
  - name: monitor
    uses: monitor
    needs: [deploy]
    with: {retrain: "${params.strict}"}
`)
	spec, err := Parse("churn.yaml", src, map[string]string{"seed": "11", "version": "v4"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Param{
		{Name: "seed", Type: ParamInt, Value: int64(11), Overridden: true},
		{Name: "frac", Type: ParamFloat, Value: 0.25},
		{Name: "version", Type: ParamString, Value: "v4", Overridden: true},
		{Name: "strict", Type: ParamBool, Value: true},
	}; !reflect.DeepEqual(spec.Params, want) {
		t.Errorf("Params = %+v, want %+v", spec.Params, want)
	}
	if p, ok := spec.Param("seed"); !ok || p.Value != int64(11) {
		t.Errorf("Param(seed) = %+v, %v", p, ok)
	}
	if _, ok := spec.Param("nope"); ok {
		t.Errorf("Param(nope) found")
	}
	if got := spec.Step("ingest").Ingest; got.Source != "data/churn-v4-11.csv" || got.Format != "csv" {
		t.Errorf("ingest = %+v", got)
	}
	if got := spec.Step("prep").Preprocess; got.Split != (Split{Test: 0.25, Valid: 0.1, Seed: 11}) || got.Task != "binary" {
		t.Errorf("preprocess = %+v", got)
	}
	wantParams := map[string]any{"max_iter": int64(11), "l2": 0.25}
	if got := spec.Step("train").Train.Params; !reflect.DeepEqual(got, wantParams) {
		t.Errorf("train params = %#v, want %#v", got, wantParams)
	}
	if got := spec.Step("train").Container; got == nil || *got != DefaultContainer() {
		t.Errorf("train container = %+v, want the default", got)
	}
	for _, st := range spec.Steps {
		if st.Retry != (Retry{MaxAttempts: 3, Backoff: Duration(time.Second)}) || st.Timeout != 0 {
			t.Errorf("step %s: retry %+v timeout %v, want defaults", st.Name, st.Retry, st.Timeout)
		}
		if st.Uses != StepTrain && st.Container != nil {
			t.Errorf("step %s has a container", st.Name)
		}
	}
	if got := spec.Step("evaluate").Evaluate; *got != (EvaluateConfig{Threshold: 0.5, Champion: "churn@production"}) {
		t.Errorf("evaluate = %+v", got)
	}
	if got := spec.Step("register").Register; !reflect.DeepEqual(*got, RegisterConfig{Model: "churn"}) {
		t.Errorf("register = %+v", got)
	}
	wantDeploy := DeployConfig{Alias: "production", Steps: []int{5, 25, 50, 100}, Interval: Duration(30 * time.Second), MaxIntervals: 120,
		MinRequests: 50, MaxErrorRateIncrease: 0.01, MaxWaits: 10}
	if got := spec.Step("deploy").Deploy; !reflect.DeepEqual(*got, wantDeploy) {
		t.Errorf("deploy = %+v, want %+v", got, wantDeploy)
	}
	m := spec.Step("monitor").Monitor
	if m.Interval.D() != time.Minute || m.PSIThreshold != 0.2 || m.MinRows != 200 || m.Window.D() != 10*time.Minute ||
		m.Retrain == nil || !*m.Retrain || m.Cooldown.D() != time.Hour {
		t.Errorf("monitor = %+v", m)
	}
}

func TestHash(t *testing.T) {
	src := []byte("apiVersion: kiln/v1\nkind: Pipeline\nname: p\nparams: {seed: 1}\nsteps: [{name: ingest, uses: ingest, with: {source: a.csv}}]\n")
	a, err := Parse("a.yaml", src, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse("b.yaml", src, map[string]string{"seed": "2"})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%x", sha256.Sum256(src)); a.Hash != want {
		t.Errorf("Hash = %s, want %s", a.Hash, want)
	}
	if a.Hash != b.Hash {
		t.Errorf("hash depends on overrides: %s vs %s", a.Hash, b.Hash)
	}
}

func TestParseFile(t *testing.T) {
	file := filepath.Join("testdata", "valid", "breast-cancer.yaml")
	spec, err := ParseFile(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(filepath.Dir(file))
	if spec.File != file || spec.Dir != abs {
		t.Errorf("File, Dir = %q, %q; want %q, %q", spec.File, spec.Dir, file, abs)
	}
	if _, err := ParseFile(filepath.Join("testdata", "no-such-file.yaml"), nil); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ParseFile(missing) error = %v, want a wrapped not-exist error", err)
	}
	_, err = ParseFile(filepath.Join("testdata", "errors", "bad-api-version.yaml"), nil)
	var problems Problems
	if !errors.As(err, &problems) {
		t.Errorf("ParseFile(invalid) error = %v, want Problems", err)
	}
}

func TestProblemError(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "p.yaml", Line: 12, Column: 5, Path: "steps[2].need", Message: `unknown key "need"`}, `p.yaml:12:5: steps[2].need: unknown key "need"`},
		{Problem{File: "p.yaml", Path: "params.x", Message: "unknown param"}, "p.yaml: params.x: unknown param"},
		{Problem{File: "p.yaml", Line: 3, Message: "invalid YAML"}, "p.yaml:3: invalid YAML"},
		{Problem{File: "p.yaml", Line: 1, Column: 1, Message: `missing required field "name"`}, `p.yaml:1:1: missing required field "name"`},
	}
	for _, tt := range tests {
		if got := tt.p.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	ps := Problems{tests[0].p, tests[1].p}
	if got, want := ps.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Problems.Error() = %q, want %q", got, want)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"name", "uses", "needs", "with", "retry", "timeout", "container"}
	tests := []struct{ in, want string }{
		{"need", "needs"},
		{"timout", "timeout"},
		{"Needs", "needs"},
		{"contianer", "container"},
		{"wiht", "with"},
		{"dependencies", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.in, keys); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
