package serving

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/internal/xgbjson"
	"github.com/kiln-ml/kiln/pipelines"
)

// benchFeatures is the number of numeric inputs of the benchmark model.
const benchFeatures = 10

// benchBundle writes a logistic bundle over benchFeatures standardized and
// imputed Float64 inputs x0..x9, and returns its URI and a one-instance v1
// request body.
func benchBundle(b *testing.B) (uri string, body []byte) {
	b.Helper()
	const rows = 64
	var fields []dataset.Field
	var cols []arrow.Array
	inst := map[string]any{}
	for j := range benchFeatures {
		name := fmt.Sprintf("x%d", j)
		fields = append(fields, dataset.Field{Name: name, Type: dataset.Float64})
		vals := make([]float64, rows)
		for i := range vals {
			vals[i] = float64((i*(j+3))%17) / 4
		}
		cols = append(cols, dataset.Float64Array(vals))
		inst[name] = float64(j) / 3
	}
	fields = append(fields, dataset.Field{Name: "y", Type: dataset.Int64})
	ys := make([]int64, rows)
	for i := range ys {
		ys[i] = int64(i % 2)
	}
	cols = append(cols, dataset.Int64Array(ys, nil))
	schema := dataset.Schema{Fields: fields}
	rec, err := dataset.NewRecord(schema, cols)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range cols {
		c.Release()
	}
	defer rec.Release()
	cfg := pipelines.PreprocessConfig{Target: "y", Transforms: []pipelines.Transform{
		{Kind: "impute", Columns: []string{"*"}},
		{Kind: "standardize", Columns: []string{"*"}},
	}}
	uri, _ = writeBundle(b, cfg, schema, rec, func(j int) float64 { return float64(j%5-2) / 3 }, 0.25)
	return uri, []byte(mustJSON(b, map[string]any{"instances": []map[string]any{inst}}))
}

// benchServer is a server with the benchmark model deployed as "bench",
// logging requests when logRequests is set.
func benchServer(b *testing.B, logRequests bool) (*Server, []byte) {
	b.Helper()
	uri, body := benchBundle(b)
	opts := Options{}
	if logRequests {
		opts.RequestLogDir = b.TempDir()
	}
	s := newTestServer(b, opts)
	deploy(b, s, "bench", stable(1, uri))
	return s, body
}

