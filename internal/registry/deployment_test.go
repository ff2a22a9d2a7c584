package registry

import (
	"context"
	"errors"
	"testing"
)

func TestDeployments(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r, _ := b.open(t)
		ctx := context.Background()
		if got, err := r.Deployments(ctx); err != nil || len(got) != 0 {
			t.Fatalf("empty registry: %v, %v", got, err)
		}
		d := Deployment{Model: "churn", StableVersion: 1, StableURI: "file:///b/1", CanaryVersion: 2, CanaryURI: "file:///b/2", CanaryPercent: 10, RunID: "canary/churn"}
		if err := r.SetDeployment(ctx, d); err != nil {
			t.Fatal(err)
		}
		if err := r.SetDeployment(ctx, Deployment{Model: "a", StableVersion: 3, StableURI: "file:///a/3"}); err != nil {
			t.Fatal(err)
		}
		d.StableVersion, d.StableURI, d.CanaryVersion, d.CanaryURI, d.CanaryPercent = 2, "file:///b/2", 0, "", 0
		if err := r.SetDeployment(ctx, d); err != nil {
			t.Fatal(err)
		}
		got, err := r.Deployments(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].Model != "a" || got[1].StableVersion != 2 || got[1].CanaryVersion != 0 || got[1].CanaryPercent != 0 || got[1].UpdatedAt.IsZero() || got[1].RunID != "canary/churn" {
			t.Fatalf("deployments = %+v", got)
		}
		for _, bad := range []Deployment{
			{Model: "x"},
			{Model: "x", StableVersion: 1, StableURI: "u", CanaryPercent: 10},
			{Model: "x", StableVersion: 1, StableURI: "u", CanaryVersion: 2, CanaryURI: "v", CanaryPercent: 101},
		} {
			if err := r.SetDeployment(ctx, bad); !errors.Is(err, ErrInvalid) {
				t.Errorf("SetDeployment(%+v) = %v, want ErrInvalid", bad, err)
			}
		}
	})
}
