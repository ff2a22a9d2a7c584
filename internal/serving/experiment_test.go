package serving

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	grpcmd "google.golang.org/grpc/metadata"

	"github.com/kiln-ml/kiln/internal/serving/inferencepb"
)

func abExperiment(uri1, uri2, uri3 string) *Experiment {
	return &Experiment{Name: "pricing", Key: "header:X-User-ID", Variants: []Variant{
		{Name: "control", Version: 1, BundleURI: uri1, Weight: 50},
		{Name: "treatment", Version: 2, BundleURI: uri2, Weight: 30},
		{Name: "bold", Version: 3, BundleURI: uri3, Weight: 20},
	}}
}

func TestExperimentStickyAssignment(t *testing.T) {
	uri1, dir1 := churnBundle(t, 1)
	uri2, dir2 := churnBundle(t, 2)
	uri3, dir3 := churnBundle(t, 3)
	exp := abExperiment(uri1, uri2, uri3)
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", Deployment{Experiment: exp})
	h := s.Handler()
	body := predictV1Body(t, instances[:1])
	want := map[string][]float64{
		"control":   wantPredictions(t, dir1, instances[:1]),
		"treatment": wantPredictions(t, dir2, instances[:1]),
		"bold":      wantPredictions(t, dir3, instances[:1]),
	}
	versions := map[string]int64{"control": 1, "treatment": 2, "bold": 3}
	counts := map[string]int{}
	const users = 3000
	for u := range users {
		key := fmt.Sprintf("user-%d", u)
		var first string
		for try := range 2 { // the same key twice: the same variant
			req := httptest.NewRequest("POST", "/v1/models/churn:predict", strings.NewReader(body))
			req.Header.Set("x-user-id", key) // header names match in any case
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				t.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			got := decode[PredictResponse](t, rec)
			if try == 0 {
				first = got.Variant
				counts[got.Variant]++
			} else if got.Variant != first {
				t.Fatalf("key %s met %s, then %s", key, first, got.Variant)
			}
			if got.Variant != exp.AssignVariant(key) {
				t.Fatalf("key %s served by %s, AssignVariant says %s", key, got.Variant, exp.AssignVariant(key))
			}
			if got.ModelVersion != versions[got.Variant] {
				t.Fatalf("variant %s answered as v%d", got.Variant, got.ModelVersion)
			}
			if err := samePredictions(got.Predictions, want[got.Variant]); err != nil {
				t.Fatalf("variant %s: %v", got.Variant, err)
			}
		}
	}
	// Shares within 4 standard deviations of the weights.
	for name, w := range map[string]float64{"control": 0.5, "treatment": 0.3, "bold": 0.2} {
		sd := math.Sqrt(w * (1 - w) * users)
		if d := math.Abs(float64(counts[name]) - w*users); d > 4*sd {
			t.Errorf("%s got %d of %d keys, want about %.0f (±%.0f)", name, counts[name], users, w*users, 4*sd)
		}
	}
	st, _ := s.Stats("churn")
	var total int64
	for _, v := range st.Variants {
		total += v.Requests
	}
	if total != 2*users {
		t.Errorf("stats count %d requests, want %d", total, 2*users)
	}
}

