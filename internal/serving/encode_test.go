package serving

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"testing"
)

// TestAppendPredictResponse checks that the hand-written v1 answer is
// byte for byte what json.Encoder writes.
func TestAppendPredictResponse(t *testing.T) {
	n := 0 // exported fields: the ones JSON encodes
	for f := range reflect.TypeFor[PredictResponse]().Fields() {
		if f.IsExported() {
			n++
		}
	}
	if n != 8 {
		t.Fatalf("PredictResponse has %d exported fields: teach appendPredictResponse the new ones, then this test", n)
	}
	floats := []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 1.0 / 3, 2.0 / 3, 1e-6, 9.99e-7, 1e-7, 1.5e-300, 5e-324,
		1e20, 1e21, 123456789012345678901234.0, math.MaxFloat64, -math.SmallestNonzeroFloat64, 0.1 + 0.2, 1e-10, 12345.678}
	ids := []string{"", "a", "01JE7Y4Q9T8M3V6WQ2X5R0ZKCB", `quo"te`, `back\slash`, "<b>&</b>", "tab\tnew\nline", "é", "日本",
		"\u2028\u2029", "\x7f", string([]byte{0xff, 'a'}), "ok-id_9.x:y/z"}
	cases := []PredictResponse{
		{},
		{Predictions: []float64{}, PredictionIDs: []string{}, ModelName: "m", ModelVersion: -1, Variant: "stable"},
		{Predictions: floats, PredictionIDs: ids, ModelName: "churn", ModelVersion: 7, Variant: "canary"},
		{Predictions: []float64{2, 0}, PredictionIDs: []string{"a", "b"}, ModelName: "wine", ModelVersion: 1, Variant: "stable",
			Classes: []string{"class_0", `cl"ass`, "é"}, Labels: []string{"é", "class_0"},
			Probabilities: [][]float64{{0.1, 1.0 / 3, 1e-7}, {1, 0, 5e-324}}},
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		n := r.IntN(5)
		c := PredictResponse{ModelName: "churn-2", ModelVersion: r.Int64(), Variant: "stable"}
		for range n {
			var f float64
			switch r.IntN(3) {
			case 0:
				f = r.Float64()
			case 1:
				f = math.Float64frombits(r.Uint64())
				if math.IsNaN(f) || math.IsInf(f, 0) {
					f = 0
				}
			default:
				f = r.NormFloat64() * math.Pow(10, float64(r.IntN(60)-30))
			}
			c.Predictions = append(c.Predictions, f)
			id := make([]byte, r.IntN(8))
			for i := range id {
				id[i] = byte(r.IntN(256))
			}
			c.PredictionIDs = append(c.PredictionIDs, string(id))
		}
		cases = append(cases, c)
	}
	for _, c := range cases {
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(c); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		writePredictResponse(rec, c)
		if got := rec.Body.String(); got != want.String() {
			t.Fatalf("answer\n%q\nwant\n%q", got, want.String())
		}
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
		}
	}
}
