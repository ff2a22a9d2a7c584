package serving

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestPredictV1 checks that the v1 route answers the bundle's own
// predictions, bit for bit, with the model's name, version and variant.
func TestPredictV1(t *testing.T) {
	uri, dir := churnBundle(t, 1)
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", stable(7, uri))

	rec := serve(t, s.Handler(), "POST", "/v1/models/churn:predict", predictV1Body(t, instances), "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := decode[PredictResponse](t, rec)
	if err := samePredictions(got.Predictions, wantPredictions(t, dir, instances)); err != nil {
		t.Error(err)
	}
	if got.ModelName != "churn" || got.ModelVersion != 7 || got.Variant != "stable" {
		t.Errorf("answer names %s v%d %s, want churn v7 stable", got.ModelName, got.ModelVersion, got.Variant)
	}
}

// TestPredictV1Errors checks the status and message of bad v1 requests.
func TestPredictV1Errors(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	s := newTestServer(t, Options{MaxInstances: 3})
	deploy(t, s, "churn", stable(1, uri))
	ok := `{"plan":"pro","tenure":3,"charges":20.5,"discount":0.1,"active":true}`
	tests := []struct {
		name    string
		path    string
		body    string
		code    int
		wantMsg []string // substrings of the error message
	}{
		{"unknown model", "/v1/models/nope:predict", `{"instances":[` + ok + `]}`, 404, []string{`"nope"`}},
		{"no predict verb", "/v1/models/churn", `{"instances":[` + ok + `]}`, 404, []string{":predict"}},
		{"other verb", "/v1/models/churn:explain", `{"instances":[` + ok + `]}`, 404, []string{":predict"}},
		{"truncated JSON", "/v1/models/churn:predict", `{"instances":[` + ok, 400, []string{"decoding request body"}},
		{"not JSON", "/v1/models/churn:predict", `instances=1`, 400, []string{"decoding request body"}},
		{"trailing data", "/v1/models/churn:predict", `{"instances":[` + ok + `]} {"instances":[]}`, 400, []string{"decoding request body"}},
		{"empty body", "/v1/models/churn:predict", ``, 400, []string{"decoding request body"}},
		{"body is an array", "/v1/models/churn:predict", `[` + ok + `]`, 400, []string{"decoding request body"}},
		{"instance is not an object", "/v1/models/churn:predict", `{"instances":[1]}`, 400, []string{"decoding request body"}},
		{"no instances", "/v1/models/churn:predict", `{}`, 400, []string{`no "instances"`}},
		{"null instances", "/v1/models/churn:predict", `{"instances":null}`, 400, []string{`no "instances"`}},
		{"empty instances", "/v1/models/churn:predict", `{"instances":[]}`, 400, []string{`no "instances"`}},
		{"string for int", "/v1/models/churn:predict", `{"instances":[{"tenure":"three","charges":1}]}`, 400, []string{`"tenure"`, "want a number", `"three"`}},
		{"string for float", "/v1/models/churn:predict", `{"instances":[{"charges":"1.5"}]}`, 400, []string{`"charges"`, "want a number"}},
		{"number for bool", "/v1/models/churn:predict", `{"instances":[{"charges":1,"active":1}]}`, 400, []string{`"active"`, "want a bool"}},
		{"number for string", "/v1/models/churn:predict", `{"instances":[{"charges":1,"plan":3}]}`, 400, []string{`"plan"`, "want a string"}},
		{"object for number", "/v1/models/churn:predict", `{"instances":[{"charges":{"v":1}}]}`, 400, []string{`"charges"`, "an object"}},
		{"row index named", "/v1/models/churn:predict", `{"instances":[` + ok + `,{"charges":1,"discount":[1]}]}`, 400, []string{"row 1", `"discount"`}},
		{"missing required column", "/v1/models/churn:predict", `{"instances":[{"plan":"pro","tenure":3}]}`, 400, []string{`"charges" is missing`}},
		{"null required column", "/v1/models/churn:predict", `{"instances":[` + ok + `,{"charges":null}]}`, 400, []string{`"charges" is missing`, "row 1"}},
		{"empty instance", "/v1/models/churn:predict", `{"instances":[{}]}`, 400, []string{`"charges" is missing`}},
		{"number out of range", "/v1/models/churn:predict", `{"instances":[{"charges":1e400}]}`, 400, []string{"decoding request body"}},
		{"too many instances", "/v1/models/churn:predict", `{"instances":[` + strings.Repeat(ok+",", 3) + ok + `]}`, 413, []string{"4 instances", "at most 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, s.Handler(), "POST", tt.path, tt.body, "")
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			msg := errorOf(t, rec)
			for _, want := range tt.wantMsg {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
		})
	}
}

// TestPredictBodyTooLarge checks that a body over the 32 MiB limit is
// refused with 413, not read to the end.
func TestPredictBodyTooLarge(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", stable(1, uri))
	body := `{"instances":[{"plan":"` + strings.Repeat("x", 33<<20) + `"}]}`
	for _, path := range []string{"/v1/models/churn:predict", "/v2/models/churn/infer"} {
		rec := serve(t, s.Handler(), "POST", path, body, "")
		if rec.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("%s: status %d, want 413: %.200s", path, rec.Code, rec.Body)
			continue
		}
		if msg := errorOf(t, rec); !strings.Contains(msg, "too large") {
			t.Errorf("%s: error %q does not say the body is too large", path, msg)
		}
	}
}

// TestPredictV1AbsentOptionalColumns checks that absent or null inputs
// that the bundle imputes are served, while an absent input the bundle
// cannot impute is not (see TestPredictV1Errors).
func TestPredictV1AbsentOptionalColumns(t *testing.T) {
	uri, dir := churnBundle(t, 2)
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", stable(1, uri))
	rows := []map[string]any{{"charges": 12.5}, {"charges": 12.5, "plan": nil, "tenure": nil, "discount": nil, "active": nil}}
	rec := serve(t, s.Handler(), "POST", "/v1/models/churn:predict", predictV1Body(t, rows), "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := decode[PredictResponse](t, rec)
	if err := samePredictions(got.Predictions, wantPredictions(t, dir, rows)); err != nil {
		t.Error(err)
	}
	if got.Predictions[0] != got.Predictions[1] {
		t.Errorf("absent and null inputs predict %v and %v, want the same", got.Predictions[0], got.Predictions[1])
	}
}

// v2Response is the Open Inference Protocol answer.
type v2Response struct {
	ID           string `json:"id"`
	ModelName    string `json:"model_name"`
	ModelVersion string `json:"model_version"`
	Parameters   struct {
		PredictionIDs []string `json:"prediction_ids"`
	} `json:"parameters"`
	Outputs []v2Tensor `json:"outputs"`
}

// v2Body builds an infer request with one tensor per column of rows, of
// the column's datatype (null for a missing value).
func v2Body(t *testing.T, id string, rows []map[string]any) string {
	t.Helper()
	var inputs []v2Tensor
	for _, f := range churnInputs {
		in := v2Tensor{Name: f.Name, Shape: []int{len(rows)}, Datatype: datatypeOf(f.Type)}
		for _, r := range rows {
			in.Data = append(in.Data, r[f.Name])
		}
		inputs = append(inputs, in)
	}
	return mustJSON(t, map[string]any{"id": id, "inputs": inputs})
}

// TestInferV2 checks that the Open Inference Protocol route answers the
// same predictions as the bundle, in one FP64 output tensor.
func TestInferV2(t *testing.T) {
	uri, dir := churnBundle(t, 1)
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", stable(3, uri))

	rec := serve(t, s.Handler(), "POST", "/v2/models/churn/infer", v2Body(t, "req-1", instances), "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := decode[v2Response](t, rec)
	if got.ID != "req-1" || got.ModelName != "churn" || got.ModelVersion != "3" {
		t.Errorf("answer is id %q, %s v%s; want req-1, churn v3", got.ID, got.ModelName, got.ModelVersion)
	}
	if len(got.Outputs) != 1 {
		t.Fatalf("%d outputs, want 1", len(got.Outputs))
	}
	out := got.Outputs[0]
	if out.Name != "prediction" || out.Datatype != "FP64" || len(out.Shape) != 1 || out.Shape[0] != len(instances) {
		t.Errorf("output is %s %s %v, want prediction FP64 [%d]", out.Name, out.Datatype, out.Shape, len(instances))
	}
	preds := make([]float64, len(out.Data))
	for i, v := range out.Data {
		preds[i], _ = v.(float64)
	}
	if err := samePredictions(preds, wantPredictions(t, dir, instances)); err != nil {
		t.Error(err)
	}
}

// TestInferV2Errors checks the status and message of bad v2 requests.
func TestInferV2Errors(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	s := newTestServer(t, Options{MaxInstances: 3})
	deploy(t, s, "churn", stable(1, uri))
	tests := []struct {
		name    string
		path    string
		body    string
		code    int
		wantMsg []string
	}{
		{"unknown model", "/v2/models/nope/infer", `{"inputs":[{"name":"charges","data":[1]}]}`, 404, []string{`"nope"`}},
		{"mismatched lengths", "/v2/models/churn/infer", `{"inputs":[{"name":"charges","data":[1,2]},{"name":"tenure","data":[1]}]}`, 400, []string{`"tenure"`, "1 values", "others have 2"}},
		{"mismatched lengths, empty second", "/v2/models/churn/infer", `{"inputs":[{"name":"charges","data":[1]},{"name":"tenure","data":[]}]}`, 400, []string{`"tenure"`}},
		{"no inputs", "/v2/models/churn/infer", `{"inputs":[]}`, 400, []string{"no inputs"}},
		{"no data", "/v2/models/churn/infer", `{"inputs":[{"name":"charges","data":[]}]}`, 400, []string{"no inputs"}},
		{"malformed", "/v2/models/churn/infer", `{"inputs":`, 400, []string{"decoding request body"}},
		{"data is not an array", "/v2/models/churn/infer", `{"inputs":[{"name":"charges","data":1}]}`, 400, []string{"decoding request body"}},
		{"wrong type", "/v2/models/churn/infer", `{"inputs":[{"name":"charges","data":[1]},{"name":"active","data":["yes"]}]}`, 400, []string{`"active"`, "want a bool"}},
		{"missing required input", "/v2/models/churn/infer", `{"inputs":[{"name":"tenure","data":[1]}]}`, 400, []string{`"charges" is missing`}},
		{"too many rows", "/v2/models/churn/infer", `{"inputs":[{"name":"charges","data":[1,2,3,4]}]}`, 413, []string{"4 rows", "at most 3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(t, s.Handler(), "POST", tt.path, tt.body, "")
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			msg := errorOf(t, rec)
			for _, want := range tt.wantMsg {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
		})
	}
}

// TestAdminAuth checks the bearer token guard of the admin routes.
func TestAdminAuth(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	dep := mustJSON(t, stable(1, uri))
	tests := []struct {
		name   string
		token  string // the server's
		method string
		path   string
		auth   string
		code   int
	}{
		{"deploy disabled", "", "PUT", "/admin/v1/models/churn/deployment", "Bearer ", 403},
		{"deploy disabled with a token", "", "PUT", "/admin/v1/models/churn/deployment", "Bearer x", 403},
		{"stats disabled", "", "GET", "/admin/v1/models/churn/stats", "", 403},
		{"deploy no token", "s3cret", "PUT", "/admin/v1/models/churn/deployment", "", 401},
		{"deploy wrong token", "s3cret", "PUT", "/admin/v1/models/churn/deployment", "Bearer s3cre", 401},
		{"deploy longer token", "s3cret", "PUT", "/admin/v1/models/churn/deployment", "Bearer s3cret2", 401},
		{"deploy without scheme", "s3cret", "PUT", "/admin/v1/models/churn/deployment", "s3cret", 401},
		{"deploy basic scheme", "s3cret", "PUT", "/admin/v1/models/churn/deployment", "Basic s3cret", 401},
		{"stats no token", "s3cret", "GET", "/admin/v1/models/churn/stats", "", 401},
		{"stats wrong token", "s3cret", "GET", "/admin/v1/models/churn/stats", "Bearer nope", 401},
		{"deploy right token", "s3cret", "PUT", "/admin/v1/models/churn/deployment", "Bearer s3cret", 200},
		{"stats right token", "s3cret", "GET", "/admin/v1/models/churn/stats", "Bearer s3cret", 200},
		{"stats unknown model", "s3cret", "GET", "/admin/v1/models/nope/stats", "Bearer s3cret", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Options{AdminToken: tt.token})
			if strings.HasSuffix(tt.path, "churn/stats") && tt.code == 200 {
				deploy(t, s, "churn", stable(1, uri))
			}
			rec := serve(t, s.Handler(), tt.method, tt.path, dep, tt.auth)
			if rec.Code != tt.code {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if tt.code != 200 {
				errorOf(t, rec)
				if _, served := s.Stats("churn"); served && tt.method == "PUT" {
					t.Error("a refused deployment was applied")
				}
				return
			}
			if tt.method == "PUT" {
				if got := decode[map[string]bool](t, rec); !got["applied"] {
					t.Errorf("answer %s, want applied", rec.Body)
				}
				if st, ok := s.status("churn"); !ok || !st.Ready || st.Deployment.Stable.BundleURI != uri {
					t.Errorf("status after deploy: %+v", st)
				}
			} else {
				if st := decode[Stats](t, rec); st.Model != "churn" {
					t.Errorf("stats of %q, want churn", st.Model)
				}
			}
		})
	}
}

// TestDeployRejected checks that invalid deployments are refused with 400
// and leave the previous deployment serving.
func TestDeployRejected(t *testing.T) {
	uri1, _ := churnBundle(t, 1)
	uri2, _ := churnBundle(t, 2)
	broken := filepath.Join(t.TempDir(), "broken")
	if err := os.MkdirAll(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(broken, "manifest.json"), []byte(`{"format_version":1`), 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(t.TempDir(), "missing")
	canary := func(uri string, pct int) string {
		return mustJSON(t, withCanary(2, uri1, 3, uri, pct))
	}
	tests := []struct {
		name    string
		model   string
		body    string
		wantMsg []string
	}{
		{"missing bundle", "churn", mustJSON(t, stable(2, missing)), []string{"loading stable v2"}},
		{"broken bundle", "churn", mustJSON(t, stable(2, broken)), []string{"loading stable v2", "manifest.json"}},
		{"empty uri", "churn", `{"stable":{"version":2}}`, []string{"loading stable v2", "empty"}},
		{"unsupported scheme", "churn", mustJSON(t, stable(2, "s3://bucket/model")), []string{"loading stable v2", "s3"}},
		{"broken canary", "churn", canary(broken, 10), []string{"loading canary v3"}},
		{"canary over 100", "churn", canary(uri2, 101), []string{"canary_percent 101"}},
		{"canary negative", "churn", canary(uri2, -1), []string{"canary_percent -1"}},
		{"canary percent without canary", "churn", `{"stable":{"version":2,"bundle_uri":"` + uri2 + `"},"canary_percent":10}`, []string{"no canary"}},
		{"canary percent not an integer", "churn", `{"stable":{"version":2,"bundle_uri":"` + uri2 + `"},"canary_percent":12.5}`, []string{"decoding request body"}},
		{"malformed", "churn", `{"stable":`, []string{"decoding request body"}},
		{"invalid name", "Churn", mustJSON(t, stable(2, uri2)), []string{"invalid model name"}},
		{"name with a dot", "churn.v2", mustJSON(t, stable(2, uri2)), []string{"invalid model name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Options{AdminToken: "tok"})
			deploy(t, s, "churn", stable(1, uri1))
			rec := serve(t, s.Handler(), "PUT", "/admin/v1/models/"+tt.model+"/deployment", tt.body, "Bearer tok")
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", rec.Code, rec.Body)
			}
			msg := errorOf(t, rec)
			for _, want := range tt.wantMsg {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not mention %q", msg, want)
				}
			}
			rec = serve(t, s.Handler(), "POST", "/v1/models/churn:predict", predictV1Body(t, instances[:1]), "")
			if rec.Code != http.StatusOK {
				t.Fatalf("predict after the rejected deployment: status %d: %s", rec.Code, rec.Body)
			}
			if got := decode[PredictResponse](t, rec); got.ModelVersion != 1 || got.Variant != "stable" {
				t.Errorf("served by v%d %s, want v1 stable", got.ModelVersion, got.Variant)
			}
			if st, _ := s.status("churn"); st.Deployment.Stable.Version != 1 || st.Deployment.Canary != nil {
				t.Errorf("deployment changed to %+v", st.Deployment)
			}
			if _, ok := s.status(tt.model); ok && tt.model != "churn" {
				t.Errorf("model %q was created", tt.model)
			}
		})
	}
}

// TestTrafficSplit checks the canary's share of requests and the per-version
// request counters.
func TestTrafficSplit(t *testing.T) {
	uri1, _ := churnBundle(t, 1)
	uri2, _ := churnBundle(t, 2)
	tests := []struct {
		percent  int
		requests int
		lo, hi   int // accepted canary count
	}{
		// 25% of 4000 has a standard deviation of 27 requests; ±4% is 160.
		{25, 4000, 840, 1160},
		{0, 1000, 0, 0},
		{100, 1000, 1000, 1000},
		// 1% of 20000 has a standard deviation of 14; 2% would be 400.
		{1, 20000, 100, 300},
	}
	body := predictV1Body(t, instances[:1])
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d%%", tt.percent), func(t *testing.T) {
			s := newTestServer(t, Options{})
			deploy(t, s, "churn", withCanary(1, uri1, 2, uri2, tt.percent))
			h := s.Handler()
			counts := map[string]int{}
			for range tt.requests {
				rec := serve(t, h, "POST", "/v1/models/churn:predict", body, "")
				if rec.Code != http.StatusOK {
					t.Fatalf("status %d: %s", rec.Code, rec.Body)
				}
				got := decode[PredictResponse](t, rec)
				counts[fmt.Sprintf("v%d %s", got.ModelVersion, got.Variant)]++
			}
			if n := counts["v1 stable"] + counts["v2 canary"]; n != tt.requests {
				t.Fatalf("answers %v: want only v1 stable and v2 canary", counts)
			}
			if c := counts["v2 canary"]; c < tt.lo || c > tt.hi {
				t.Errorf("canary served %d of %d requests, want %d..%d", c, tt.requests, tt.lo, tt.hi)
			}
			st, ok := s.Stats("churn")
			if !ok {
				t.Fatal("no stats")
			}
			want := []VariantStats{}
			if c := counts["v1 stable"]; c > 0 {
				want = append(want, VariantStats{Version: 1, Requests: int64(c)})
			}
			if c := counts["v2 canary"]; c > 0 {
				want = append(want, VariantStats{Version: 2, Requests: int64(c)})
			}
			checkStats(t, st, want)
		})
	}
}