func TestExperimentFieldKeyAndUnkeyed(t *testing.T) {
	uri1, _ := churnBundle(t, 1)
	uri2, _ := churnBundle(t, 2)
	exp := &Experiment{Name: "e1", Key: "field:customer_id", Variants: []Variant{
		{Name: "a", Version: 1, BundleURI: uri1, Weight: 1},
		{Name: "b", Version: 2, BundleURI: uri2, Weight: 1},
	}}
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", Deployment{Experiment: exp})
	h := s.Handler()
	for _, id := range []any{"c-17", 42.0, "zz"} {
		row := map[string]any{"plan": "pro", "tenure": 3.0, "charges": 20.25, "customer_id": id}
		rec := serve(t, h, "POST", "/v1/models/churn:predict", predictV1Body(t, []map[string]any{row}), "")
		got := decode[PredictResponse](t, rec)
		if want := exp.AssignVariant(fmt.Sprint(id)); got.Variant != want {
			t.Errorf("customer_id %v served by %s, want %s", id, got.Variant, want)
		}
	}
	// v2 with the key as a header is unkeyed for a field experiment.
	for range 5 {
		rec := serve(t, h, "POST", "/v1/models/churn:predict", predictV1Body(t, instances[:1]), "")
		if rec.Code != http.StatusOK {
			t.Fatalf("unkeyed request: %d %s", rec.Code, rec.Body)
		}
	}
	metrics := serve(t, h, "GET", "/metrics", "", "").Body.String()
	if !hasLine(metrics, `kiln_experiment_unkeyed_total{experiment="e1",model="churn"} 5`) {
		t.Errorf("metrics lack 5 unkeyed requests:\n%s", grepLines(metrics, "kiln_experiment"))
	}
	// The versioned v2 route reaches a variant by its version.
	rec := serve(t, h, "POST", "/v2/models/churn/versions/2/infer", v2Body(t, "", instances[:1]), "")
	if rec.Code != http.StatusOK {
		t.Fatalf("v2 infer on variant b's version: %d %s", rec.Code, rec.Body)
	}
}

