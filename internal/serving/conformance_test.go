package serving

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/serving/inferencepb"
	"github.com/kiln-ml/kiln/pipelines"
)

// The conformance tests drive every REST route (KServe v1 and Open
// Inference Protocol v2, with and without /versions/{v}) over a real HTTP
// server and every gRPC RPC over a real gRPC server on 127.0.0.1, with the
// protocol's own request shapes (testdata/oip: KServe's published examples
// and Kiln's churn requests), and check status codes, whole answers and
// error bodies.

// irisInputs are the inputs of the iris test bundle, in order: the columns
// of KServe's iris examples.
var irisInputs = []dataset.Field{
	{Name: "sepal_length", Type: dataset.Float64},
	{Name: "sepal_width", Type: dataset.Float64},
	{Name: "petal_length", Type: dataset.Float64},
	{Name: "petal_width", Type: dataset.Float64},
}

// irisBundle writes a logistic bundle over the four iris measurements
// (standardized), fitted on a few rows of Fisher's iris data (is the
// flower a virginica), and returns its URI and directory.
func irisBundle(t testing.TB) (uri, dir string) {
	t.Helper()
	data := [][5]float64{
		{5.1, 3.5, 1.4, 0.2, 0}, {4.9, 3.0, 1.4, 0.2, 0}, {4.7, 3.2, 1.3, 0.2, 0}, {5.0, 3.6, 1.4, 0.2, 0},
		{7.0, 3.2, 4.7, 1.4, 0}, {6.4, 3.2, 4.5, 1.5, 0}, {6.9, 3.1, 4.9, 1.5, 0}, {5.5, 2.3, 4.0, 1.3, 0},
		{6.3, 3.3, 6.0, 2.5, 1}, {5.8, 2.7, 5.1, 1.9, 1}, {7.1, 3.0, 5.9, 2.1, 1}, {6.5, 3.0, 5.8, 2.2, 1},
	}
	fields := append(slices.Clone(irisInputs), dataset.Field{Name: "virginica", Type: dataset.Int64})
	var cols []arrow.Array
	for j := range irisInputs {
		vals := make([]float64, len(data))
		for i, r := range data {
			vals[i] = r[j]
		}
		cols = append(cols, dataset.Float64Array(vals))
	}
	ys := make([]int64, len(data))
	for i, r := range data {
		ys[i] = int64(r[4])
	}
	cols = append(cols, dataset.Int64Array(ys, nil))
	rec, err := dataset.NewRecord(dataset.Schema{Fields: fields}, cols)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cols {
		c.Release()
	}
	defer rec.Release()
	cfg := pipelines.PreprocessConfig{Target: "virginica", Transforms: []pipelines.Transform{{Kind: "standardize", Columns: []string{"*"}}}}
	return writeBundle(t, cfg, dataset.Schema{Fields: fields}, rec, func(j int) float64 { return []float64{0.4, -0.6, 1.3, 1.9}[j] }, -0.2)
}

// fixture reads testdata/oip/name.
func fixture(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "oip", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// grpcFixture reads a ModelInferRequest written in protojson.
func grpcFixture(t testing.TB, name string) *inferencepb.ModelInferRequest {
	t.Helper()
	req := &inferencepb.ModelInferRequest{}
	if err := protojson.Unmarshal([]byte(fixture(t, name)), req); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return req
}

// churnFixtureRows are the rows of the churn fixtures (churn-infer-v1.json).
func churnFixtureRows(t testing.TB) []map[string]any {
	t.Helper()
	var req struct {
		Instances []map[string]any `json:"instances"`
	}
	if err := json.Unmarshal([]byte(fixture(t, "churn-infer-v1.json")), &req); err != nil {
		t.Fatal(err)
	}
	return req.Instances
}

// churnFixtureIDs are the churn fixtures' prediction IDs.
var churnFixtureIDs = []string{"order-981", "order-982", "order-983"}

// irisRows are the rows of KServe's iris examples, rounded as a tensor of
// datatype FP32 holds them when fp32 is set.
func irisRows(fp32 bool) []map[string]any {
	vals := [][]float64{{6.8, 2.8, 4.8, 1.4}, {6.0, 3.4, 4.5, 1.6}}
	rows := make([]map[string]any, len(vals))
	for i, r := range vals {
		rows[i] = map[string]any{}
		for j, f := range irisInputs {
			x := r[j]
			if fp32 {
				x = float64(float32(x))
			}
			rows[i][f.Name] = x
		}
	}
	return rows
}

// conformance is the servers and expectations the conformance tests share:
// "churn" serves v3 stable and v4 canary (0% of the traffic, so requests
// without a version are v3's), "iris" serves v1; a second server has a
// model without a deployment ("pending").
type conformance struct {
	srv, pending           *Server
	rest, restPending      string // base URLs (FastHTTP)
	plain, plainPending    string // the same servers' base URLs through net/http alone
	grpc, grpcPending      inferencepb.GRPCInferenceServiceClient
	uri3, uri4, irisURI    string
	p3, p4                 []float64 // churn fixture predictions by v3 and v4
	iris64, iris32         []float64 // iris predictions, of FP64 and FP32 values
	churnRows              []map[string]any
	logDir                 string
	churnDir3, irisDirPath string
	closed                 bool
}

// close closes the main server (once), writing its request log.
func (c *conformance) close(t *testing.T) {
	t.Helper()
	if c.closed {
		return
	}
	c.closed = true
	if err := c.srv.Close(); err != nil {
		t.Error(err)
	}
}

func newConformance(t *testing.T) *conformance {
	t.Helper()
	c := &conformance{logDir: t.TempDir()}
	var dir4 string
	c.uri3, c.churnDir3 = churnBundle(t, 1)
	c.uri4, dir4 = churnBundle(t, 2)
	c.irisURI, c.irisDirPath = irisBundle(t)
	c.srv = New(Options{RequestLogDir: c.logDir, FlushInterval: time.Hour, MaxInstances: 100, Logger: quietLogger})
	t.Cleanup(func() { c.close(t) })
	deploy(t, c.srv, "churn", withCanary(3, c.uri3, 4, c.uri4, 0))
	deploy(t, c.srv, "iris", stable(1, c.irisURI))
	c.pending = newTestServer(t, Options{})
	// A model listed before its deployment is in place: SetDeployment never
	// leaves one so, but the protocol's "not ready" answers are for it.
	c.pending.models["pending"] = &served{name: "pending", vars: map[variantKey]*variantMetrics{}}

	c.rest, c.grpc = serveBoth(t, c.srv)
	c.restPending, c.grpcPending = serveBoth(t, c.pending)
	c.plain, c.plainPending = servePlain(t, c.srv), servePlain(t, c.pending)

	c.churnRows = churnFixtureRows(t)
	c.p3 = wantPredictions(t, c.churnDir3, c.churnRows)
	c.p4 = wantPredictions(t, dir4, c.churnRows)
	c.iris64 = wantPredictions(t, c.irisDirPath, irisRows(false))
	c.iris32 = wantPredictions(t, c.irisDirPath, irisRows(true))
	if slices.Equal(c.p3, c.p4) || slices.Equal(c.iris32, c.iris64) {
		t.Fatal("the fixtures do not tell versions or FP32 rounding apart")
	}
	return c
}

// servePlain serves s.Handler() with net/http alone on loopback until the
// test ends, and returns its base URL.
func servePlain(t *testing.T, s *Server) string {
	t.Helper()
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

// serveFast serves s with FastHTTP (as kiln serve does) on loopback until
// the test ends, and returns it and its base URL.
func serveFast(t testing.TB, s *Server) (*FastHTTP, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := NewFastHTTP(s, &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second})
	served := make(chan error, 1)
	go func() { served <- fs.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := fs.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
		}
	})
	return fs, "http://" + ln.Addr().String()
}