// checkStats compares the counters of st with want (ignoring MeanMs, which
// must be positive for versions that served requests).
func checkStats(t *testing.T, st Stats, want []VariantStats) {
	t.Helper()
	if len(st.Variants) != len(want) {
		t.Fatalf("stats %+v, want %+v", st.Variants, want)
	}
	for i, v := range st.Variants {
		w := want[i]
		if v.Version != w.Version || v.Requests != w.Requests || v.Errors != w.Errors {
			t.Errorf("stats[%d] = v%d %d requests %d errors, want v%d %d requests %d errors",
				i, v.Version, v.Requests, v.Errors, w.Version, w.Requests, w.Errors)
		}
		if v.Requests > 0 && !(v.MeanMs > 0) {
			t.Errorf("stats[%d]: mean latency %v ms", i, v.MeanMs)
		}
	}
}

// TestErrorsCountedForServingVariant checks that a request failing in the
// model counts as an error of the version that served it, through Stats,
// the admin stats route and /metrics.
func TestErrorsCountedForServingVariant(t *testing.T) {
	uri1, _ := churnBundle(t, 1)
	uri2, _ := churnBundle(t, 2)
	s := newTestServer(t, Options{AdminToken: "tok"})
	h := s.Handler()
	good := predictV1Body(t, instances[:2])
	bad := predictV1Body(t, []map[string]any{{"plan": "pro"}}) // no charges
	send := func(body string, n, code int) {
		t.Helper()
		for range n {
			if rec := serve(t, h, "POST", "/v1/models/churn:predict", body, ""); rec.Code != code {
				t.Fatalf("status %d, want %d: %s", rec.Code, code, rec.Body)
			}
		}
	}
	// All traffic to the canary: its errors are v2's.
	deploy(t, s, "churn", withCanary(1, uri1, 2, uri2, 100))
	send(good, 3, 200)
	send(bad, 2, 400)
	// No traffic to the canary: errors are v1's.
	deploy(t, s, "churn", withCanary(1, uri1, 2, uri2, 0))
	send(good, 4, 200)
	send(bad, 1, 400)
	// Requests rejected before the model runs are not counted.
	send(`{"instances":[]}`, 2, 400)
	send(`{"instances":`, 2, 400)

	want := []VariantStats{{Version: 1, Requests: 5, Errors: 1}, {Version: 2, Requests: 5, Errors: 2}}
	st, _ := s.Stats("churn")
	checkStats(t, st, want)

	rec := serve(t, h, "GET", "/admin/v1/models/churn/stats", "", "Bearer tok")
	if rec.Code != 200 {
		t.Fatalf("stats route: status %d: %s", rec.Code, rec.Body)
	}
	checkStats(t, decode[Stats](t, rec), want)

	metrics := serve(t, h, "GET", "/metrics", "", "").Body.String()
	for _, line := range []string{
		`kiln_requests_total{model="churn",variant="stable",version="1"} 5`,
		`kiln_requests_total{model="churn",variant="canary",version="2"} 5`,
		`kiln_request_errors_total{model="churn",variant="stable",version="1"} 1`,
		`kiln_request_errors_total{model="churn",variant="canary",version="2"} 2`,
		`kiln_predictions_total{model="churn",variant="stable",version="1"} 8`,
		`kiln_predictions_total{model="churn",variant="canary",version="2"} 6`,
		`kiln_request_duration_seconds_count{model="churn",variant="stable",version="1"} 5`,
		`kiln_request_duration_seconds_count{model="churn",variant="canary",version="2"} 5`,
	} {
		if !hasLine(metrics, line) {
			t.Errorf("metrics lack %q:\n%s", line, metrics)
		}
	}
}

