package activities_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/containers"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/demodata"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/pipelines"
)

// repoRoot is the repository's root directory.
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..")
}()

// trainerBin is the reference trainer, built once by TestMain for the process
// runtime.
var trainerBin string

func TestMain(m *testing.M) {
	if os.Getenv(crashChildEnv) != "" {
		os.Exit(m.Run()) // a child of TestRegisterCrashBeforeReporting: no trainer needed
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "kiln-activities-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	trainerBin = filepath.Join(tmp, "kiln-trainer")
	cmd := exec.Command("go", "build", "-o", trainerBin, "./containers/trainer")
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the reference trainer: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// env is one test's worker: its own artifact store, registry and process
// runtime.
type env struct {
	t     *testing.T
	ctx   context.Context
	acts  *activities.Activities
	store *artifact.Store
	reg   *registry.Registry
}

// newEnv builds Activities on a fresh store and registry under t.TempDir.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	store, err := artifact.NewLocal(filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Open(ctx, filepath.Join(dir, "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	acts := &activities.Activities{
		Store:         store,
		Registry:      reg,
		Process:       containers.NewProcess(containers.ProcessOptions{Binaries: map[string]string{"kiln/trainer:dev": trainerBin}}),
		RequestLogDir: filepath.Join(dir, "requests"),
	}
	return &env{t: t, ctx: ctx, acts: acts, store: store, reg: reg}
}

// loadSpec parses a spec of pipelines/ by file name.
func loadSpec(t *testing.T, name string) *pipelines.Spec {
	t.Helper()
	spec, err := pipelines.ParseFile(filepath.Join(repoRoot, "pipelines", name), nil)
	if err != nil {
		t.Fatalf("parsing %s: %v", name, err)
	}
	return spec
}

// runInfo describes a run of spec with the given run ID.
func runInfo(spec *pipelines.Spec, run string) activities.RunInfo {
	return activities.RunInfo{
		Pipeline: spec.Name, WorkflowID: activities.PipelineID(spec.Name, run),
		SpecHash: spec.Hash, SpecDir: spec.Dir, CreatedBy: "test", TriggeredBy: "test",
	}
}

// step returns a copy of the named step of spec, failing the test if it is
// missing. The typed configs are copied too, so callers may edit them.
func step(t *testing.T, spec *pipelines.Spec, name string) pipelines.Step {
	t.Helper()
	s := spec.Step(name)
	if s == nil {
		t.Fatalf("spec %s has no step %q", spec.Name, name)
	}
	st := *s
	if st.Ingest != nil {
		c := *st.Ingest
		st.Ingest = &c
	}
	if st.Preprocess != nil {
		c := *st.Preprocess
		st.Preprocess = &c
	}
	if st.Train != nil {
		c := *st.Train
		st.Train = &c
	}
	if st.Container != nil {
		c := *st.Container
		st.Container = &c
	}
	if st.Evaluate != nil {
		c := *st.Evaluate
		st.Evaluate = &c
	}
	if st.Register != nil {
		c := *st.Register
		st.Register = &c
	}
	if st.Score != nil {
		c := *st.Score
		st.Score = &c
	}
	return st
}

// chain runs pipeline steps in order, handing each the merged artifacts of
// the steps before it, nearest first, as the pipeline workflow does.
type chain struct {
	e    *env
	run  activities.RunInfo
	acc  activities.Artifacts
	outs map[string]activities.StepOutput
	// noCache and reuse (by step name) are set on every step's input, as
	// kiln run --no-cache and --resume make the workflow do.
	noCache bool
	reuse   map[string]activities.StepOutput
	// item, when set, runs every step as that foreach item.
	item *activities.Item
}

func (e *env) chain(run activities.RunInfo) *chain {
	return &chain{e: e, run: run, outs: map[string]activities.StepOutput{}}
}

// input is the StepInput of st after the steps run so far.
func (c *chain) input(st pipelines.Step) activities.StepInput {
	in := activities.StepInput{Run: c.run, Step: st, Inputs: c.acc, NoCache: c.noCache, Item: c.item}
	if out, ok := c.reuse[st.Name]; ok {
		in.Reuse = &out
	}
	return in
}

