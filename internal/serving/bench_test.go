package serving

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset"
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