// hasLine reports whether text has the line.
func hasLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// TestReadRoutes checks /healthz, /metrics, /v1/models and /v1/models/{name}.
func TestReadRoutes(t *testing.T) {
	uri1, _ := churnBundle(t, 1)
	uri2, _ := churnBundle(t, 2)
	s := newTestServer(t, Options{})
	h := s.Handler()

	rec := serve(t, h, "GET", "/healthz", "", "")
	if rec.Code != 200 || rec.Body.String() != "ok\n" {
		t.Errorf("healthz: %d %q", rec.Code, rec.Body)
	}
	rec = serve(t, h, "GET", "/v1/models", "", "")
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"models":[],"statuses":[]}` {
		t.Errorf("models without deployments: %d %s", rec.Code, rec.Body)
	}
	rec = serve(t, h, "GET", "/metrics", "", "")
	if rec.Code != 200 || strings.Contains(rec.Body.String(), "kiln_requests_total{") {
		t.Errorf("metrics without deployments: %d %s", rec.Code, rec.Body)
	}

	deploy(t, s, "fraud", stable(4, uri2))
	deploy(t, s, "churn", withCanary(1, uri1, 2, uri2, 30))
	for i, body := range []string{predictV1Body(t, instances[:1]), predictV1Body(t, instances[:3]), predictV1Body(t, instances[:1])} {
		path := "/v1/models/churn:predict"
		if i == 2 {
			path = "/v1/models/fraud:predict"
		}
		if rec := serve(t, h, "POST", path, body, ""); rec.Code != 200 {
			t.Fatalf("predict: %d %s", rec.Code, rec.Body)
		}
	}

	rec = serve(t, h, "GET", "/v1/models", "", "")
	if rec.Code != 200 {
		t.Fatalf("models: %d %s", rec.Code, rec.Body)
	}
	list := decode[ModelList](t, rec)
	if len(list.Models) != 2 || list.Models[0] != "churn" || list.Models[1] != "fraud" || len(list.Statuses) != 2 || list.Statuses[1].Name != "fraud" {
		t.Fatalf("models %+v, want churn and fraud", list)
	}
	ch := list.Statuses[0]
	if !ch.Ready || ch.Deployment.Stable != (Target{1, uri1}) || ch.Deployment.Canary == nil ||
		*ch.Deployment.Canary != (Target{2, uri2}) || ch.Deployment.CanaryPercent != 30 {
		t.Errorf("churn status %+v", ch)
	}

	rec = serve(t, h, "GET", "/v1/models/fraud", "", "")
	if rec.Code != 200 {
		t.Fatalf("fraud status: %d %s", rec.Code, rec.Body)
	}
	if st := decode[ModelStatus](t, rec); st.Name != "fraud" || !st.Ready || st.Deployment.Stable != (Target{4, uri2}) || st.Deployment.Canary != nil {
		t.Errorf("fraud status %+v", st)
	}
	rec = serve(t, h, "GET", "/v1/models/nope", "", "")
	if rec.Code != 404 || !strings.Contains(errorOf(t, rec), `"nope"`) {
		t.Errorf("unknown model status: %d %s", rec.Code, rec.Body)
	}

	rec = serve(t, h, "GET", "/metrics", "", "")
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("metrics Content-Type %q", ct)
	}
	metrics := rec.Body.String()
	st, _ := s.Stats("churn")
	var churnTotal int64
	for _, v := range st.Variants {
		churnTotal += v.Requests
		variant := map[int64]string{1: "stable", 2: "canary"}[v.Version]
		line := fmt.Sprintf(`kiln_requests_total{model="churn",variant="%s",version="%d"} %d`, variant, v.Version, v.Requests)
		if !hasLine(metrics, line) {
			t.Errorf("metrics lack %q:\n%s", line, metrics)
		}
	}
	if churnTotal != 2 {
		t.Errorf("churn counted %d requests, want 2", churnTotal)
	}
	for _, line := range []string{
		"# TYPE kiln_requests_total counter",
		"# TYPE kiln_request_errors_total counter",
		"# TYPE kiln_predictions_total counter",
		"# TYPE kiln_request_duration_seconds histogram",
		"# TYPE kiln_canary_percent gauge",
		`kiln_requests_total{model="fraud",variant="stable",version="4"} 1`,
		`kiln_request_errors_total{model="fraud",variant="stable",version="4"} 0`,
		`kiln_predictions_total{model="fraud",variant="stable",version="4"} 1`,
		`kiln_canary_percent{model="churn"} 30`,
		`kiln_canary_percent{model="fraud"} 0`,
	} {
		if !hasLine(metrics, line) {
			t.Errorf("metrics lack %q:\n%s", line, metrics)
		}
	}
}

// TestReadRoutesDuringFirstDeployments reads the model list, a model's
// status and the metrics while new models are being deployed: a model must
// never be visible before its deployment is in place.
func TestReadRoutesDuringFirstDeployments(t *testing.T) {
	uri, _ := churnBundle(t, 1)
	s := newTestServer(t, Options{})
	h := s.Handler()
	const models = 2000
	var next atomic.Int64 // the model being deployed
	// Listing every model is slow, so the list and metrics readers see the
	// first few hundred models only; the status readers go on to the end.
	listing := func(path string) func() string {
		return func() string {
			if next.Load() > 300 {
				return "/healthz"
			}
			return path
		}
	}
	status := func() string { return fmt.Sprintf("/v1/models/m%d", next.Load()) }
	paths := []func() string{listing("/v1/models"), listing("/metrics"), status, status}
	stop := make(chan struct{})
	var wg, started sync.WaitGroup
	for _, path := range paths {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				if i == 1 {
					started.Done()
				}
				select {
				case <-stop:
					return
				default:
				}
				p := path()
				req := httptest.NewRequest("GET", p, nil)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 && rec.Code != 404 {
					t.Errorf("%s: status %d", p, rec.Code)
				}
			}
		}()
	}
	started.Wait()
	for i := range models {
		next.Store(int64(i))
		if err := s.SetDeployment(fmt.Sprintf("m%d", i), stable(1, uri)); err != nil {
			t.Error(err)
			break
		}
		runtime.Gosched()
	}
	close(stop)
	wg.Wait()
}

// TestBundleCacheKeepsOnlyServedBundles: after a rollout the versions no
// deployment serves leave memory.
func TestBundleCacheKeepsOnlyServedBundles(t *testing.T) {
	u1, _ := churnBundle(t, 1)
	u2, _ := churnBundle(t, 2)
	u3, _ := churnBundle(t, 3)
	s := newTestServer(t, Options{AdminToken: "tok"})
	steps := []struct {
		d    Deployment
		want int
	}{
		{stable(1, u1), 1},
		{withCanary(1, u1, 2, u2, 25), 2},
		{stable(2, u2), 1},
		{withCanary(2, u2, 3, u3, 50), 2},
		{stable(3, u3), 1},
	}
	for i, st := range steps {
		deploy(t, s, "churn", st.d)
		if got := s.cache.size(); got != st.want {
			t.Errorf("step %d: %d bundles cached, want %d", i, got, st.want)
		}
	}
}
