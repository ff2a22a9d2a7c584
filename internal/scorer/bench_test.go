package scorer_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/internal/transform"
)

// BenchmarkScoreLogistic scores 1M rows × 30 float features Parquet →
// Parquet with a logistic model (the end-to-end path of `kiln score`; the
// 10M-row comparison with the peers is scripts/bench/score_bench.sh).
func BenchmarkScoreLogistic(b *testing.B) {
	const rows, nf = 1 << 20, 30
	dir := b.TempDir()
	names := make([]string, nf)
	var inputs []dataset.Field
	ws := make([]string, nf)
	for j := range names {
		names[j] = fmt.Sprintf("f%d", j)
		inputs = append(inputs, dataset.Field{Name: names[j], Type: dataset.Float64})
		ws[j] = fmt.Sprint(0.01 * float64(j-15))
	}
	est := fmt.Sprintf(`{"type":"logistic","features":["%s"],"weights":[%s],"intercept":0.1}`, strings.Join(names, `","`), strings.Join(ws, ","))
	man := model.Manifest{FormatVersion: model.FormatVersion, Task: model.TaskBinary, Target: "y", Output: model.OutputProbability,
		Inputs: inputs, Transforms: &transform.Fitted{Inputs: inputs, Features: names},
		Estimator: model.Estimator{Type: model.EstimatorLogistic, File: "model.json"}}
	if err := model.WriteBundle(filepath.Join(dir, "b"), man, map[string][]byte{"model.json": []byte(est)}); err != nil {
		b.Fatal(err)
	}
	m, err := model.Load(filepath.Join(dir, "b"))
	if err != nil {
		b.Fatal(err)
	}
	s := dataset.Schema{Fields: append([]dataset.Field{{Name: "id", Type: dataset.Int64}}, inputs...)}
	in := filepath.Join(dir, "in.parquet")
	w, err := dataset.CreateParquet(in, s, dataset.WriterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]int64, rows)
	arrs := []arrow.Array{}
	for i := range ids {
		ids[i] = int64(i)
	}
	arrs = append(arrs, dataset.Int64Array(ids, nil))
	for range nf {
		v := make([]float64, rows)
		for i := range v {
			v[i] = r.NormFloat64()
		}
		arrs = append(arrs, dataset.Float64Array(v))
	}
	rec, err := dataset.NewRecord(s, arrs)
	if err != nil {
		b.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		b.Fatal(err)
	}
	rec.Release()
	if _, err := w.Commit(); err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "out.parquet")
	b.ResetTimer()
	for range b.N {
		if _, err := scorer.Local(context.Background(), m, []string{in}, out, scorer.LocalOptions{
			PlanOptions: scorer.PlanOptions{Model: "bench", Version: 1, Passthrough: []string{"id"}},
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	os.Remove(out)
}
