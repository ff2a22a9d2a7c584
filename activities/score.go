package activities

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
)

// ScoreFile scores one Parquet file with a loaded model, one row group at a
// time, and writes a Parquet file with the passthrough columns, the
// prediction, and the model name and version on every row. The output appears
// atomically. progress (may be nil) is called after each row group.
func ScoreFile(ctx context.Context, m *model.Model, name string, version int64, inPath, outPath string, passthrough []string, progress func(done, total int64)) (int64, error) {
	r, err := dataset.OpenParquet(inPath)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	schema := r.Schema()
	var fields []dataset.Field
	for _, c := range passthrough {
		i := schema.Index(c)
		if i < 0 {
			return 0, invalid("%s: passthrough column %q not found (columns: %v)", inPath, c, schema.Names())
		}
		fields = append(fields, schema.Fields[i])
	}
	needed := map[string]bool{}
	var cols []string
	for _, f := range append(append([]dataset.Field{}, m.Manifest.Inputs...), fields...) {
		if !needed[f.Name] {
			needed[f.Name] = true
			cols = append(cols, f.Name)
		}
	}
	for _, f := range m.Manifest.Inputs {
		if schema.Index(f.Name) < 0 {
			return 0, invalid("%s: the model needs column %q, which the file lacks", inPath, f.Name)
		}
	}
	outSchema := dataset.Schema{Fields: append(fields,
		dataset.Field{Name: "prediction", Type: dataset.Float64},
		dataset.Field{Name: "model", Type: dataset.String},
		dataset.Field{Name: "model_version", Type: dataset.Int64},
	)}
	w, err := dataset.CreateParquet(outPath, outSchema, dataset.WriterOptions{})
	if err != nil {
		return 0, err
	}
	defer w.Abort()
	var done int64
	for g := 0; g < r.NumRowGroups(); g++ {
		rec, err := r.ReadRowGroup(ctx, g, cols)
		if err != nil {
			return 0, err
		}
		out, err := scoreRecord(m, name, version, rec, fields, outSchema)
		rec.Release()
		if err != nil {
			return 0, invalid("%s, row group %d: %v", inPath, g, err)
		}
		err = w.Write(out)
		out.Release()
		if err != nil {
			return 0, fmt.Errorf("writing %s: %w", outPath, err)
		}
		done += r.RowGroupRows(g)
		if progress != nil {
			progress(done, r.NumRows())
		}
	}
	if _, err := w.Commit(); err != nil {
		return 0, err
	}
	return done, nil
}

func scoreRecord(m *model.Model, name string, version int64, rec arrow.Record, pass []dataset.Field, outSchema dataset.Schema) (arrow.Record, error) {
	preds, err := m.Predict(rec)
	if err != nil {
		return nil, err
	}
	n := int(rec.NumRows())
	cols := make([]arrow.Array, 0, len(outSchema.Fields))
	for _, f := range pass {
		c := rec.Column(rec.Schema().FieldIndices(f.Name)[0])
		c.Retain()
		cols = append(cols, c)
	}
	names := make([]string, n)
	versions := make([]int64, n)
	for i := range names {
		names[i], versions[i] = name, version
	}
	cols = append(cols, dataset.Float64Array(preds), dataset.StringArray(names, nil), dataset.Int64Array(versions, nil))
	out, err := dataset.NewRecord(outSchema, cols)
	for _, c := range cols {
		c.Release()
	}
	return out, err
}

// Score batch-scores a Parquet file (the spec's input, or the ingested
// dataset) with the registered model upstream.
func (a *Activities) Score(ctx context.Context, in StepInput) (StepOutput, error) {
	cfg, mref := in.Step.Score, in.Inputs.Model
	if cfg == nil || mref == nil {
		return StepOutput{}, invalid("step %q needs a score config and a registered model upstream", in.Step.Name)
	}
	m, err := loadBundle(mref.BundleURI)
	if err != nil {
		return StepOutput{}, err
	}
	input := cfg.Input
	if input == "" {
		if in.Inputs.Dataset == nil {
			return StepOutput{}, invalid("step %q: no input given and no ingested dataset upstream", in.Step.Name)
		}
		input = in.Inputs.Dataset.URI
	}
	inPath, err := artifact.Path(input, in.Run.SpecDir)
	if err != nil {
		return StepOutput{}, invalid("score input: %v", err)
	}
	var outPath string
	if cfg.Output != "" {
		if outPath, err = artifact.Path(cfg.Output, in.Run.SpecDir); err != nil {
			return StepOutput{}, invalid("score output: %v", err)
		}
		if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
			return StepOutput{}, err
		}
	} else {
		outPath = a.Store.LocalPath(fmt.Sprintf("scores/%s/%s.parquet", sanitize(in.Run.WorkflowID), in.Step.Name))
		if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
			return StepOutput{}, err
		}
	}
	start := time.Now()
	pl := startPulse(ctx, Progress{Msg: "scoring " + filepath.Base(inPath)})
	defer pl.stop()
	rows, err := ScoreFile(ctx, m, mref.Name, mref.Version, inPath, outPath, cfg.Passthrough, func(done, total int64) {
		pl.set(Progress{Pct: 100 * float64(done) / float64(max(total, 1)), Msg: fmt.Sprintf("%d/%d rows", done, total)})
	})
	if err != nil {
		return StepOutput{}, err
	}
	el := time.Since(start)
	return StepOutput{
		Artifacts: Artifacts{Scored: &ScoredRef{URI: artifact.FileURI(outPath), Rows: rows}},
		Summary:   fmt.Sprintf("%d rows scored with %s:%d in %s → %s", rows, mref.Name, mref.Version, el.Round(time.Millisecond), outPath),
	}, nil
}