// BenchmarkPredictHTTP measures v1 predictions of one 10-feature instance
// over loopback HTTP, from parallel clients with keep-alive connections.
func BenchmarkPredictHTTP(b *testing.B) {
	for _, logRequests := range []bool{false, true} {
		b.Run(fmt.Sprintf("log=%v", logRequests), func(b *testing.B) {
			s, body := benchServer(b, logRequests)
			ts := httptest.NewServer(s.Handler())
			defer ts.Close()
			tr := &http.Transport{MaxIdleConnsPerHost: 256}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			url := ts.URL + "/v1/models/bench:predict"
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Post(url, "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// BenchmarkPredictHandler measures the v1 handler called directly (JSON
// decoding, transforms, prediction, counters, JSON encoding), without HTTP.
func BenchmarkPredictHandler(b *testing.B) {
	for _, logRequests := range []bool{false, true} {
		b.Run(fmt.Sprintf("log=%v", logRequests), func(b *testing.B) {
			s, body := benchServer(b, logRequests)
			h := s.Handler()
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := httptest.NewRequest("POST", "/v1/models/bench:predict", bytes.NewReader(body))
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Errorf("status %d: %s", rec.Code, rec.Body)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// The GBDT benchmarks serve what make bench-serve (scripts/bench/serve_bench.sh)
// serves: an XGBoost ensemble of 100 complete trees of depth 6 over 30
// Float64 inputs f0..f29 without transforms, one row per request, a canary
// at 10% (another ensemble of the same shape), the request log on.
const (
	gbdtFeatures = 30
	gbdtTrees    = 100
	gbdtDepth    = 6
	gbdtBodies   = 256
)

// gbdtBundle writes a bundle of a random complete ensemble (seeded) and
// returns its URI.
func gbdtBundle(b testing.TB, seed uint64) string {
	b.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	names := make([]string, gbdtFeatures)
	inputs := make([]dataset.Field, gbdtFeatures)
	for j := range names {
		names[j] = fmt.Sprintf("f%d", j)
		inputs[j] = dataset.Field{Name: names[j], Type: dataset.Float64}
	}
	bst := &xgbjson.Booster{Objective: xgbjson.ObjectiveBinaryLogistic, BaseScore: 0.5, NumFeature: gbdtFeatures, FeatureNames: names}
	for range gbdtTrees {
		var t xgbjson.Tree
		var grow func(d int) int32
		grow = func(d int) int32 {
			n := int32(len(t.LeftChildren))
			t.LeftChildren = append(t.LeftChildren, -1)
			t.RightChildren = append(t.RightChildren, -1)
			t.SplitIndices = append(t.SplitIndices, 0)
			t.DefaultLeft = append(t.DefaultLeft, false)
			t.BaseWeights = append(t.BaseWeights, 0)
			if d == gbdtDepth {
				v := float32(rng.NormFloat64() * 0.1)
				t.SplitConditions = append(t.SplitConditions, v)
				t.BaseWeights[n] = v
				return n
			}
			t.SplitConditions = append(t.SplitConditions, float32(rng.NormFloat64()))
			t.SplitIndices[n] = int32(rng.IntN(gbdtFeatures))
			t.DefaultLeft[n] = rng.IntN(2) == 0
			l := grow(d + 1)
			r := grow(d + 1)
			t.LeftChildren[n], t.RightChildren[n] = l, r
			return n
		}
		grow(0)
		bst.Trees = append(bst.Trees, t)
	}
	est, err := bst.MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	m := model.Manifest{
		FormatVersion: model.FormatVersion, Name: "gbdt", Task: model.TaskBinary, Target: "y",
		Output: model.OutputProbability, Inputs: inputs,
		Transforms: &transform.Fitted{Inputs: inputs, Features: names},
		Estimator:  model.Estimator{Type: model.EstimatorXGBoost, File: model.DefaultEstimatorFile},
	}
	dir := filepath.Join(b.TempDir(), "bundle")
	if err := model.WriteBundle(dir, m, map[string][]byte{model.DefaultEstimatorFile: est}); err != nil {
		b.Fatal(err)
	}
	return artifact.FileURI(dir)
}

// gbdtServer is a server logging requests with two GBDT versions deployed as
// "bench" (v2 a canary at 10%), and gbdtBodies one-row request bodies.
func gbdtServer(b *testing.B) (*Server, [][]byte) {
	b.Helper()
	s := newTestServer(b, Options{RequestLogDir: b.TempDir()})
	deploy(b, s, "bench", withCanary(1, gbdtBundle(b, 1), 2, gbdtBundle(b, 2), 10))
	rng := rand.New(rand.NewPCG(3, 1))
	bodies := make([][]byte, gbdtBodies)
	for i := range bodies {
		inst := map[string]any{}
		for j := range gbdtFeatures {
			inst[fmt.Sprintf("f%d", j)] = rng.NormFloat64()
		}
		bodies[i] = []byte(mustJSON(b, map[string]any{"instances": []map[string]any{inst}}))
	}
	return s, bodies
}

// BenchmarkPredictHandlerGBDT measures make bench-serve's requests (see
// gbdtServer) straight into the handler, without HTTP.
func BenchmarkPredictHandlerGBDT(b *testing.B) {
	s, bodies := gbdtServer(b)
	h := s.Handler()
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bodies[next.Add(1)%gbdtBodies]
			req := httptest.NewRequest("POST", "/v1/models/bench:predict", bytes.NewReader(body))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkPredictHTTPGBDT measures make bench-serve's requests over
// loopback HTTP from parallel clients in the same process.
func BenchmarkPredictHTTPGBDT(b *testing.B) {
	s, bodies := gbdtServer(b)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	url := ts.URL + "/v1/models/bench:predict"
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(url, "application/json", bytes.NewReader(bodies[next.Add(1)%gbdtBodies]))
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkRequestLogChunk measures encoding one full chunk (logChunkRows
// rows) of make bench-serve's request log rows (gbdtFeatures Float64
// inputs) into a Parquet row group: the longest stretch a request log write
// holds the processor (the server's when the log writer child is behind).
func BenchmarkRequestLogChunk(b *testing.B) {
	inputs := make([]dataset.Field, gbdtFeatures)
	for j := range inputs {
		inputs[j] = dataset.Field{Name: fmt.Sprintf("f%d", j), Type: dataset.Float64}
	}
	m := &model.Model{Manifest: model.Manifest{Inputs: inputs}}
	l := newRequestLog(b.TempDir(), 1<<30, quietLogger)
	rng := rand.New(rand.NewPCG(3, 1))
	at := time.UnixMilli(1_700_000_000_000)
	for i := range logChunkRows {
		row := map[string]any{}
		for _, f := range inputs {
			row[f.Name] = rng.NormFloat64()
		}
		l.add("bench", 1, "stable", m, []map[string]any{row}, []float64{rng.Float64()}, []string{fmt.Sprintf("%032x", i)}, time.Millisecond, at)
	}
	buf := l.bufs[logKey{"bench", 1}]
	schema := dataset.Schema{Fields: append(append([]dataset.Field{}, inputs...), LogFields...)}
	dir := b.TempDir()
	var w *dataset.Writer
	// A file of FlushRows (50,000) rows is 49 chunks: one file per 49.
	const perFile = 49
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if w == nil {
			var err error
			if w, err = dataset.CreateParquet(filepath.Join(dir, fmt.Sprintf("%d.parquet", i)), schema, logWriterOptions); err != nil {
				b.Fatal(err)
			}
		}
		rec, err := buf.chunks[0].record(inputs, schema)
		if err != nil {
			b.Fatal(err)
		}
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			b.Fatal(err)
		}
		if i%perFile == perFile-1 || i == b.N-1 {
			if _, err := w.Commit(); err != nil {
				b.Fatal(err)
			}
			w = nil
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/logChunkRows, "ns/row")
}
