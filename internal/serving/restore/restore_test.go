package restore

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/internal/transform"
)

// TestRestore: a starting server serves the split the registry recorded
// (a canary in progress), and the alias's version for models without one.
func TestRestore(t *testing.T) {
	ctx := context.Background()
	reg, err := registry.Open(ctx, filepath.Join(t.TempDir(), "registry.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close()
	uri1, _ := testBundle(t, 1)
	uri2, _ := testBundle(t, 2)
	for _, m := range []string{"churn", "other", "shadowed", "tested"} {
		for _, uri := range []string{uri1, uri2} {
			if _, _, err := reg.Register(ctx, registry.Version{Model: m, BundleURI: uri}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := reg.SetAlias(ctx, registry.AliasMove{Model: m, Alias: "production", To: 1, Actor: "test", Reason: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.SetDeployment(ctx, registry.Deployment{Model: "churn", StableVersion: 1, StableURI: uri1, CanaryVersion: 2, CanaryURI: uri2, CanaryPercent: 25}); err != nil {
		t.Fatal(err)
	}
	if err := reg.SetDeployment(ctx, registry.Deployment{Model: "shadowed", StableVersion: 1, StableURI: uri1, ShadowVersion: 2, ShadowURI: uri2}); err != nil {
		t.Fatal(err)
	}
	exp := serving.Experiment{Name: "e", Key: "header:X-User", Variants: []serving.Variant{{Name: "a", Version: 1, BundleURI: uri1, Weight: 1}, {Name: "b", Version: 2, BundleURI: uri2, Weight: 3}}}
	if err := reg.SetDeployment(ctx, registry.Deployment{Model: "tested", StableVersion: 1, StableURI: uri1, Experiment: string(must(json.Marshal(exp)))}); err != nil {
		t.Fatal(err)
	}
	s := serving.New(serving.Options{Logger: slog.New(slog.DiscardHandler)})
	defer s.Close()
	if err := Deployments(ctx, s, reg, "production"); err != nil {
		t.Fatal(err)
	}
	got, ok := s.Status("churn")
	if !ok || got.Deployment.Canary == nil || got.Deployment.Canary.Version != 2 || got.Deployment.CanaryPercent != 25 || got.Deployment.Stable.Version != 1 {
		t.Errorf("churn restored as %+v, want v1 with canary v2 at 25%%", got.Deployment)
	}
	got, ok = s.Status("other")
	if !ok || got.Deployment.Canary != nil || got.Deployment.Stable.Version != 1 {
		t.Errorf("other restored as %+v, want the alias's v1", got.Deployment)
	}
	got, _ = s.Status("shadowed")
	if got.Deployment.Shadow == nil || got.Deployment.Shadow.Version != 2 {
		t.Errorf("shadowed restored as %+v, want v1 with shadow v2", got.Deployment)
	}
	got, _ = s.Status("tested")
	if e := got.Deployment.Experiment; e == nil || len(e.Variants) != 2 || e.Variants[1].Weight != 3 || got.Deployment.Stable.Version != 1 {
		t.Errorf("tested restored as %+v, want experiment e", got.Deployment)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// testBundle writes a linear bundle over one input x whose weight is seed.
func testBundle(t *testing.T, seed int) (uri, dir string) {
	t.Helper()
	in := []dataset.Field{{Name: "x", Type: dataset.Float64}}
	fitted := &transform.Fitted{Inputs: in, Features: []string{"x"}}
	est := must(json.Marshal(model.Linear{Type: model.EstimatorLinear, Features: []string{"x"}, Weights: []float64{float64(seed)}}))
	m := model.Manifest{
		FormatVersion: model.FormatVersion,
		Name:          "m",
		Task:          model.TaskRegression,
		Target:        "y",
		Inputs:        in,
		Transforms:    fitted,
		Estimator:     model.Estimator{Type: model.EstimatorLinear, File: model.DefaultEstimatorFile},
		Output:        model.OutputValue,
	}
	dir = filepath.Join(t.TempDir(), "bundle")
	if err := model.WriteBundle(dir, m, map[string][]byte{model.DefaultEstimatorFile: est}); err != nil {
		t.Fatal(err)
	}
	return artifact.FileURI(dir), dir
}