// serveBoth serves s over HTTP (FastHTTP) and gRPC on loopback until the
// test ends.
func serveBoth(t *testing.T, s *Server) (string, inferencepb.GRPCInferenceServiceClient) {
	t.Helper()
	_, rest := serveFast(t, s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := s.GRPCServer()
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return rest, inferencepb.NewGRPCInferenceServiceClient(conn)
}

// httpCall sends one request and returns the status, Content-Type and body.
func httpCall(t *testing.T, method, url, body string) (int, string, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// jsonValueOf is v as generic JSON (numbers as float64).
func jsonValueOf(t testing.TB, v any) any {
	t.Helper()
	var out any
	if err := json.Unmarshal([]byte(mustJSON(t, v)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// generatedIDs replaces the prediction IDs at the answer's key path (v1:
// "prediction_ids", v2: "parameters" "prediction_ids") with "ULID" after
// checking that they are generated IDs.
func generatedIDs(t *testing.T, answer any, path ...string) {
	t.Helper()
	m, _ := answer.(map[string]any)
	for _, k := range path[:len(path)-1] {
		m, _ = m[k].(map[string]any)
	}
	ids, _ := m[path[len(path)-1]].([]any)
	if len(ids) == 0 {
		t.Fatalf("answer has no generated IDs at %v", path)
	}
	for i, id := range ids {
		s, _ := id.(string)
		if _, ok := PredictionIDTime(s); !ok {
			t.Errorf("prediction ID %q is not a generated ID", s)
		}
		ids[i] = "ULID"
	}
}

func ulids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "ULID"
	}
	return out
}

// v2Answer is the expected v2 inference answer.
func v2Answer(id, model, version string, ids []string, preds []float64) map[string]any {
	return map[string]any{
		"id": id, "model_name": model, "model_version": version,
		"parameters": map[string]any{"prediction_ids": ids},
		"outputs":    []any{map[string]any{"name": "prediction", "datatype": "FP64", "shape": []int{len(preds)}, "data": preds}},
	}
}

// v1Answer is the expected v1 predict answer.
func v1Answer(model string, version int64, ids []string, preds []float64) PredictResponse {
	return PredictResponse{Predictions: preds, PredictionIDs: ids, ModelName: model, ModelVersion: version, Variant: "stable"}
}

// metadata is the expected v2 model metadata.
func metadata(name string, versions []string, inputs []dataset.Field) map[string]any {
	var ins []any
	for _, f := range inputs {
		ins = append(ins, map[string]any{"name": f.Name, "datatype": datatypeOf(f.Type), "shape": []int{-1}})
	}
	return map[string]any{
		"name": name, "versions": versions, "platform": "kiln_logistic", "inputs": ins,
		"outputs": []any{map[string]any{"name": "prediction", "datatype": "FP64", "shape": []int{-1}}},
	}
}

// restCase is one REST request and its expected answer.
type restCase struct {
	name    string
	pending bool // to the server with the model without a deployment
	method  string
	path    string
	body    string // a JSON body, or "@file" for testdata/oip/file
	code    int
	want    any      // the whole JSON answer, when set
	errHas  []string // for error answers: substrings of the message
	// idsAt, when set, is the key path of generated prediction IDs in
	// the answer (compared as "ULID").
	idsAt []string
}

// TestConformanceREST drives every REST route.
func TestConformanceREST(t *testing.T) {
	c := newConformance(t)
	v2IDs := []string{"parameters", "prediction_ids"}
	churn := func(version string, preds []float64) map[string]any {
		return v2Answer("req-17", "churn", version, churnFixtureIDs, preds)
	}
	churnMeta := metadata("churn", []string{"3", "4"}, churnInputs)
	matrix := func(dt string, shape string, data string) string {
		return `{"inputs":[{"name":"input-0","shape":` + shape + `,"datatype":"` + dt + `","data":` + data + `}]}`
	}
	one := func(name, dt string, data string) string {
		return `{"inputs":[{"name":"charges","shape":[1],"datatype":"FP64","data":[1]},{"name":"` + name + `","shape":[1],"datatype":"` + dt + `","data":` + data + `}]}`
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = "1"
	}
	tests := []restCase{
		// KServe v1.
		{name: "v1 live", method: "GET", path: "/", code: 200, want: map[string]any{"status": "alive"}},
		{name: "v1 list", method: "GET", path: "/v1/models", code: 200, want: map[string]any{"models": []string{"churn", "iris"}, "statuses": []ModelStatus{
			{Name: "churn", Ready: true, Deployment: withCanary(3, c.uri3, 4, c.uri4, 0)},
			{Name: "iris", Ready: true, Deployment: stable(1, c.irisURI)},
		}}},
		{name: "v1 list with a model not ready", pending: true, method: "GET", path: "/v1/models", code: 200,
			want: map[string]any{"models": []string{"pending"}, "statuses": []ModelStatus{{Name: "pending"}}}},
		{name: "v1 model ready", method: "GET", path: "/v1/models/iris", code: 200, want: ModelStatus{Name: "iris", Ready: true, Deployment: stable(1, c.irisURI)}},
		{name: "v1 model not ready", pending: true, method: "GET", path: "/v1/models/pending", code: 503, errHas: []string{`"pending" is not ready`}},
		{name: "v1 model unknown", method: "GET", path: "/v1/models/nope", code: 404, errHas: []string{`"nope"`}},
		{name: "v1 predict objects", method: "POST", path: "/v1/models/churn:predict", body: "@churn-infer-v1.json", code: 200, want: v1Answer("churn", 3, churnFixtureIDs, c.p3)},
		{name: "v1 predict arrays (KServe iris)", method: "POST", path: "/v1/models/iris:predict", body: "@iris-input-v1.json", code: 200,
			want: v1Answer("iris", 1, ulids(2), c.iris64), idsAt: []string{"prediction_ids"}},
		{name: "v1 predict array of the wrong length", method: "POST", path: "/v1/models/iris:predict", body: `{"instances":[[1,2,3]]}`, code: 400,
			errHas: []string{"instances[0] has 3 values", "4 inputs", "sepal_length, sepal_width, petal_length, petal_width"}},
		{name: "v1 predict scalar instance", method: "POST", path: "/v1/models/iris:predict", body: `{"instances":[1]}`, code: 400, errHas: []string{"instances[0] is number 1"}},
		{name: "v1 predict unknown model", method: "POST", path: "/v1/models/nope:predict", body: "@churn-infer-v1.json", code: 404, errHas: []string{`"nope"`}},
		{name: "v1 predict model not ready", pending: true, method: "POST", path: "/v1/models/pending:predict", body: `{"instances":[{"x":1}]}`, code: 503, errHas: []string{`"pending" has no deployment`}},

		// v2 health and metadata.
		{name: "v2 server live", method: "GET", path: "/v2/health/live", code: 200, want: map[string]any{"live": true}},
		{name: "v2 server ready", method: "GET", path: "/v2/health/ready", code: 200, want: map[string]any{"ready": true}},
		{name: "v2 server not ready", pending: true, method: "GET", path: "/v2/health/ready", code: 503, errHas: []string{`"pending" is not ready`}},
		{name: "v2 server metadata", method: "GET", path: "/v2", code: 200, want: map[string]any{"name": "kiln", "version": serverVersion(), "extensions": []string{}}},
		{name: "v2 model metadata", method: "GET", path: "/v2/models/churn", code: 200, want: churnMeta},
		{name: "v2 model metadata, stable version", method: "GET", path: "/v2/models/churn/versions/3", code: 200, want: churnMeta},
		{name: "v2 model metadata, canary version", method: "GET", path: "/v2/models/churn/versions/4", code: 200, want: churnMeta},
		{name: "v2 model metadata, iris", method: "GET", path: "/v2/models/iris", code: 200, want: metadata("iris", []string{"1"}, irisInputs)},
		{name: "v2 model metadata, version not deployed", method: "GET", path: "/v2/models/churn/versions/2", code: 404, errHas: []string{`"churn"`, `version "2"`, "deployed: 3, 4"}},
		{name: "v2 model metadata, unknown model", method: "GET", path: "/v2/models/nope", code: 404, errHas: []string{`"nope"`}},
		{name: "v2 model metadata, not ready", pending: true, method: "GET", path: "/v2/models/pending", code: 503, errHas: []string{`"pending" is not ready`}},
		{name: "v2 model ready", method: "GET", path: "/v2/models/churn/ready", code: 200, want: map[string]any{"name": "churn", "ready": true}},
		{name: "v2 model ready, stable version", method: "GET", path: "/v2/models/churn/versions/3/ready", code: 200, want: map[string]any{"name": "churn", "ready": true}},
		{name: "v2 model ready, canary version", method: "GET", path: "/v2/models/churn/versions/4/ready", code: 200, want: map[string]any{"name": "churn", "ready": true}},
		{name: "v2 model ready, version not deployed", method: "GET", path: "/v2/models/churn/versions/5/ready", code: 404, errHas: []string{`version "5"`}},
		{name: "v2 model ready, version not a number", method: "GET", path: "/v2/models/churn/versions/latest/ready", code: 404, errHas: []string{`version "latest"`}},
		{name: "v2 model ready, unknown model", method: "GET", path: "/v2/models/nope/ready", code: 404, errHas: []string{`"nope"`}},
		{name: "v2 model ready, not ready", pending: true, method: "GET", path: "/v2/models/pending/ready", code: 503, errHas: []string{`"pending" is not ready`}},

		// v2 inference.
		{name: "v2 infer", method: "POST", path: "/v2/models/churn/infer", body: "@churn-infer-v2.json", code: 200, want: churn("3", c.p3)},
		{name: "v2 infer, stable version", method: "POST", path: "/v2/models/churn/versions/3/infer", body: "@churn-infer-v2.json", code: 200, want: churn("3", c.p3)},
		{name: "v2 infer, canary version", method: "POST", path: "/v2/models/churn/versions/4/infer", body: "@churn-infer-v2.json", code: 200, want: churn("4", c.p4)},
		{name: "v2 infer, [n, 1] tensors", method: "POST", path: "/v2/models/churn/infer", body: "@churn-infer-v2-nested.json", code: 200,
			want: v2Answer("req-18", "churn", "3", ulids(3), c.p3), idsAt: v2IDs},
		{name: "v2 infer, KServe iris [n, k] FP32", method: "POST", path: "/v2/models/iris/infer", body: "@iris-input-v2.json", code: 200,
			want: v2Answer("", "iris", "1", ulids(2), c.iris32), idsAt: v2IDs},
		{name: "v2 infer, [n, k] FP64 flat", method: "POST", path: "/v2/models/iris/versions/1/infer", body: matrix("FP64", "[2,4]", "[6.8,2.8,4.8,1.4,6.0,3.4,4.5,1.6]"), code: 200,
			want: v2Answer("", "iris", "1", ulids(2), c.iris64), idsAt: v2IDs},
		{name: "v2 infer, one row, the request id is the prediction ID", method: "POST", path: "/v2/models/iris/infer",
			body: `{"id":"flower-1","inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[[6.8,2.8,4.8,1.4]]}]}`, code: 200,
			want: v2Answer("flower-1", "iris", "1", []string{"flower-1"}, c.iris64[:1])},
		{name: "v2 infer, version not deployed", method: "POST", path: "/v2/models/churn/versions/7/infer", body: "@churn-infer-v2.json", code: 404, errHas: []string{`version "7"`, "deployed: 3, 4"}},
		{name: "v2 infer, unknown model", method: "POST", path: "/v2/models/nope/infer", body: "@churn-infer-v2.json", code: 404, errHas: []string{`"nope"`}},
		{name: "v2 infer, unknown model and version", method: "POST", path: "/v2/models/nope/versions/1/infer", body: "@churn-infer-v2.json", code: 404, errHas: []string{`"nope"`}},
		{name: "v2 infer, not ready", pending: true, method: "POST", path: "/v2/models/pending/infer", body: "@churn-infer-v2.json", code: 503, errHas: []string{`"pending" is not ready`}},
		{name: "v2 infer, the protocol's example (input1: 1 value for shape [3])", method: "POST", path: "/v2/models/churn/infer", body: "@kserve-v2-example-request.json", code: 400,
			errHas: []string{`input "input1" has 1 values but its shape [3] holds 3`}},
		{name: "v2 infer, unknown output", method: "POST", path: "/v2/models/churn/infer",
			body: `{"inputs":[{"name":"charges","shape":[1],"datatype":"FP64","data":[1]}],"outputs":[{"name":"output0"}]}`, code: 400, errHas: []string{`unknown output "output0"`, `"prediction"`}},
		{name: "v2 infer, unknown datatype", method: "POST", path: "/v2/models/churn/infer", body: one("tenure", "FP8", "[1]"), code: 400, errHas: []string{`input "tenure"`, `unknown datatype "FP8"`}},
		{name: "v2 infer, fewer values than the shape", method: "POST", path: "/v2/models/churn/infer",
			body: `{"inputs":[{"name":"charges","shape":[2],"datatype":"FP64","data":[1]}]}`, code: 400, errHas: []string{`input "charges" has 1 values but its shape [2] holds 2`}},
		{name: "v2 infer, negative dimension", method: "POST", path: "/v2/models/churn/infer",
			body: `{"inputs":[{"name":"charges","shape":[-1],"datatype":"FP64","data":[1]}]}`, code: 400, errHas: []string{`input "charges"`, "negative"}},
		{name: "v2 infer, INT8 overflow", method: "POST", path: "/v2/models/churn/infer", body: one("tenure", "INT8", "[300]"), code: 400, errHas: []string{`input "tenure": data[0]: 300 does not fit INT8`, "-128..127"}},
		{name: "v2 infer, UINT8 negative", method: "POST", path: "/v2/models/churn/infer", body: one("tenure", "UINT8", "[-1]"), code: 400, errHas: []string{`input "tenure": data[0]: -1 does not fit UINT8`}},
		{name: "v2 infer, INT64 fraction", method: "POST", path: "/v2/models/churn/infer", body: one("tenure", "INT64", "[1.5]"), code: 400, errHas: []string{`input "tenure": data[0]: 1.5 does not fit INT64`}},
		{name: "v2 infer, INT64 2^63", method: "POST", path: "/v2/models/churn/infer", body: one("tenure", "INT64", "[9223372036854775808]"), code: 400, errHas: []string{`9223372036854775808 does not fit INT64`}},
		{name: "v2 infer, UINT64 2^64", method: "POST", path: "/v2/models/churn/infer", body: one("tenure", "UINT64", "[1.8446744073709552e19]"), code: 400, errHas: []string{`does not fit UINT64`}},
		{name: "v2 infer, FP16 overflow", method: "POST", path: "/v2/models/churn/infer", body: one("discount", "FP16", "[70000]"), code: 400, errHas: []string{`input "discount": data[0]: 70000 does not fit FP16`}},
		{name: "v2 infer, FP32 overflow", method: "POST", path: "/v2/models/churn/infer", body: one("discount", "FP32", "[1e39]"), code: 400, errHas: []string{`1e39 does not fit FP32`}},
		{name: "v2 infer, FP64 overflow", method: "POST", path: "/v2/models/churn/infer", body: one("discount", "FP64", "[1e400]"), code: 400, errHas: []string{`1e400 does not fit FP64`}},
		{name: "v2 infer, number for BOOL", method: "POST", path: "/v2/models/churn/infer", body: one("active", "BOOL", "[1]"), code: 400, errHas: []string{`input "active": data[0]: number 1 does not fit BOOL`}},
		{name: "v2 infer, number for BYTES", method: "POST", path: "/v2/models/churn/infer", body: one("plan", "BYTES", "[3]"), code: 400, errHas: []string{`input "plan": data[0]: number 3 does not fit BYTES`}},
		{name: "v2 infer, string for FP64", method: "POST", path: "/v2/models/churn/infer", body: one("discount", "FP64", `["0.5"]`), code: 400, errHas: []string{`input "discount": data[0]: string "0.5" does not fit FP64`}},
		{name: "v2 infer, datatype of another column type", method: "POST", path: "/v2/models/churn/infer", body: one("plan", "FP64", "[1]"), code: 400,
			errHas: []string{`input "plan" is FP64 but the model's input "plan" is string (send it as BYTES)`}},
		{name: "v2 infer, BYTES for a number column", method: "POST", path: "/v2/models/churn/infer", body: one("tenure", "BYTES", `["3"]`), code: 400,
			errHas: []string{`input "tenure" is BYTES but the model's input "tenure" is int64`}},
		{name: "v2 infer, [n, k] of the wrong k", method: "POST", path: "/v2/models/iris/infer", body: matrix("FP64", "[1,3]", "[[1,2,3]]"), code: 400,
			errHas: []string{`input "input-0" has shape [1 3]`, "the model's 4 inputs", "sepal_length, sepal_width, petal_length, petal_width"}},
		{name: "v2 infer, [n, k] and another input", method: "POST", path: "/v2/models/iris/infer",
			body: `{"inputs":[{"name":"a","shape":[1,4],"datatype":"FP64","data":[1,2,3,4]},{"name":"b","shape":[1],"datatype":"FP64","data":[1]}]}`, code: 400, errHas: []string{`input "a"`, "only input"}},
		{name: "v2 infer, [n, k] of a datatype a column refuses", method: "POST", path: "/v2/models/churn/infer", body: matrix("FP64", "[1,5]", "[[1,2,3,4,5]]"), code: 400,
			errHas: []string{`input "input-0" is FP64 but the model's input "plan" is string`}},
		{name: "v2 infer, rank 3", method: "POST", path: "/v2/models/iris/infer", body: matrix("FP64", "[1,2,2]", "[[[1,2],[3,4]]]"), code: 400, errHas: []string{`input "input-0" has shape [1 2 2]`, "want [n] or [n, 1]"}},
		{name: "v2 infer, ragged data", method: "POST", path: "/v2/models/iris/infer", body: matrix("FP64", "[2,2]", "[[1,2],[3]]"), code: 400, errHas: []string{`input "input-0"`, "ragged"}},
		{name: "v2 infer, nesting other than the shape", method: "POST", path: "/v2/models/iris/infer", body: matrix("FP64", "[4,1]", "[[1,2],[3,4]]"), code: 400, errHas: []string{`input "input-0"`, "nested as [2 2]", "shape [4 1]"}},
		{name: "v2 infer, input given twice", method: "POST", path: "/v2/models/churn/infer",
			body: `{"inputs":[{"name":"charges","shape":[1],"datatype":"FP64","data":[1]},{"name":"charges","shape":[1],"datatype":"FP64","data":[2]}]}`, code: 400, errHas: []string{`input "charges" is given twice`}},
		{name: "v2 infer, inputs of different rows", method: "POST", path: "/v2/models/churn/infer",
			body: `{"inputs":[{"name":"charges","shape":[2],"datatype":"FP64","data":[1,2]},{"name":"tenure","shape":[1],"datatype":"INT64","data":[1]}]}`, code: 400, errHas: []string{`input "tenure" has 1 values, others have 2`}},
		{name: "v2 infer, too many rows", method: "POST", path: "/v2/models/churn/infer",
			body: `{"inputs":[{"name":"charges","shape":[101],"datatype":"FP64","data":[` + strings.Join(many, ",") + `]}]}`, code: 413, errHas: []string{"101 rows, at most 100"}},
		{name: "v2 infer, bad prediction IDs", method: "POST", path: "/v2/models/churn/infer",
			body: `{"inputs":[{"name":"charges","shape":[2],"datatype":"FP64","data":[1,2]}],"parameters":{"prediction_ids":["a","a"]}}`, code: 400, errHas: []string{"parameters.prediction_ids[1] repeats"}},
		{name: "v2 infer, the model refuses a row", method: "POST", path: "/v2/models/churn/infer",
			body: `{"inputs":[{"name":"tenure","shape":[1],"datatype":"INT64","data":[1]}]}`, code: 400, errHas: []string{`"charges" is missing`}},
		{name: "v2 infer, data not an array", method: "POST", path: "/v2/models/churn/infer",
			body: `{"inputs":[{"name":"charges","shape":[1],"datatype":"FP64","data":1}]}`, code: 400, errHas: []string{"decoding request body", `input "charges"`}},
		{name: "v2 infer, not JSON", method: "POST", path: "/v2/models/churn/infer", body: `inputs=1`, code: 400, errHas: []string{"decoding request body"}},
	}
	for _, server := range []string{"fast", "net-http"} {
		for _, tt := range tests {
			t.Run(server+"/"+tt.name, func(t *testing.T) {
				base, pending := c.rest, c.restPending
				if server == "net-http" {
					base, pending = c.plain, c.plainPending
				}
				if tt.pending {
					base = pending
				}
				body := tt.body
				if name, ok := strings.CutPrefix(body, "@"); ok {
					body = fixture(t, name)
				}
				code, ct, b := httpCall(t, tt.method, base+tt.path, body)
				if code != tt.code {
					t.Fatalf("status %d, want %d: %s", code, tt.code, b)
				}
				if ct != "application/json" {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
				var got any
				if err := json.Unmarshal(b, &got); err != nil {
					t.Fatalf("answer %s is not JSON: %v", b, err)
				}
				if tt.errHas != nil {
					e, _ := got.(map[string]any)
					msg, _ := e["error"].(string)
					if len(e) != 1 || msg == "" {
						t.Fatalf("error answer %s is not {\"error\": message}", b)
					}
					for _, want := range tt.errHas {
						if !strings.Contains(msg, want) {
							t.Errorf("error %q does not mention %q", msg, want)
						}
					}
					return
				}
				if tt.idsAt != nil {
					generatedIDs(t, got, tt.idsAt...)
				}
				if want := jsonValueOf(t, tt.want); !reflect.DeepEqual(got, want) {
					t.Errorf("answer\n%s\nwant\n%s", mustJSON(t, got), mustJSON(t, want))
				}
			})
		}
	}
}

// grpcCase is one RPC and its expected answer.
type grpcCase struct {
	name    string
	pending bool
	call    func(ctx context.Context, c inferencepb.GRPCInferenceServiceClient) (proto.Message, error)
	want    proto.Message // the whole answer, when code is OK
	code    codes.Code
	errHas  []string
	// generated: the answer's prediction IDs are generated (compared as
	// "ULID").
	generated bool
}

// grpcAnswer is the expected ModelInfer answer, with the predictions in
// contents or, when raw, in raw_output_contents.
func grpcAnswer(id, model, version string, ids []string, preds []float64, raw bool) *inferencepb.ModelInferResponse {
	out := &inferencepb.ModelInferResponse_InferOutputTensor{Name: "prediction", Datatype: "FP64", Shape: []int64{int64(len(preds))}}
	r := &inferencepb.ModelInferResponse{
		ModelName: model, ModelVersion: version, Id: id,
		Parameters: map[string]*inferencepb.InferParameter{"prediction_ids": idsParam(ids)},
		Outputs:    []*inferencepb.ModelInferResponse_InferOutputTensor{out},
	}
	if raw {
		r.RawOutputContents = [][]byte{rawFloat64s(preds)}
	} else {
		out.Contents = &inferencepb.InferTensorContents{Fp64Contents: preds}
	}
	return r
}

func idsParam(ids []string) *inferencepb.InferParameter {
	b, _ := json.Marshal(ids)
	return &inferencepb.InferParameter{ParameterChoice: &inferencepb.InferParameter_StringParam{StringParam: string(b)}}
}

// rawChurnRequest is the churn fixture's rows with raw_input_contents.
func rawChurnRequest(t testing.TB, rows []map[string]any, version string) *inferencepb.ModelInferRequest {
	t.Helper()
	req := &inferencepb.ModelInferRequest{ModelName: "churn", ModelVersion: version, Id: "req-raw",
		Parameters: map[string]*inferencepb.InferParameter{"prediction_ids": idsParam(churnFixtureIDs)}}
	for _, f := range churnInputs {
		var raw []byte
		for _, r := range rows {
			v := r[f.Name]
			switch f.Type {
			case dataset.String:
				raw = binary.LittleEndian.AppendUint32(raw, uint32(len(v.(string))))
				raw = append(raw, v.(string)...)
			case dataset.Int64:
				raw = binary.LittleEndian.AppendUint64(raw, uint64(int64(v.(float64))))
			case dataset.Float64:
				x := math.NaN()
				if v != nil {
					x = v.(float64)
				}
				raw = binary.LittleEndian.AppendUint64(raw, math.Float64bits(x))
			case dataset.Bool:
				b := byte(0)
				if v.(bool) {
					b = 1
				}
				raw = append(raw, b)
			}
		}
		req.Inputs = append(req.Inputs, &inferencepb.ModelInferRequest_InferInputTensor{Name: f.Name, Datatype: datatypeOf(f.Type), Shape: []int64{int64(len(rows))}})
		req.RawInputContents = append(req.RawInputContents, raw)
	}
	return req
}

// irisFP64Request is KServe's iris gRPC example with FP64 contents.
func irisFP64Request(t testing.TB) *inferencepb.ModelInferRequest {
	req := grpcFixture(t, "iris-input-v2-grpc.json")
	req.ModelName = "iris"
	in := req.Inputs[0]
	in.Datatype = "FP64"
	in.Contents = &inferencepb.InferTensorContents{Fp64Contents: []float64{6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6}}
	return req
}

// TestConformanceGRPC drives every RPC of inference.GRPCInferenceService.
func TestConformanceGRPC(t *testing.T) {
	c := newConformance(t)
	infer := func(req *inferencepb.ModelInferRequest) func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
		return func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ModelInfer(ctx, req)
		}
	}
	churnReq := func(version string) *inferencepb.ModelInferRequest {
		req := grpcFixture(t, "churn-infer-v2-grpc.json")
		req.ModelVersion = version
		return req
	}
	// modified is the churn fixture changed by f.
	modified := func(f func(r *inferencepb.ModelInferRequest)) *inferencepb.ModelInferRequest {
		req := churnReq("")
		f(req)
		return req
	}
	input := func(r *inferencepb.ModelInferRequest, name string) *inferencepb.ModelInferRequest_InferInputTensor {
		for _, in := range r.Inputs {
			if in.Name == name {
				return in
			}
		}
		t.Fatalf("no input %q", name)
		return nil
	}
	irisFP32 := grpcFixture(t, "iris-input-v2-grpc.json")
	irisFP32.ModelName = "iris"
	irisRaw := irisFP64Request(t)
	irisRaw.Inputs[0].Contents = nil
	irisRaw.RawInputContents = [][]byte{rawFloat64s([]float64{6.8, 2.8, 4.8, 1.4, 6.0, 3.4, 4.5, 1.6})}
	half := func(xs ...float32) []byte {
		var b []byte
		for _, x := range xs {
			b = binary.LittleEndian.AppendUint16(b, float32ToHalf(x))
		}
		return b
	}
	irisFP16 := &inferencepb.ModelInferRequest{ModelName: "iris", Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP16", Shape: []int64{1, 4}}},
		RawInputContents: [][]byte{half(6.8, 2.8, 4.8, 1.4)}}
	fp16Row := []map[string]any{{}}
	for j, x := range []float32{6.8, 2.8, 4.8, 1.4} {
		fp16Row[0][irisInputs[j].Name] = float64(halfToFloat32(float32ToHalf(x)))
	}
	pFP16 := wantPredictions(t, c.irisDirPath, fp16Row)
	churnMeta := &inferencepb.ModelMetadataResponse{Name: "churn", Versions: []string{"3", "4"}, Platform: "kiln_logistic",
		Outputs: []*inferencepb.ModelMetadataResponse_TensorMetadata{{Name: "prediction", Datatype: "FP64", Shape: []int64{-1}}}}
	for _, f := range churnInputs {
		churnMeta.Inputs = append(churnMeta.Inputs, &inferencepb.ModelMetadataResponse_TensorMetadata{Name: f.Name, Datatype: datatypeOf(f.Type), Shape: []int64{-1}})
	}

	tests := []grpcCase{
		{name: "ServerLive", call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ServerLive(ctx, &inferencepb.ServerLiveRequest{})
		}, want: &inferencepb.ServerLiveResponse{Live: true}},
		{name: "ServerReady", call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ServerReady(ctx, &inferencepb.ServerReadyRequest{})
		}, want: &inferencepb.ServerReadyResponse{Ready: true}},
		{name: "ServerReady, a model not ready", pending: true, call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ServerReady(ctx, &inferencepb.ServerReadyRequest{})
		}, want: &inferencepb.ServerReadyResponse{Ready: false}},
		{name: "ServerMetadata", call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ServerMetadata(ctx, &inferencepb.ServerMetadataRequest{})
		}, want: &inferencepb.ServerMetadataResponse{Name: "kiln", Version: serverVersion()}},
		{name: "ModelMetadata", call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ModelMetadata(ctx, &inferencepb.ModelMetadataRequest{Name: "churn"})
		}, want: churnMeta},
		{name: "ModelMetadata, canary version", call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ModelMetadata(ctx, &inferencepb.ModelMetadataRequest{Name: "churn", Version: "4"})
		}, want: churnMeta},
		{name: "ModelMetadata, version not deployed", call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ModelMetadata(ctx, &inferencepb.ModelMetadataRequest{Name: "churn", Version: "9"})
		}, code: codes.NotFound, errHas: []string{`version "9"`, "deployed: 3, 4"}},
		{name: "ModelMetadata, unknown model", call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ModelMetadata(ctx, &inferencepb.ModelMetadataRequest{Name: "nope"})
		}, code: codes.NotFound, errHas: []string{`"nope"`}},
		{name: "ModelMetadata, not ready", pending: true, call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ModelMetadata(ctx, &inferencepb.ModelMetadataRequest{Name: "pending"})
		}, code: codes.Unavailable, errHas: []string{`"pending" is not ready`}},
		{name: "ModelReady", call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ModelReady(ctx, &inferencepb.ModelReadyRequest{Name: "churn"})
		}, want: &inferencepb.ModelReadyResponse{Ready: true}},
		{name: "ModelReady, canary version", call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ModelReady(ctx, &inferencepb.ModelReadyRequest{Name: "churn", Version: "4"})
		}, want: &inferencepb.ModelReadyResponse{Ready: true}},
		{name: "ModelReady, version not deployed", call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ModelReady(ctx, &inferencepb.ModelReadyRequest{Name: "churn", Version: "2"})
		}, code: codes.NotFound, errHas: []string{`version "2"`}},
		{name: "ModelReady, unknown model", call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ModelReady(ctx, &inferencepb.ModelReadyRequest{Name: "nope"})
		}, code: codes.NotFound, errHas: []string{`"nope"`}},
		{name: "ModelReady, not ready", pending: true, call: func(ctx context.Context, cl inferencepb.GRPCInferenceServiceClient) (proto.Message, error) {
			return cl.ModelReady(ctx, &inferencepb.ModelReadyRequest{Name: "pending"})
		}, want: &inferencepb.ModelReadyResponse{Ready: false}},

		{name: "ModelInfer", call: infer(churnReq("")), want: grpcAnswer("req-19", "churn", "3", churnFixtureIDs, c.p3, false)},
		{name: "ModelInfer, stable version", call: infer(churnReq("3")), want: grpcAnswer("req-19", "churn", "3", churnFixtureIDs, c.p3, false)},
		{name: "ModelInfer, canary version", call: infer(churnReq("4")), want: grpcAnswer("req-19", "churn", "4", churnFixtureIDs, c.p4, false)},
		{name: "ModelInfer, raw contents", call: infer(rawChurnRequest(t, c.churnRows, "")), want: grpcAnswer("req-raw", "churn", "3", churnFixtureIDs, c.p3, true)},
		{name: "ModelInfer, raw contents, canary version", call: infer(rawChurnRequest(t, c.churnRows, "4")), want: grpcAnswer("req-raw", "churn", "4", churnFixtureIDs, c.p4, true)},
		{name: "ModelInfer, KServe iris FP32 [n, k]", call: infer(irisFP32), want: grpcAnswer("", "iris", "1", ulids(2), c.iris32, false), generated: true},
		{name: "ModelInfer, iris FP64 [n, k]", call: infer(irisFP64Request(t)), want: grpcAnswer("", "iris", "1", ulids(2), c.iris64, false), generated: true},
		{name: "ModelInfer, iris raw FP64", call: infer(irisRaw), want: grpcAnswer("", "iris", "1", ulids(2), c.iris64, true), generated: true},
		{name: "ModelInfer, iris raw FP16", call: infer(irisFP16), want: grpcAnswer("", "iris", "1", ulids(1), pFP16, true), generated: true},
		{name: "ModelInfer, one row, the request id is the prediction ID", call: infer(modified(func(r *inferencepb.ModelInferRequest) {
			r.Parameters = nil
			r.Inputs = []*inferencepb.ModelInferRequest_InferInputTensor{{Name: "charges", Datatype: "FP64", Shape: []int64{1, 1}, Contents: &inferencepb.InferTensorContents{Fp64Contents: []float64{20.25}}}}
		})), want: grpcAnswer("req-19", "churn", "3", []string{"req-19"}, wantPredictions(t, c.churnDir3, []map[string]any{{"charges": 20.25}}), false)},
		{name: "ModelInfer, unknown model", call: infer(&inferencepb.ModelInferRequest{ModelName: "nope"}), code: codes.NotFound, errHas: []string{`"nope"`}},
		{name: "ModelInfer, version not deployed", call: infer(churnReq("5")), code: codes.NotFound, errHas: []string{`version "5"`, "deployed: 3, 4"}},
		{name: "ModelInfer, not ready", pending: true, call: infer(&inferencepb.ModelInferRequest{ModelName: "pending"}), code: codes.Unavailable, errHas: []string{`"pending" is not ready`}},
		{name: "ModelInfer, no inputs", call: infer(&inferencepb.ModelInferRequest{ModelName: "churn"}), code: codes.InvalidArgument, errHas: []string{"no inputs"}},
		{name: "ModelInfer, no datatype", call: infer(modified(func(r *inferencepb.ModelInferRequest) { input(r, "tenure").Datatype = "" })),
			code: codes.InvalidArgument, errHas: []string{`input "tenure" has no datatype`}},
		{name: "ModelInfer, unknown datatype", call: infer(modified(func(r *inferencepb.ModelInferRequest) { input(r, "tenure").Datatype = "INT128" })),
			code: codes.InvalidArgument, errHas: []string{`input "tenure": unknown datatype "INT128"`}},
		{name: "ModelInfer, contents of another datatype", call: infer(modified(func(r *inferencepb.ModelInferRequest) { input(r, "tenure").Datatype = "FP64" })),
			code: codes.InvalidArgument, errHas: []string{`input "tenure" is FP64, whose values go in contents.fp64_contents, but contents has [int64_contents]`}},
		{name: "ModelInfer, fewer values than the shape", call: infer(modified(func(r *inferencepb.ModelInferRequest) { input(r, "charges").Shape = []int64{4} })),
			code: codes.InvalidArgument, errHas: []string{`input "charges" has 3 values but its shape [4] holds 4`}},
		{name: "ModelInfer, INT8 overflow", call: infer(modified(func(r *inferencepb.ModelInferRequest) {
			in := input(r, "tenure")
			in.Datatype, in.Contents = "INT8", &inferencepb.InferTensorContents{IntContents: []int32{3, 200, 0}}
		})), code: codes.InvalidArgument, errHas: []string{`input "tenure": int_contents[1]: 200 does not fit INT8`}},
		{name: "ModelInfer, infinity", call: infer(modified(func(r *inferencepb.ModelInferRequest) {
			input(r, "charges").Contents.Fp64Contents[2] = math.Inf(1)
		})), code: codes.InvalidArgument, errHas: []string{`input "charges": fp64_contents[2]: +Inf is not a finite number`}},
		{name: "ModelInfer, BYTES not UTF-8", call: infer(modified(func(r *inferencepb.ModelInferRequest) {
			input(r, "plan").Contents.BytesContents[0] = []byte{0xff, 0xfe}
		})), code: codes.InvalidArgument, errHas: []string{`input "plan": bytes_contents[0]: is not UTF-8`}},
		{name: "ModelInfer, datatype of another column type", call: infer(modified(func(r *inferencepb.ModelInferRequest) {
			in := input(r, "active")
			in.Datatype, in.Contents = "INT32", &inferencepb.InferTensorContents{IntContents: []int32{1, 0, 1}}
		})), code: codes.InvalidArgument, errHas: []string{`input "active" is INT32 but the model's input "active" is bool (send it as BOOL)`}},
		{name: "ModelInfer, FP16 in contents", call: infer(modified(func(r *inferencepb.ModelInferRequest) { input(r, "charges").Datatype = "FP16" })),
			code: codes.InvalidArgument, errHas: []string{`input "charges" is FP16`, "raw_input_contents"}},
		{name: "ModelInfer, raw and typed contents", call: infer(func() *inferencepb.ModelInferRequest {
			r := rawChurnRequest(t, c.churnRows, "")
			r.Inputs[1].Contents = &inferencepb.InferTensorContents{Int64Contents: []int64{1, 2, 3}}
			return r
		}()), code: codes.InvalidArgument, errHas: []string{`input "tenure" has contents but the request has raw_input_contents`}},
		{name: "ModelInfer, raw contents for fewer inputs", call: infer(func() *inferencepb.ModelInferRequest {
			r := rawChurnRequest(t, c.churnRows, "")
			r.RawInputContents = r.RawInputContents[:4]
			return r
		}()), code: codes.InvalidArgument, errHas: []string{"raw_input_contents has 4 entries for 5 inputs"}},
		{name: "ModelInfer, raw contents of the wrong size", call: infer(func() *inferencepb.ModelInferRequest {
			r := rawChurnRequest(t, c.churnRows, "")
			r.RawInputContents[2] = r.RawInputContents[2][:20]
			return r
		}()), code: codes.InvalidArgument, errHas: []string{`input "charges": raw contents of 20 bytes is not a whole number of FP64 elements`}},
		{name: "ModelInfer, raw BYTES truncated", call: infer(func() *inferencepb.ModelInferRequest {
			r := rawChurnRequest(t, c.churnRows, "")
			r.RawInputContents[0] = r.RawInputContents[0][:13] // "pro", then 2 bytes of "basic"
			return r
		}()), code: codes.InvalidArgument, errHas: []string{`input "plan": raw BYTES element 1 has length 5 but 2 bytes are left`}},
		{name: "ModelInfer, raw BOOL not 0 or 1", call: infer(func() *inferencepb.ModelInferRequest {
			r := rawChurnRequest(t, c.churnRows, "")
			r.RawInputContents[4][1] = 7
			return r
		}()), code: codes.InvalidArgument, errHas: []string{`input "active": raw element 1: byte 7 is not a BOOL`}},
		{name: "ModelInfer, unknown output", call: infer(modified(func(r *inferencepb.ModelInferRequest) {
			r.Outputs = []*inferencepb.ModelInferRequest_InferRequestedOutputTensor{{Name: "probabilities"}}
		})), code: codes.InvalidArgument, errHas: []string{`unknown output "probabilities"`}},
		{name: "ModelInfer, prediction IDs not a JSON array", call: infer(modified(func(r *inferencepb.ModelInferRequest) {
			r.Parameters["prediction_ids"] = &inferencepb.InferParameter{ParameterChoice: &inferencepb.InferParameter_StringParam{StringParam: "order-981"}}
		})), code: codes.InvalidArgument, errHas: []string{"parameters.prediction_ids", "JSON array"}},
		{name: "ModelInfer, prediction IDs not a string parameter", call: infer(modified(func(r *inferencepb.ModelInferRequest) {
			r.Parameters["prediction_ids"] = &inferencepb.InferParameter{ParameterChoice: &inferencepb.InferParameter_Int64Param{Int64Param: 1}}
		})), code: codes.InvalidArgument, errHas: []string{"parameters.prediction_ids", "string_param"}},
		{name: "ModelInfer, duplicate prediction IDs", call: infer(modified(func(r *inferencepb.ModelInferRequest) {
			r.Parameters["prediction_ids"] = idsParam([]string{"a", "b", "a"})
		})), code: codes.InvalidArgument, errHas: []string{"parameters.prediction_ids[2] repeats parameters.prediction_ids[0]"}},
		{name: "ModelInfer, the model refuses a row", call: infer(modified(func(r *inferencepb.ModelInferRequest) {
			input(r, "charges").Contents.Fp64Contents[1] = math.NaN()
		})), code: codes.InvalidArgument, errHas: []string{`"charges" is missing`, "row 1"}},
		{name: "ModelInfer, [n, k] of the wrong k", call: infer(func() *inferencepb.ModelInferRequest {
			r := irisFP64Request(t)
			r.Inputs[0].Shape = []int64{4, 2}
			return r
		}()), code: codes.InvalidArgument, errHas: []string{`input "input-0" has shape [4 2]`, "the model's 4 inputs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl := c.grpc
			if tt.pending {
				cl = c.grpcPending
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := tt.call(ctx, cl)
			st, _ := status.FromError(err)
			if st.Code() != tt.code {
				t.Fatalf("status %v (%q), want %v", st.Code(), st.Message(), tt.code)
			}
			if tt.code != codes.OK {
				for _, want := range tt.errHas {
					if !strings.Contains(st.Message(), want) {
						t.Errorf("error %q does not mention %q", st.Message(), want)
					}
				}
				return
			}
			if r, ok := got.(*inferencepb.ModelInferResponse); ok && tt.generated {
				var ids []string
				if err := json.Unmarshal([]byte(r.GetParameters()["prediction_ids"].GetStringParam()), &ids); err != nil {
					t.Fatalf("prediction_ids parameter: %v", err)
				}
				for _, id := range ids {
					if _, ok := PredictionIDTime(id); !ok {
						t.Errorf("prediction ID %q is not a generated ID", id)
					}
				}
				r.Parameters["prediction_ids"] = idsParam(ulids(len(ids)))
			}
			if !proto.Equal(got, tt.want) {
				t.Errorf("answer\n%v\nwant\n%v", protojson.Format(got), protojson.Format(tt.want))
			}
		})
	}
}

