package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/pipelines"
)

// churnCfg is the preprocessing of the test bundles. charges is deliberately
// not imputed, so a request without it fails in the model ("feature
// "charges" is missing"), while the other inputs may be null or absent.
var churnCfg = pipelines.PreprocessConfig{
	Target: "churn",
	Transforms: []pipelines.Transform{
		{Kind: "impute", Columns: []string{"tenure", "discount", "active"}},
		{Kind: "standardize", Columns: []string{"tenure", "charges"}},
		{Kind: "onehot", Columns: []string{"plan"}},
	},
}

// churnInputs is the raw input schema the churn bundles are fitted on
// (testdata/train.csv without the target).
var churnInputs = []dataset.Field{
	{Name: "plan", Type: dataset.String},
	{Name: "tenure", Type: dataset.Int64},
	{Name: "charges", Type: dataset.Float64},
	{Name: "discount", Type: dataset.Float64},
	{Name: "active", Type: dataset.Bool},
}

// instances are valid requests for the churn bundles: nulls, absent
// columns, an unknown category and an extra column.
var instances = []map[string]any{
	{"plan": "pro", "tenure": 3.0, "charges": 20.25, "discount": 0.1, "active": true},
	{"plan": "basic", "tenure": nil, "charges": 30.0, "active": false},
	{"plan": "unknown-plan", "tenure": 12.0, "charges": 99.5, "discount": 0.0, "active": nil},
	{"charges": 10.0},
	{"plan": "enterprise", "tenure": 1.0, "charges": 5.0, "discount": 0.5, "active": true, "extra": "ignored"},
}

// quietLogger discards the server log.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// readTrain converts testdata/train.csv to Parquet and reads it back.
func readTrain(t testing.TB) (dataset.Schema, arrow.Record) {
	t.Helper()
	pq := filepath.Join(t.TempDir(), "train.parquet")
	if _, err := dataset.CSVToParquet(context.Background(), filepath.Join("testdata", "train.csv"), pq, dataset.CSVOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := dataset.OpenParquet(pq)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec, err := r.ReadAll(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Release)
	return r.Schema(), rec
}

// writeBundle fits cfg on rec, gives feature j the weight weight(j) and
// writes the bundle to a new directory. It returns the bundle's file:// URI
// and its directory.
func writeBundle(t testing.TB, cfg pipelines.PreprocessConfig, schema dataset.Schema, rec arrow.Record, weight func(j int) float64, intercept float64) (uri, dir string) {
	t.Helper()
	fitted, err := transform.Fit(cfg.Recipe(), schema, rec)
	if err != nil {
		t.Fatal(err)
	}
	l := model.Logistic{Type: model.EstimatorLogistic, Features: fitted.Features, Intercept: intercept}
	for j := range fitted.Features {
		l.Weights = append(l.Weights, weight(j))
	}
	est, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	m := model.Manifest{
		FormatVersion: model.FormatVersion,
		Name:          "churn",
		Task:          model.TaskBinary,
		Target:        cfg.Target,
		Inputs:        fitted.Inputs,
		Transforms:    fitted,
		Estimator:     model.Estimator{Type: model.EstimatorLogistic, File: model.DefaultEstimatorFile},
		Output:        model.OutputProbability,
	}
	dir = filepath.Join(t.TempDir(), "bundle")
	if err := model.WriteBundle(dir, m, map[string][]byte{model.DefaultEstimatorFile: est}); err != nil {
		t.Fatal(err)
	}
	return artifact.FileURI(dir), dir
}

// churnBundle writes a churn bundle whose weights depend on seed, so bundles
// of different seeds predict differently.
func churnBundle(t testing.TB, seed int) (uri, dir string) {
	t.Helper()
	schema, rec := readTrain(t)
	return writeBundle(t, churnCfg, schema, rec, func(j int) float64 {
		return float64((j*7+seed*3)%11-5) / 4
	}, 0.1*float64(seed))
}

// newTestServer returns a server (with a quiet logger unless opts has one)
// that is closed when the test ends.
func newTestServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger
	}
	s := New(opts)
	t.Cleanup(func() { s.Close() })
	return s
}

// deploy sets a deployment or fails the test.
func deploy(t testing.TB, s *Server, name string, d Deployment) {
	t.Helper()
	if err := s.SetDeployment(name, d); err != nil {
		t.Fatal(err)
	}
}

// stable is a deployment of one version.
func stable(version int64, uri string) Deployment {
	return Deployment{Stable: Target{Version: version, BundleURI: uri}}
}

// withCanary is a deployment of a stable and a canary version.
func withCanary(sv int64, suri string, cv int64, curi string, percent int) Deployment {
	return Deployment{Stable: Target{Version: sv, BundleURI: suri}, Canary: &Target{Version: cv, BundleURI: curi}, CanaryPercent: percent}
}

// serve sends one request to h and returns the recorded answer. auth, when
// set, is the Authorization header.
func serve(t testing.TB, h http.Handler, method, path, body, auth string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// mustJSON encodes v.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// decode decodes a JSON answer, failing the test unless it is JSON.
func decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json (body %s)", ct, rec.Body)
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding answer %s: %v", rec.Body, err)
	}
	return v
}

// errorOf returns the message of a JSON error answer.
func errorOf(t testing.TB, rec *httptest.ResponseRecorder) string {
	t.Helper()
	e := decode[struct {
		Error string `json:"error"`
	}](t, rec)
	if e.Error == "" {
		t.Fatalf("error answer without a message: %s", rec.Body)
	}
	return e.Error
}

// predictV1Body is the v1 request body of rows.
func predictV1Body(t testing.TB, rows []map[string]any) string {
	t.Helper()
	return mustJSON(t, map[string]any{"instances": rows})
}

// wantPredictions loads the bundle in dir and predicts rows after a JSON
// round trip, as the server sees them.
func wantPredictions(t testing.TB, dir string, rows []map[string]any) []float64 {
	t.Helper()
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var decoded []map[string]any
	if err := json.Unmarshal([]byte(mustJSON(t, rows)), &decoded); err != nil {
		t.Fatal(err)
	}
	p, err := m.PredictRows(decoded)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// samePredictions reports whether got and want are bit-identical.
func samePredictions(got, want []float64) error {
	if len(got) != len(want) {
		return fmt.Errorf("%d predictions, want %d", len(got), len(want))
	}
	for i := range got {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			return fmt.Errorf("prediction %d is %v, want %v", i, got[i], want[i])
		}
	}
	return nil
}