func TestExperimentRejected(t *testing.T) {
	uri1, _ := churnBundle(t, 1)
	uri2, _ := churnBundle(t, 2)
	ok := func() *Experiment {
		return &Experiment{Name: "e", Key: "header:X-User", Variants: []Variant{
			{Name: "a", Version: 1, BundleURI: uri1, Weight: 1}, {Name: "b", Version: 2, BundleURI: uri2, Weight: 1}}}
	}
	tests := []struct {
		name string
		edit func(d *Deployment)
		want string
	}{
		{"one variant", func(d *Deployment) { d.Experiment.Variants = d.Experiment.Variants[:1] }, "at least two variants"},
		{"bad key", func(d *Deployment) { d.Experiment.Key = "cookie:x" }, `want "header:NAME" or "field:NAME"`},
		{"zero weight", func(d *Deployment) { d.Experiment.Variants[1].Weight = 0 }, "weight 0 is outside"},
		{"reserved name", func(d *Deployment) { d.Experiment.Variants[0].Name = "canary" }, "reserved"},
		{"same name", func(d *Deployment) { d.Experiment.Variants[1].Name = "a" }, "used twice"},
		{"with canary", func(d *Deployment) { d.Canary = &Target{Version: 2, BundleURI: uri2}; d.CanaryPercent = 5 }, "not both"},
		{"missing bundle", func(d *Deployment) { d.Experiment.Variants[1].BundleURI = "file:///nowhere" }, "loading variant b (v2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Options{})
			d := Deployment{Experiment: ok()}
			tt.edit(&d)
			err := s.SetDeployment("churn", d)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestShadowMirrorsAndCompares(t *testing.T) {
	uri1, dir1 := churnBundle(t, 1)
	uri2, dir2 := churnBundle(t, 2)
	s := newTestServer(t, Options{})
	d := stable(1, uri1)
	d.Shadow = &Target{Version: 2, BundleURI: uri2}
	deploy(t, s, "churn", d)
	h := s.Handler()
	const n = 200
	agree := 0
	for i := range n {
		rows := instances[i%len(instances) : i%len(instances)+1]
		rec := serve(t, h, "POST", "/v1/models/churn:predict", predictV1Body(t, rows), "")
		got := decode[PredictResponse](t, rec)
		if got.ModelVersion != 1 || got.Variant != "stable" {
			t.Fatalf("answered by v%d %s: a shadow must never answer", got.ModelVersion, got.Variant)
		}
		if err := samePredictions(got.Predictions, wantPredictions(t, dir1, rows)); err != nil {
			t.Fatal(err)
		}
		if Agree(got.Predictions[0], wantPredictions(t, dir2, rows)[0], true) {
			agree++
		}
	}
	var sh ShadowStats
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _ := s.Stats("churn")
		if len(st.Shadows) == 1 && st.Shadows[0].Requests == n {
			sh = st.Shadows[0]
			if len(st.Variants) != 1 || st.Variants[0].Version != 1 || st.Variants[0].Requests != n {
				t.Fatalf("variants %+v: the shadow's traffic must not count as served", st.Variants)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("shadow stats %+v after 10 s, want %d mirrored requests", st.Shadows, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if sh.Version != 2 || sh.Rows != n || sh.Errors != 0 || sh.Dropped != 0 || sh.Agreements != int64(agree) {
		t.Errorf("shadow stats %+v, want v2, %d rows, %d agreements", sh, n, agree)
	}
	if sh.Values.Count != n || sh.LiveValues.Count != n || sh.Latency.Count != n || sh.LiveLatency.Count != n {
		t.Errorf("histogram counts %v %v %v %v, want %d each", sh.Values.Count, sh.LiveValues.Count, sh.Latency.Count, sh.LiveLatency.Count, n)
	}
	if agree == 0 || agree == n {
		t.Logf("note: the two bundles agree on %d of %d rows", agree, n)
	}
	// Removing the shadow stops mirroring; its counters stay readable.
	deploy(t, s, "churn", stable(1, uri1))
	serve(t, h, "POST", "/v1/models/churn:predict", predictV1Body(t, instances[:1]), "")
	time.Sleep(50 * time.Millisecond)
	if st, _ := s.Stats("churn"); len(st.Shadows) != 1 || st.Shadows[0].Requests != n {
		t.Errorf("after removing the shadow: %+v", st.Shadows)
	}
}

func TestAgree(t *testing.T) {
	tests := []struct {
		live, shadow float64
		binary       bool
		want         bool
	}{
		{0.49, 0.2, true, true},
		{0.49, 0.5, true, false},
		{0.9, 0.51, true, true},
		{100, 104.9, false, true},
		{100, 106, false, false},
		{-100, -95.5, false, true},
		{0, 0, false, true},
		{0, 1e-6, false, false},
	}
	for _, tt := range tests {
		if got := Agree(tt.live, tt.shadow, tt.binary); got != tt.want {
			t.Errorf("Agree(%v, %v, %v) = %v, want %v", tt.live, tt.shadow, tt.binary, got, tt.want)
		}
	}
}

// grepLines returns text's lines containing sub.
func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestExperimentGRPCMetadata: over gRPC the assignment key is read from the
// request's metadata, as a header is over HTTP.
func TestExperimentGRPCMetadata(t *testing.T) {
	uri1, _ := churnBundle(t, 1)
	uri2, _ := churnBundle(t, 2)
	exp := &Experiment{Name: "g", Key: "header:X-User-ID", Variants: []Variant{
		{Name: "a", Version: 1, BundleURI: uri1, Weight: 1}, {Name: "b", Version: 2, BundleURI: uri2, Weight: 1}}}
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", Deployment{Experiment: exp})
	_, gc := serveBoth(t, s)
	seen := map[int64]bool{}
	for u := range 40 {
		key := fmt.Sprintf("user-%d", u)
		ctx := grpcmd.AppendToOutgoingContext(context.Background(), "x-user-id", key)
		resp, err := gc.ModelInfer(ctx, &inferencepb.ModelInferRequest{ModelName: "churn", Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{
			{Name: "charges", Datatype: "FP64", Shape: []int64{1}, Contents: &inferencepb.InferTensorContents{Fp64Contents: []float64{20.25}}}}})
		if err != nil {
			t.Fatal(err)
		}
		want := int64(1)
		if exp.AssignVariant(key) == "b" {
			want = 2
		}
		if resp.GetModelVersion() != fmt.Sprint(want) {
			t.Fatalf("key %s answered by v%s, want v%d", key, resp.GetModelVersion(), want)
		}
		seen[want] = true
	}
	if !seen[1] || !seen[2] {
		t.Errorf("40 keys all met one variant: %v", seen)
	}
}
