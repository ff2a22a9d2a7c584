package activities

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/pipelines"
)

// Ingest reads the step's source (CSV or Parquet) into a content-addressed
// Parquet dataset datasets/<sha256>.parquet and checks the expectations. It
// is cached (see cache.go) by its configuration and the source's SHA-256 and
// format.
func (a *Activities) Ingest(ctx context.Context, in StepInput) (StepOutput, error) {
	cfg := in.Step.Ingest
	if cfg == nil {
		return StepOutput{}, invalid("step %q has no ingest config", in.Step.Name)
	}
	src, err := artifact.Path(cfg.Source, in.Run.SpecDir)
	if err != nil {
		return StepOutput{}, invalid("ingest source: %v", err)
	}
	if _, err := os.Stat(src); err != nil {
		return StepOutput{}, invalid("ingest source %s: %v", src, err)
	}
	format := cfg.Format
	if format == "" {
		format = strings.TrimPrefix(strings.ToLower(filepath.Ext(src)), ".")
	}
	if format != "csv" && format != "parquet" {
		return StepOutput{}, invalid("ingest %s: unknown format %q (csv or parquet)", src, format)
	}
	pl := startPulse(ctx, Progress{Msg: "hashing " + filepath.Base(src)})
	defer pl.stop()
	sum, err := dataset.HashFile(src)
	if err != nil {
		return StepOutput{}, badInput(ctx, err)
	}
	key, err := stepKey(pipelines.StepIngest, ingestImplVersion, cfg, map[string]string{"source_sha256": sum, "format": format}, in)
	if err != nil {
		return StepOutput{}, err
	}
	return a.cached(ctx, in, key, func() (StepOutput, error) { return a.ingest(ctx, pl, cfg, src, format) })
}

// ingest converts src, in format, to the content-addressed dataset and
// checks the expectations of cfg.
func (a *Activities) ingest(ctx context.Context, pl *pulse, cfg *pipelines.IngestConfig, src, format string) (StepOutput, error) {
	tmp, err := a.Store.TempDir("ingest")
	if err != nil {
		return StepOutput{}, err
	}
	defer os.RemoveAll(tmp)
	dst := filepath.Join(tmp, "data.parquet")
	pl.set(Progress{Msg: "reading " + filepath.Base(src)})

	var info dataset.Info
	switch format {
	case "csv":
		info, err = dataset.CSVToParquet(ctx, src, dst, dataset.CSVOptions{})
		if err != nil {
			return StepOutput{}, badInput(ctx, err)
		}
	case "parquet":
		info, err = copyParquet(ctx, src, dst)
		if err != nil {
			return StepOutput{}, badInput(ctx, err)
		}
	default:
		return StepOutput{}, invalid("ingest %s: unknown format %q (csv or parquet)", src, format)
	}

	if cfg.Expect.MinRows > 0 && info.Rows < cfg.Expect.MinRows {
		return StepOutput{}, invalid("expectation failed: %s has %d rows, expected at least %d", src, info.Rows, cfg.Expect.MinRows)
	}
	for _, c := range cfg.Expect.Columns {
		if info.Schema.Index(c) < 0 {
			return StepOutput{}, invalid("expectation failed: %s has no column %q (columns: %s)", src, c, strings.Join(info.Schema.Names(), ", "))
		}
	}
	uri, err := a.Store.Publish(dst, "datasets/"+info.SHA256+".parquet")
	if err != nil {
		return StepOutput{}, err
	}
	ref := &DatasetRef{URI: uri, SHA256: info.SHA256, Rows: info.Rows, Schema: info.Schema, Source: src}
	return StepOutput{
		Artifacts: Artifacts{Dataset: ref},
		Summary:   fmt.Sprintf("%d rows × %d columns, dataset %s", info.Rows, len(info.Schema.Fields), info.SHA256[:12]),
	}, nil
}

// copyParquet rewrites a Parquet file through Kiln's reader and writer, one
// row group at a time, so its types are normalised and its hash is Kiln's.
func copyParquet(ctx context.Context, src, dst string) (dataset.Info, error) {
	r, err := dataset.OpenParquet(src)
	if err != nil {
		return dataset.Info{}, err
	}
	defer r.Close()
	w, err := dataset.CreateParquet(dst, r.Schema(), dataset.WriterOptions{})
	if err != nil {
		return dataset.Info{}, err
	}
	defer w.Abort()
	for i := 0; i < r.NumRowGroups(); i++ {
		rec, err := r.ReadRowGroup(ctx, i, nil)
		if err != nil {
			return dataset.Info{}, err
		}
		err = w.Write(rec)
		rec.Release()
		if err != nil {
			return dataset.Info{}, fmt.Errorf("writing %s: %w", dst, err)
		}
	}
	return w.Commit()
}