// TestConformanceSamePredictions checks that the same rows get the same
// predictions, bit for bit, over REST v1, REST v2 (column tensors, [n, 1]
// tensors, one [n, k] tensor) and gRPC (typed and raw contents), that each
// path logs the rows identically with their prediction IDs, and that a
// request to a version is logged as that version and variant.
func TestConformanceSamePredictions(t *testing.T) {
	c := newConformance(t)
	type result struct {
		preds []float64
		ids   []string
	}
	v1 := func(t *testing.T, path, body string) result {
		code, _, b := httpCall(t, "POST", c.rest+path, body)
		if code != 200 {
			t.Fatalf("%s: status %d: %s", path, code, b)
		}
		var r PredictResponse
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		return result{r.Predictions, r.PredictionIDs}
	}
	v2 := func(t *testing.T, path, body string) result {
		code, _, b := httpCall(t, "POST", c.rest+path, body)
		if code != 200 {
			t.Fatalf("%s: status %d: %s", path, code, b)
		}
		var r struct {
			Parameters struct {
				PredictionIDs []string `json:"prediction_ids"`
			} `json:"parameters"`
			Outputs []struct {
				Data []float64 `json:"data"`
			} `json:"outputs"`
		}
		if err := json.Unmarshal(b, &r); err != nil || len(r.Outputs) != 1 {
			t.Fatalf("answer %s (%v)", b, err)
		}
		return result{r.Outputs[0].Data, r.Parameters.PredictionIDs}
	}
	grpcInfer := func(t *testing.T, req *inferencepb.ModelInferRequest) result {
		r, err := c.grpc.ModelInfer(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		if err := json.Unmarshal([]byte(r.GetParameters()["prediction_ids"].GetStringParam()), &ids); err != nil {
			t.Fatal(err)
		}
		out := r.GetOutputs()[0]
		if raw := r.GetRawOutputContents(); len(raw) > 0 {
			preds := make([]float64, len(raw[0])/8)
			for i := range preds {
				preds[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[0][8*i:]))
			}
			return result{preds, ids}
		}
		return result{out.GetContents().GetFp64Contents(), ids}
	}
	same := func(t *testing.T, what string, got []result, want []float64) {
		t.Helper()
		for i, r := range got {
			if err := samePredictions(r.preds, want); err != nil {
				t.Errorf("%s, path %d: %v", what, i, err)
			}
		}
	}

	// churn: every path, with the fixture's prediction IDs.
	churn := []result{
		v1(t, "/v1/models/churn:predict", fixture(t, "churn-infer-v1.json")),
		v2(t, "/v2/models/churn/infer", fixture(t, "churn-infer-v2.json")),
		grpcInfer(t, grpcFixture(t, "churn-infer-v2-grpc.json")),
		grpcInfer(t, rawChurnRequest(t, c.churnRows, "")),
	}
	same(t, "churn", churn, c.p3)
	for i, r := range churn {
		if !slices.Equal(r.ids, churnFixtureIDs) {
			t.Errorf("churn path %d: prediction IDs %q, want %q", i, r.ids, churnFixtureIDs)
		}
	}
	nested := v2(t, "/v2/models/churn/infer", fixture(t, "churn-infer-v2-nested.json"))
	same(t, "churn [n, 1]", []result{nested}, c.p3)
	canary := []result{
		v2(t, "/v2/models/churn/versions/4/infer", fixture(t, "churn-infer-v2.json")),
		grpcInfer(t, rawChurnRequest(t, c.churnRows, "4")),
	}
	same(t, "churn canary version", canary, c.p4)

	// iris: KServe's examples; FP64 and FP32 values.
	irisFP64Body := strings.Replace(fixture(t, "iris-input-v2.json"), `"FP32"`, `"FP64"`, 1)
	iris64 := []result{
		v1(t, "/v1/models/iris:predict", fixture(t, "iris-input-v1.json")),
		v1(t, "/v1/models/iris:predict", predictV1Body(t, irisRows(false))),
		v2(t, "/v2/models/iris/infer", irisFP64Body),
		grpcInfer(t, irisFP64Request(t)),
	}
	same(t, "iris FP64", iris64, c.iris64)
	irisFP32 := grpcFixture(t, "iris-input-v2-grpc.json")
	irisFP32.ModelName = "iris"
	iris32 := []result{
		v2(t, "/v2/models/iris/infer", fixture(t, "iris-input-v2.json")),
		grpcInfer(t, irisFP32),
	}
	same(t, "iris FP32", iris32, c.iris32)

	// The request log: every churn path logged the same rows with the same
	// IDs (v3 stable), the versioned requests as v4 canary. Each version's
	// rows are in request order.
	c.close(t)
	_, logged := readLogs(t, c.logDir, "churn")
	byVersion := map[int64][]logRow{}
	for _, r := range logged {
		v := r[LogVersion].(int64)
		byVersion[v] = append(byVersion[v], r)
	}
	n := len(c.churnRows)
	if len(byVersion[3]) != (len(churn)+1)*n || len(byVersion[4]) != len(canary)*n || len(byVersion) != 2 {
		t.Fatalf("logged %d rows of v3 and %d of v4 (%d in all), want %d and %d", len(byVersion[3]), len(byVersion[4]), len(logged), (len(churn)+1)*n, len(canary)*n)
	}
	var generated []string
	for _, version := range []int64{3, 4} {
		for i, r := range byVersion[version] {
			req, row := i/n, i%n
			want := wantInputs(c.churnRows[row])
			for _, f := range churnInputs {
				if !reflect.DeepEqual(r[f.Name], want[f.Name]) {
					t.Errorf("v%d logged row %d: %s = %v, want %v", version, i, f.Name, r[f.Name], want[f.Name])
				}
			}
			variant, pred := "stable", c.p3[row]
			if version == 4 {
				variant, pred = "canary", c.p4[row]
			}
			if r[LogVariant] != variant || r[LogPrediction] != pred {
				t.Errorf("v%d logged row %d: %v %v, want %s %v", version, i, r[LogVariant], r[LogPrediction], variant, pred)
			}
			id := r[LogPredictionID].(string)
			if version == 3 && req == len(churn) {
				generated = append(generated, id)
			} else if id != churnFixtureIDs[row] {
				t.Errorf("v%d logged row %d: prediction ID %q, want %q", version, i, id, churnFixtureIDs[row])
			}
		}
	}
	if !slices.Equal(generated, nested.ids) {
		t.Errorf("logged generated IDs %q, answered %q", generated, nested.ids)
	}
}

