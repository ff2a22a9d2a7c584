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

func TestDeploymentShadowAndExperiment(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r, _ := b.open(t)
		ctx := context.Background()
		d := Deployment{Model: "churn", StableVersion: 1, StableURI: "file:///b/1", ShadowVersion: 2, ShadowURI: "file:///b/2", Experiment: `{"name":"e"}`}
		if err := r.SetDeployment(ctx, d); err != nil {
			t.Fatal(err)
		}
		got, err := r.Deployments(ctx)
		if err != nil || len(got) != 1 || got[0].ShadowVersion != 2 || got[0].ShadowURI != d.ShadowURI || got[0].Experiment != d.Experiment {
			t.Fatalf("deployments = %+v, %v", got, err)
		}
		if err := r.SetDeployment(ctx, Deployment{Model: "churn", StableVersion: 1, StableURI: "u", ShadowVersion: 2}); !errors.Is(err, ErrInvalid) {
			t.Errorf("shadow without a bundle: %v, want ErrInvalid", err)
		}
	})
}

func TestExperiments(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		r, _ := b.open(t)
		ctx := context.Background()
		e, err := r.CreateExperiment(ctx, Experiment{Name: "pricing", Model: "churn", Definition: `{"key":"header:X-User"}`, StartedBy: "ada"})
		if err != nil || e.StartedAt.IsZero() || !e.Running() {
			t.Fatalf("create: %+v, %v", e, err)
		}
		if _, err := r.CreateExperiment(ctx, Experiment{Name: "pricing", Model: "churn", Definition: "{}"}); !errors.Is(err, ErrConflict) {
			t.Errorf("second create: %v, want ErrConflict", err)
		}
		if _, err := r.CreateExperiment(ctx, Experiment{Name: "Bad Name", Model: "churn", Definition: "{}"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("bad name: %v, want ErrInvalid", err)
		}
		if _, err := r.Experiment(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown: %v, want ErrNotFound", err)
		}
		s, err := r.StopExperiment(ctx, "pricing", "kept treatment")
		if err != nil || s.Running() || s.Outcome != "kept treatment" || s.Definition != e.Definition || s.StartedBy != "ada" {
			t.Fatalf("stop: %+v, %v", s, err)
		}
		if _, err := r.StopExperiment(ctx, "pricing", "again"); !errors.Is(err, ErrConflict) {
			t.Errorf("second stop: %v, want ErrConflict", err)
		}
		if _, err := r.StopExperiment(ctx, "nope", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("stop unknown: %v, want ErrNotFound", err)
		}
		all, err := r.Experiments(ctx)
		if err != nil || len(all) != 1 || all[0].Outcome != "kept treatment" {
			t.Fatalf("list: %+v, %v", all, err)
		}
	})
}
