package activities_test

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/demodata"
	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
)

// breastCancerRows is the number of data rows of data/breast_cancer.csv.
const breastCancerRows = 569

// TestBreastCancerChain runs ingest → preprocess → train (process runtime) →
// evaluate → register → score on the breast cancer data and checks each
// step's artifacts.
func TestBreastCancerChain(t *testing.T) {
	e := newEnv(t)
	spec := loadSpec(t, "breast_cancer.yaml")
	c := e.chain(runInfo(spec, "chain"))

	ds := c.must(step(t, spec, "ingest")).Artifacts.Dataset
	if ds.Rows != breastCancerRows || len(ds.Schema.Fields) != 31 || len(ds.SHA256) != 64 {
		t.Errorf("dataset: %d rows, %d columns, sha256 %q; want %d rows, 31 columns and a SHA-256",
			ds.Rows, len(ds.Schema.Fields), ds.SHA256, breastCancerRows)
	}
	if !artifact.Exists(ds.URI) {
		t.Errorf("dataset %s does not exist", ds.URI)
	}

	prep := c.must(step(t, spec, "prep")).Artifacts.Prepared
	if n := prep.TrainRows + prep.ValidRows + prep.TestRows; n != breastCancerRows {
		t.Errorf("split: %d+%d+%d rows, want %d in all", prep.TrainRows, prep.ValidRows, prep.TestRows, breastCancerRows)
	}
	if len(prep.Features) != 30 || prep.Target != "malignant" || prep.DatasetSHA256 != ds.SHA256 {
		t.Errorf("prepared: %d features, target %q, dataset %s", len(prep.Features), prep.Target, prep.DatasetSHA256)
	}

	bundle := c.must(processTrain(t, spec, "train")).Artifacts.Bundle
	if bundle.Runtime != "process" {
		t.Errorf("bundle runtime %q, want process", bundle.Runtime)
	}

	ev := c.must(step(t, spec, "evaluate")).Artifacts.Evaluation
	if auc := ev.Metrics["auc"]; !(auc >= 0.95) {
		t.Errorf("holdout AUC %.4f, want >= 0.95", auc)
	}
	if !ev.Passed || ev.Champion != 0 || ev.Metrics["rows"] != float64(prep.TestRows) {
		t.Errorf("evaluation: passed %v, champion %d, %v rows; want passed, no champion, %d rows",
			ev.Passed, ev.Champion, ev.Metrics["rows"], prep.TestRows)
	}

	// The bundle loads on its own and predicts the raw holdout rows with the
	// metrics evaluate reported.
	dir, err := artifact.Path(bundle.URI, "")
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(dir)
	if err != nil {
		t.Fatalf("loading the bundle: %v", err)
	}
	test := readParquet(t, prep.TestURI)
	probs, err := m.Predict(test)
	if err != nil {
		t.Fatalf("predicting the raw test rows: %v", err)
	}
	if len(probs) != int(prep.TestRows) {
		t.Fatalf("%d predictions for %d test rows", len(probs), prep.TestRows)
	}
	if got := metrics.AUC(floats(t, test, "malignant"), probs); got != ev.Metrics["auc"] {
		t.Errorf("AUC of the loaded bundle %v, evaluate reported %v", got, ev.Metrics["auc"])
	}
	if m.Manifest.Lineage.DatasetHash != ds.SHA256 || m.Manifest.Lineage.Runtime != "process" || m.Manifest.Profile == nil {
		t.Errorf("manifest lineage %+v, profile %v", m.Manifest.Lineage, m.Manifest.Profile != nil)
	}

	regStep := step(t, spec, "register")
	first := c.must(regStep).Artifacts.Model
	if first.Name != "breast-cancer" || first.Version != 1 || !first.Created || first.BundleURI != bundle.URI {
		t.Errorf("first registration %+v, want breast-cancer:1 created with the bundle", first)
	}
	// A retried register step (same run and step) finds its version.
	second := c.must(regStep).Artifacts.Model
	if *second != (activities.ModelRef{Name: first.Name, Version: first.Version, BundleURI: first.BundleURI, Created: false}) {
		t.Errorf("second registration %+v, want version %d with Created false", second, first.Version)
	}
	if v, ok, err := e.reg.Alias(e.ctx, "breast-cancer", "staging"); err != nil || !ok || v != 1 {
		t.Errorf("breast-cancer@staging = %d, %v, %v; want 1", v, ok, err)
	}
	// Another run registering the same bundle gets a new version.
	other, err := e.acts.Register(e.ctx, activities.StepInput{Run: runInfo(spec, "other"), Step: regStep, Inputs: c.acc})
	if err != nil || other.Artifacts.Model.Version != 2 || !other.Artifacts.Model.Created {
		t.Errorf("registration by another run: %+v, %v; want version 2, created", other.Artifacts.Model, err)
	}
	if vs, err := e.reg.Versions(e.ctx, "breast-cancer"); err != nil || len(vs) != 2 {
		t.Errorf("registry holds %d versions (%v), want 2", len(vs), err)
	}
	if v, ok, err := e.reg.Alias(e.ctx, "breast-cancer", "staging"); err != nil || !ok || v != 2 {
		t.Errorf("breast-cancer@staging = %d, %v, %v; want 2", v, ok, err)
	}

	sc := step(t, spec, "score")
	sc.Score.Passthrough = []string{"malignant", "mean_radius"}
	scored := c.must(sc).Artifacts.Scored
	if scored.Rows != breastCancerRows {
		t.Errorf("scored %d rows, want %d", scored.Rows, breastCancerRows)
	}
	out := readParquet(t, scored.URI)
	raw := readParquet(t, ds.URI)
	if out.NumRows() != breastCancerRows {
		t.Fatalf("scored file has %d rows, want %d", out.NumRows(), breastCancerRows)
	}
	var cols []string
	for _, f := range out.Schema().Fields() {
		cols = append(cols, f.Name)
	}
	if want := []string{"malignant", "mean_radius", "prediction", "model", "model_version"}; !slices.Equal(cols, want) {
		t.Errorf("scored columns %v, want %v", cols, want)
	}
	for i, p := range floats(t, out, "prediction") {
		if !(p >= 0 && p <= 1) {
			t.Fatalf("row %d: prediction %v outside [0, 1]", i, p)
		}
	}
	for i, name := range strs(t, out, "model") {
		if name != "breast-cancer" {
			t.Fatalf("row %d: model %q", i, name)
		}
	}
	for i, v := range floats(t, out, "model_version") {
		if v != 1 {
			t.Fatalf("row %d: model_version %v", i, v)
		}
	}
	for _, col := range []string{"malignant", "mean_radius"} {
		if got, want := floats(t, out, col), floats(t, raw, col); !slices.Equal(got, want) {
			t.Errorf("passthrough column %s differs from the input", col)
		}
	}
}