// TestTensorNumbers checks the numeric datatype checks and rounding, and
// the half-precision conversions, on edge values.
func TestTensorNumbers(t *testing.T) {
	tests := []struct {
		dt   string
		lit  string
		want float64
		err  bool
	}{
		{"INT8", "-128", -128, false}, {"INT8", "127", 127, false}, {"INT8", "128", 0, true}, {"INT8", "-129", 0, true},
		{"INT16", "32767", 32767, false}, {"INT16", "32768", 0, true},
		{"INT32", "-2147483648", -2147483648, false}, {"INT32", "2147483648", 0, true},
		{"INT64", "9223372036854775807", 9223372036854775807, false}, {"INT64", "-9223372036854775808", -9223372036854775808, false},
		{"INT64", "9223372036854775808", 0, true}, {"INT64", "9.223372036854775807e18", 0, true}, {"INT64", "3.0", 3, false}, {"INT64", "1e3", 1000, false},
		{"UINT8", "255", 255, false}, {"UINT8", "256", 0, true}, {"UINT8", "-1", 0, true}, {"UINT8", "-0", 0, false},
		{"UINT32", "4294967295", 4294967295, false}, {"UINT32", "4294967296", 0, true},
		{"UINT64", "18446744073709551615", 18446744073709551615, false}, {"UINT64", "18446744073709551616", 0, true},
		{"FP16", "65504", 65504, false}, {"FP16", "65505", 0, true}, {"FP16", "0.1", 0.0999755859375, false}, {"FP16", "1e-7", 1.1920928955078125e-07, false},
		{"FP16", "1e-8", 0, false}, {"FP16", "-2.5", -2.5, false},
		{"BF16", "1.1", 1.1015625, false}, {"BF16", "3.4e38", 0, true},
		{"FP32", "0.1", float64(float32(0.1)), false}, {"FP32", "3.5e38", 0, true},
		{"FP64", "0.1", 0.1, false}, {"FP64", "1e309", 0, true}, {"FP64", "-1.7976931348623157e308", -math.MaxFloat64, false},
		{"INT8", "1.5", 0, true},
	}
	for _, tt := range tests {
		got, err := jsonNumber(dtypes[tt.dt], json.Number(tt.lit))
		if (err != nil) != tt.err || (err == nil && got != tt.want) {
			t.Errorf("%s %s: %v, %v; want %v (error %v)", tt.dt, tt.lit, got, err, tt.want, tt.err)
		}
	}
	// Every half converts to a float32 and back to itself.
	for h := range uint32(1 << 16) {
		if h&0x7c00 == 0x7c00 {
			continue // infinities and NaNs
		}
		f := halfToFloat32(uint16(h))
		if back := float32ToHalf(f); back != uint16(h) && !(f == 0 && back&0x7fff == 0) {
			t.Fatalf("half %#04x = %v converts back to %#04x", h, f, back)
		}
	}
	// Rounding to nearest, ties to even: 1 + 2^-11 is halfway between 1
	// and the next half (1 + 2^-10).
	if h := float32ToHalf(1 + 1.0/2048); h != 0x3c00 {
		t.Errorf("1+2^-11 rounds to %#04x, want 0x3c00", h)
	}
	if h := float32ToHalf(1 + 3.0/2048); h != 0x3c02 {
		t.Errorf("1+3*2^-11 rounds to %#04x, want 0x3c02", h)
	}
}

