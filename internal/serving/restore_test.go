package serving

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/internal/registry"
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
	uri1, _ := churnBundle(t, 1)
	uri2, _ := churnBundle(t, 2)
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
	exp := Experiment{Name: "e", Key: "header:X-User", Variants: []Variant{{Name: "a", Version: 1, BundleURI: uri1, Weight: 1}, {Name: "b", Version: 2, BundleURI: uri2, Weight: 3}}}
	if err := reg.SetDeployment(ctx, registry.Deployment{Model: "tested", StableVersion: 1, StableURI: uri1, Experiment: mustJSON(t, exp)}); err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, Options{})
	if err := s.Restore(ctx, reg, "production"); err != nil {
		t.Fatal(err)
	}
	got, ok := s.status("churn")
	if !ok || got.Deployment.Canary == nil || got.Deployment.Canary.Version != 2 || got.Deployment.CanaryPercent != 25 || got.Deployment.Stable.Version != 1 {
		t.Errorf("churn restored as %+v, want v1 with canary v2 at 25%%", got.Deployment)
	}
	got, ok = s.status("other")
	if !ok || got.Deployment.Canary != nil || got.Deployment.Stable.Version != 1 {
		t.Errorf("other restored as %+v, want the alias's v1", got.Deployment)
	}
	got, _ = s.status("shadowed")
	if got.Deployment.Shadow == nil || got.Deployment.Shadow.Version != 2 {
		t.Errorf("shadowed restored as %+v, want v1 with shadow v2", got.Deployment)
	}
	got, _ = s.status("tested")
	if e := got.Deployment.Experiment; e == nil || len(e.Variants) != 2 || e.Variants[1].Weight != 3 || got.Deployment.Stable.Version != 1 {
		t.Errorf("tested restored as %+v, want experiment e", got.Deployment)
	}
}
