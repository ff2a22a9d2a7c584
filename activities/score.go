package activities

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/pipelines"
)

// scoreError classifies an error of the scorer: bad data or options (a
// value, a corrupt page, a missing column) is InvalidInput and not retried;
// a write failure or a cancellation is returned as it is.
func scoreError(ctx context.Context, err error) error {
	if ctx.Err() != nil || !scorer.BadInput(err) {
		return err
	}
	return invalid("%v", err)
}

// Score batch-scores a Parquet file (the spec's input, or the ingested
// dataset), or some of its row groups, with the registered model upstream.
// Without a configured output it writes under the artifact store:
// scores/<run>/<step>.parquet, or scores/<run>/<step>/<item index>.parquet
// for an item of a foreach. The step is cached (see cache.go) by its
// configuration, the model version, the input's SHA-256 and the row groups.
func (a *Activities) Score(ctx context.Context, in StepInput) (StepOutput, error) {
	cfg := in.Step.Score
	var mref *ModelRef
	if cfg != nil {
		var err error
		if mref, err = a.scoreModel(ctx, in); err != nil {
			return StepOutput{}, err
		}
	}
	if cfg == nil || mref == nil {
		return StepOutput{}, invalid("step %q needs a score config and a registered model upstream", in.Step.Name)
	}
	if _, _, err := scorer.ParseRowGroups(cfg.RowGroups); err != nil {
		return StepOutput{}, invalid("step %q: %v", in.Step.Name, err)
	}
	input := cfg.Input
	inputs := map[string]string{"model": fmt.Sprintf("%s:%d", mref.Name, mref.Version), "row_groups": cfg.RowGroups}
	if input == "" {
		if in.Inputs.Dataset == nil {
			return StepOutput{}, invalid("step %q: no input given and no ingested dataset upstream", in.Step.Name)
		}
		input = in.Inputs.Dataset.URI
		inputs["input_sha256"] = in.Inputs.Dataset.SHA256
	}
	pl := startPulse(ctx, Progress{Msg: "resolving " + input})
	defer pl.stop()
	var inPath string
	if a.Store.Owns(input) {
		var err error
		if inPath, err = a.Store.Local(ctx, input); err != nil {
			return StepOutput{}, err
		}
	} else if artifact.Remote(input) {
		files, err := a.stageRemoteInput(ctx, pl, input)
		if err != nil {
			return StepOutput{}, err
		}
		if len(files) != 1 {
			return StepOutput{}, invalid("score input %s: %d objects; the single-file score path (row_groups, foreach items) reads one", input, len(files))
		}
		inPath = files[0]
	} else {
		var err error
		if inPath, err = a.specPath(input, in.Run.SpecDir); err != nil {
			return StepOutput{}, invalid("score input: %v", err)
		}
	}
	pl.set(Progress{Msg: "hashing " + filepath.Base(inPath)})
	if inputs["input_sha256"] == "" {
		sum, err := dataset.HashFile(inPath)
		if err != nil {
			return StepOutput{}, badInput(ctx, err)
		}
		inputs["input_sha256"] = sum
	}
	key, err := stepKey(pipelines.StepScore, scoreImplVersion, cfg, inputs, in)
	if err != nil {
		return StepOutput{}, err
	}
	return a.cached(ctx, in, key, func() (StepOutput, error) { return a.score(ctx, pl, in, cfg, mref, inPath) })
}

// score does the work of Score.
func (a *Activities) score(ctx context.Context, pl *pulse, in StepInput, cfg *pipelines.ScoreConfig, mref *ModelRef, inPath string) (StepOutput, error) {
	m, err := a.loadBundle(ctx, mref.BundleURI)
	if err != nil {
		return StepOutput{}, err
	}
	var outPath, rel string
	switch {
	case cfg.Output != "":
		if outPath, err = a.specPath(cfg.Output, in.Run.SpecDir); err != nil {
			return StepOutput{}, invalid("score output: %v", err)
		}
	case in.Item != nil:
		rel = fmt.Sprintf("scores/%s/%s/%d.parquet", sanitize(in.Run.WorkflowID), sanitize(in.Step.Name), in.Item.Index)
	default:
		rel = fmt.Sprintf("scores/%s/%s.parquet", sanitize(in.Run.WorkflowID), in.Step.Name)
	}
	if rel != "" {
		outPath = a.Store.LocalPath(rel)
	}
	if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
		return StepOutput{}, fmt.Errorf("creating the directory of %s: %w", outPath, err)
	}
	start := time.Now()
	pl.set(Progress{Msg: "scoring " + filepath.Base(inPath)})
	info, err := scorer.File(ctx, m, mref.Name, mref.Version, inPath, outPath, scorer.FileOptions{
		Passthrough: cfg.Passthrough,
		RowGroups:   cfg.RowGroups,
		Progress: func(done, total int64) {
			pl.set(Progress{Pct: 100 * float64(done) / float64(max(total, 1)), Msg: fmt.Sprintf("%d/%d rows", done, total)})
		},
	})
	if err != nil {
		return StepOutput{}, scoreError(ctx, err)
	}
	el := time.Since(start)
	summary := fmt.Sprintf("%d rows scored with %s:%d in %s → %s", info.Rows, mref.Name, mref.Version, el.Round(time.Millisecond), outPath)
	if cfg.RowGroups != "" {
		summary = fmt.Sprintf("%d rows (row groups %s) scored with %s:%d in %s → %s", info.Rows, cfg.RowGroups, mref.Name, mref.Version, el.Round(time.Millisecond), outPath)
	}
	uri := artifact.FileURI(outPath)
	if rel != "" {
		// In an object store, the scored file is rewritten whole by a retry.
		if uri, err = a.Store.Put(ctx, rel); err != nil {
			return StepOutput{}, err
		}
	}
	return StepOutput{
		Artifacts: Artifacts{Scored: &ScoredRef{URI: uri, Rows: info.Rows, SHA256: info.SHA256}},
		Summary:   summary,
	}, nil
}