// TestFlatten checks the nesting of tensor data.
func TestFlatten(t *testing.T) {
	tests := []struct {
		data  string
		flat  string
		shape []int64
		err   string
	}{
		{`[1,2,3]`, `[1,2,3]`, []int64{3}, ""},
		{`[[1,2],[3,4]]`, `[1,2,3,4]`, []int64{2, 2}, ""},
		{`[[[1],[2]],[[3],[4]]]`, `[1,2,3,4]`, []int64{2, 2, 1}, ""},
		{`[]`, `[]`, []int64{0}, ""},
		{`[[],[]]`, `[]`, []int64{2, 0}, ""},
		{`[[1,2],[3]]`, ``, nil, "ragged"},
		{`[[1,2],3]`, ``, nil, "ragged"},
		{`[1,[2]]`, ``, nil, "mixes arrays and values"},
		{`[[1,[2]],[3,4]]`, ``, nil, "ragged"},
	}
	for _, tt := range tests {
		var data []any
		dec := json.NewDecoder(bytes.NewReader([]byte(tt.data)))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			t.Fatal(err)
		}
		flat, shape, err := flatten(data)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: error %v, want %q", tt.data, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.data, err)
			continue
		}
		if got := mustJSON(t, flat); got != tt.flat || !slices.Equal(shape, tt.shape) {
			t.Errorf("%s: %s %v, want %s %v", tt.data, got, shape, tt.flat, tt.shape)
		}
	}
}