// try runs st and, on success, adds its artifacts to the chain.
func (c *chain) try(st pipelines.Step) (activities.StepOutput, error) {
	in := c.input(st)
	var out activities.StepOutput
	var err error
	a, ctx := c.e.acts, c.e.ctx
	switch st.Uses {
	case pipelines.StepIngest:
		out, err = a.Ingest(ctx, in)
	case pipelines.StepPreprocess:
		out, err = a.Preprocess(ctx, in)
	case pipelines.StepTrain:
		out, err = a.Train(ctx, in)
	case pipelines.StepEvaluate:
		out, err = a.Evaluate(ctx, in)
	case pipelines.StepRegister:
		out, err = a.Register(ctx, in)
	case pipelines.StepScore:
		out, err = a.Score(ctx, in)
	default:
		c.e.t.Fatalf("step %s: type %s is not run by this helper", st.Name, st.Uses)
	}
	if err != nil {
		return out, err
	}
	next := out.Artifacts
	next.Merge(c.acc)
	c.acc = next
	c.outs[st.Name] = out
	return out, nil
}

// must runs st and fails the test on error.
func (c *chain) must(st pipelines.Step) activities.StepOutput {
	c.e.t.Helper()
	out, err := c.try(st)
	if err != nil {
		c.e.t.Fatalf("step %s (%s): %v", st.Name, st.Uses, err)
	}
	c.e.t.Logf("%s: %s", st.Name, out.Summary)
	return out
}

// processTrain is the spec's train step on the process runtime.
func processTrain(t *testing.T, spec *pipelines.Spec, name string) pipelines.Step {
	st := step(t, spec, name)
	if st.Container == nil {
		c := pipelines.DefaultContainer()
		st.Container = &c
	}
	st.Container.Runtime = "process"
	return st
}

// writeChurn writes demodata's churn CSV to dir/name.
func writeChurn(t *testing.T, dir, name string, opts demodata.ChurnOptions) string {
	t.Helper()
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := demodata.WriteChurnCSV(f, opts); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// readParquet reads a whole Parquet file given by path or URI.
func readParquet(t *testing.T, uri string) arrow.Record {
	t.Helper()
	p, err := artifact.Path(uri, "")
	if err != nil {
		t.Fatal(err)
	}
	r, err := dataset.OpenParquet(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.ReadAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Release)
	return rec
}

// floats returns a numeric column of rec.
func floats(t *testing.T, rec arrow.Record, name string) []float64 {
	t.Helper()
	v, err := dataset.Float64s(rec, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// strs returns a column of rec as strings.
func strs(t *testing.T, rec arrow.Record, name string) []string {
	t.Helper()
	v, _, err := dataset.Strings(rec, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// hashURI is the SHA-256 of the file at uri.
func hashURI(t *testing.T, uri string) string {
	t.Helper()
	p, err := artifact.Path(uri, "")
	if err != nil {
		t.Fatal(err)
	}
	h, err := dataset.HashFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// listFiles lists every file and directory under root, relative and sorted.
// A missing root lists nothing.
func listFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if p != root {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// checkAppError checks that err is a non-retryable Temporal application error
// of type typ whose message contains every string of want.
func checkAppError(t *testing.T, err error, typ string, want ...string) *temporal.ApplicationError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want a %s error", typ)
	}
	var ae *temporal.ApplicationError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not a temporal.ApplicationError", err, err)
	}
	if ae.Type() != typ {
		t.Errorf("error type %q, want %q (%v)", ae.Type(), typ, err)
	}
	if !ae.NonRetryable() {
		t.Errorf("error %v is retryable", err)
	}
	for _, w := range want {
		if !strings.Contains(ae.Error(), w) {
			t.Errorf("error %q does not mention %q", ae.Error(), w)
		}
	}
	return ae
}

// loadModel loads the bundle at uri.
func loadModel(uri string) (*model.Model, error) {
	p, err := artifact.Path(uri, "")
	if err != nil {
		return nil, err
	}
	return model.Load(p)
}

// checkBadInput fails unless err is the scorer's bad-input error
// (scorer.BadInput) and mentions every string of want.
func checkBadInput(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil || !scorer.BadInput(err) {
		t.Fatalf("error %v (%T), want a scorer bad-input error", err, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err.Error(), w)
		}
	}
}
