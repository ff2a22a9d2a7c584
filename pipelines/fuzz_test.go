package pipelines

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
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
			st.Register != nil, st.Score != nil, st.Deploy != nil, st.Monitor != nil} {
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
		if want, ok := Upstream[st.Uses]; ok && spec.NearestAncestor(st.Name, want) == "" {
			t.Fatalf("step %q (uses %s) has no upstream %s", st.Name, st.Uses, want)
		}
	}
}