// TestIngestContentAddressed checks that a dataset's URI and hash depend only
// on the file's content.
func TestIngestContentAddressed(t *testing.T) {
	e := newEnv(t)
	spec := loadSpec(t, "breast_cancer.yaml")
	src, err := os.ReadFile(filepath.Join(repoRoot, "data", "breast_cancer.csv"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	copied := write("copy.csv", src)
	// One feature value changed: 17.99 → 17.98 in the first data row.
	changed := write("changed.csv", []byte(replaceOnce(t, string(src), "\n17.99,", "\n17.98,")))

	ingest := func(t *testing.T, source string) *activities.DatasetRef {
		t.Helper()
		st := step(t, spec, "ingest")
		st.Ingest.Source = source
		// NoCache: the work itself must find the same dataset.
		out, err := e.acts.Ingest(e.ctx, activities.StepInput{Run: runInfo(spec, "ingest"), Step: st, NoCache: true})
		if err != nil {
			t.Fatalf("ingesting %s: %v", source, err)
		}
		return out.Artifacts.Dataset
	}
	orig := ingest(t, "../data/breast_cancer.csv")
	tests := []struct {
		name   string
		source string
		same   bool
	}{
		{"same file again", "../data/breast_cancer.csv", true},
		{"same bytes elsewhere", copied, true},
		{"one value changed", changed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ingest(t, tt.source)
			if (got.SHA256 == orig.SHA256) != tt.same || (got.URI == orig.URI) != tt.same {
				t.Errorf("dataset %s (%s), first ingest %s (%s); want same=%v", got.SHA256, got.URI, orig.SHA256, orig.URI, tt.same)
			}
			if h := hashURI(t, got.URI); h != got.SHA256 {
				t.Errorf("file at %s hashes to %s, ref says %s", got.URI, h, got.SHA256)
			}
		})
	}
	if files := listFiles(t, e.store.LocalPath("datasets")); len(files) != 2 {
		t.Errorf("datasets/ holds %v, want 2 files", files)
	}
}

// TestSplitDeterministic checks that preprocess splits the same data with the
// same seed the same way, in independent stores, and another seed differently.
func TestSplitDeterministic(t *testing.T) {
	spec := loadSpec(t, "breast_cancer.yaml")
	prepare := func(t *testing.T, seed int64) *activities.PreparedRef {
		t.Helper()
		c := newEnv(t).chain(runInfo(spec, "split"))
		c.must(step(t, spec, "ingest"))
		st := step(t, spec, "prep")
		st.Preprocess.Split.Seed = seed
		return c.must(st).Artifacts.Prepared
	}
	base := prepare(t, 42)
	tests := []struct {
		name string
		seed int64
		same bool
	}{
		{"same seed", 42, true},
		{"another seed", 7, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := prepare(t, tt.seed)
			sameCounts := got.TrainRows == base.TrainRows && got.ValidRows == base.ValidRows && got.TestRows == base.TestRows
			sameTrain := hashURI(t, got.TrainURI) == hashURI(t, base.TrainURI)
			sameTest := hashURI(t, got.TestURI) == hashURI(t, base.TestURI)
			if tt.same && !(sameCounts && sameTrain && sameTest) {
				t.Errorf("seed %d: rows %d/%d/%d vs %d/%d/%d, same train file %v, same test file %v; want identical splits",
					tt.seed, got.TrainRows, got.ValidRows, got.TestRows, base.TrainRows, base.ValidRows, base.TestRows, sameTrain, sameTest)
			}
			if !tt.same && (sameTrain || sameTest) {
				t.Errorf("seed %d split like seed 42 (same train file %v, same test file %v)", tt.seed, sameTrain, sameTest)
			}
		})
	}
}