// TestRESTWithoutDatatype checks that inputs without a datatype or shape,
// as Kiln's clients sent them before the typed tensors were checked, are
// still served (the model checks their values).
func TestRESTWithoutDatatype(t *testing.T) {
	uri, dir := churnBundle(t, 1)
	s := newTestServer(t, Options{})
	deploy(t, s, "churn", stable(1, uri))
	rows := []map[string]any{{"plan": "pro", "tenure": 3.0, "charges": 20.5, "active": true}}
	body := `{"inputs":[{"name":"plan","data":["pro"]},{"name":"tenure","data":[3]},{"name":"charges","data":[[20.5]]},{"name":"active","data":[true]}]}`
	rec := serve(t, s.Handler(), "POST", "/v2/models/churn/infer", body, "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := decode[v2Response](t, rec)
	preds := []float64{}
	for _, v := range got.Outputs[0].Data {
		preds = append(preds, v.(float64))
	}
	if err := samePredictions(preds, wantPredictions(t, dir, rows)); err != nil {
		t.Error(err)
	}
	rec = serve(t, s.Handler(), "POST", "/v2/models/churn/infer", `{"inputs":[{"name":"charges","data":[1e400]}]}`, "")
	if rec.Code != http.StatusBadRequest || !strings.Contains(errorOf(t, rec), "out of range") {
		t.Errorf("out of range number: %d %s", rec.Code, rec.Body)
	}
}
