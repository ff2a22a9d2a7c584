package registry

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestRejectedVersions: a rejected version is stored with its report, can
// never be aliased, and "name", "name:latest" and "name@alias" skip it while
// "name:N" still reads it.
func TestRejectedVersions(t *testing.T) {
	ctx := context.Background()
	r, _ := openTemp(t)
	report := `{"gate":"auc >= 0.8","passed":false,"auc":0.71}`
	v1 := mustRegister(t, r, Version{Model: "churn", BundleURI: "b1"})
	v2 := mustRegister(t, r, Version{Model: "churn", BundleURI: "b2", Status: StatusRejected, Report: report})
	if v1.Status != StatusReady || v2.Status != StatusRejected {
		t.Fatalf("statuses = %q, %q", v1.Status, v2.Status)
	}
	got, err := r.Get(ctx, "churn", v2.Version)
	if err != nil || got.Status != StatusRejected || got.Report != report {
		t.Fatalf("Get(rejected) = %+v, %v", got, err)
	}
	if _, err := r.SetAlias(ctx, AliasMove{Model: "churn", Alias: "production", To: v1.Version}); err != nil {
		t.Fatal(err)
	}
	_, err = r.SetAlias(ctx, AliasMove{Model: "churn", Alias: "production", To: v2.Version})
	if !errors.Is(err, ErrRejected) {
		t.Fatalf("SetAlias(rejected) = %v, want ErrRejected", err)
	}
	for _, want := range []string{"churn", "version 2", "production"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("SetAlias error %q does not name %q", err, want)
		}
	}
	if cur, _, err := r.Alias(ctx, "churn", "production"); err != nil || cur != v1.Version {
		t.Errorf("production = %d, %v after a refused move; want %d", cur, err, v1.Version)
	}
	if h, err := r.AliasHistory(ctx, "churn", ""); err != nil || len(h) != 1 {
		t.Errorf("history = %+v, %v; the refused move must not be recorded", h, err)
	}
	for ref, want := range map[string]int64{"churn": 1, "churn:latest": 1, "churn@production": 1, "churn:2": 2} {
		v, err := r.Resolve(ctx, ref)
		if err != nil || v.Version != want {
			t.Errorf("Resolve(%s) = %d, %v; want %d", ref, v.Version, err, want)
		}
	}
	// A model whose only version is rejected has no latest.
	mustRegister(t, r, Version{Model: "fraud", BundleURI: "f1", Status: StatusRejected})
	if _, err := r.Resolve(ctx, "fraud:latest"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(fraud:latest) = %v, want ErrNotFound", err)
	}
	// Bad status or report.
	for _, v := range []Version{
		{Model: "churn", BundleURI: "b", Status: "maybe"},
		{Model: "churn", BundleURI: "b", Report: "{not json"},
	} {
		if _, _, err := r.Register(ctx, v); !errors.Is(err, ErrInvalid) {
			t.Errorf("Register(%+v) = %v, want ErrInvalid", v, err)
		}
	}
}