// TestChurnChain runs the churn pipeline's steps on demodata's synthetic
// customers (missing values, categorical columns) and checks that the bundle
// imputes and one-hot encodes as pipelines/churn.yaml configures.
func TestChurnChain(t *testing.T) {
	e := newEnv(t)
	spec := loadSpec(t, "churn.yaml")
	csv := writeChurn(t, t.TempDir(), "churn.csv", demodata.ChurnOptions{Rows: 3000, Seed: 1})
	c := e.chain(runInfo(spec, "churn"))

	ing := step(t, spec, "ingest")
	ing.Ingest.Source = csv
	ds := c.must(ing).Artifacts.Dataset
	if ds.Rows != 3000 {
		t.Errorf("dataset has %d rows, want 3000", ds.Rows)
	}
	prep := c.must(step(t, spec, "prep")).Artifacts.Prepared
	c.must(processTrain(t, spec, "train"))
	ev := c.must(step(t, spec, "evaluate")).Artifacts.Evaluation
	if !ev.Passed || !(ev.Metrics["auc"] >= 0.75) {
		t.Errorf("evaluation passed %v with AUC %.4f; want the gate auc >= 0.75 passed", ev.Passed, ev.Metrics["auc"])
	}
	mref := c.must(step(t, spec, "register")).Artifacts.Model
	scored := c.must(step(t, spec, "score")).Artifacts.Scored
	out := readParquet(t, scored.URI)
	raw := readParquet(t, ds.URI)
	if got, want := strs(t, out, "customer_id"), strs(t, raw, "customer_id"); !slices.Equal(got, want) {
		t.Errorf("customer_id passthrough differs from the input")
	}

	m, err := model.Load(mustPath(t, mref.BundleURI))
	if err != nil {
		t.Fatal(err)
	}
	tr := m.Manifest.Transforms
	var inputs []string
	for _, f := range tr.Inputs {
		inputs = append(inputs, f.Name)
	}
	wantInputs := []string{"tenure", "monthly_charges", "total_charges", "plan", "contract", "support_calls", "region", "paperless"}
	if !slices.Equal(inputs, wantInputs) {
		t.Errorf("bundle inputs %v, want %v (customer_id excluded, churned the target)", inputs, wantInputs)
	}
	if !slices.Equal(tr.Features, prep.Features) {
		t.Errorf("bundle features %v, preprocess reported %v", tr.Features, prep.Features)
	}

	// The fitted steps, per column, in the order churn.yaml lists them.
	byColumn := map[string][]transform.Step{}
	for _, s := range tr.Steps {
		byColumn[s.Column] = append(byColumn[s.Column], s)
	}
	kinds := func(col string) []string {
		var k []string
		for _, s := range byColumn[col] {
			k = append(k, s.Kind+"/"+s.Strategy)
		}
		return k
	}
	wantKinds := map[string][]string{
		"tenure":          {"impute/median", "standardize/"},
		"total_charges":   {"impute/median", "standardize/"},
		"monthly_charges": {"standardize/"},
		"support_calls":   {"standardize/"},
		"paperless":       {"standardize/"},
		"region":          {"impute/most_frequent", "onehot/"},
		"plan":            {"onehot/"},
		"contract":        {"onehot/"},
	}
	for col, want := range wantKinds {
		if got := kinds(col); !slices.Equal(got, want) {
			t.Errorf("column %s: fitted steps %v, want %v", col, got, want)
		}
	}
	if cats := byColumn["plan"][0].Categories; !sameSet(cats, []string{"basic", "standard", "premium"}) {
		t.Errorf("plan categories %v", cats)
	}
	region := byColumn["region"]
	if region[0].Text == nil || !slices.Contains(region[1].Categories, *region[0].Text) {
		t.Fatalf("region imputed with %v, categories %v", region[0].Text, region[1].Categories)
	}
	tenure := byColumn["tenure"]

	// The fill value is the median of the training tenures. Adding copies
	// of a median keeps it the median, so the median of the imputed and
	// standardised training column, mapped back to months, is the fill value.
	train := readParquet(t, prep.TrainURI)
	months := floats(t, train, "tenure")
	for i, v := range months {
		months[i] = v*tenure[1].Std + tenure[1].Mean
	}
	if med := median(months); tenure[0].Number == nil || math.Abs(*tenure[0].Number-med) > 1e-9 {
		t.Errorf("tenure imputed with %v, want the training median %v", tenure[0].Number, med)
	}

	// Missing tenure and region are imputed; plan and region are one-hot.
	x, err := tr.ApplyRows([]map[string]any{{
		"tenure": nil, "monthly_charges": 70.0, "total_charges": nil, "plan": "premium",
		"contract": "two-year", "support_calls": 1.0, "region": nil, "paperless": true,
	}})
	if err != nil {
		t.Fatalf("applying the bundle's transforms: %v", err)
	}
	feature := func(name string) float64 {
		j := tr.FeatureIndex(name)
		if j < 0 {
			t.Fatalf("no feature %q in %v", name, tr.Features)
		}
		return x.Cols[j][0]
	}
	if got, want := feature("tenure"), (*tenure[0].Number-tenure[1].Mean)/tenure[1].Std; got != want {
		t.Errorf("missing tenure became %v, want the standardised median %v", got, want)
	}
	for _, cat := range region[1].Categories {
		want := 0.0
		if cat == *region[0].Text {
			want = 1
		}
		if got := feature(transform.OnehotFeature("region", cat)); got != want {
			t.Errorf("missing region: feature region=%s is %v, want %v", cat, got, want)
		}
	}
	for _, cat := range byColumn["plan"][0].Categories {
		want := 0.0
		if cat == "premium" {
			want = 1
		}
		if got := feature(transform.OnehotFeature("plan", cat)); got != want {
			t.Errorf("plan premium: feature plan=%s is %v, want %v", cat, got, want)
		}
	}
	for j, col := range x.Cols {
		if math.IsNaN(col[0]) {
			t.Errorf("feature %s is NaN after the transforms", tr.Features[j])
		}
	}
}

func mustPath(t *testing.T, uri string) string {
	t.Helper()
	p, err := artifact.Path(uri, "")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	i := strings.Index(s, old)
	if i < 0 {
		t.Fatalf("%q not found", old)
	}
	return s[:i] + new + s[i+len(old):]
}

// median is the median of xs (which it sorts).
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
