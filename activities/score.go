package activities

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/pipelines"
)

// ScoreOptions are the options of ScoreFile.
type ScoreOptions struct {
	// Passthrough columns are copied from the input to the output.
	Passthrough []string
	// RowGroups selects the input's row groups to score: "" (all), "N" or
	// "N-M" (inclusive; row groups count from 0).
	RowGroups string
	// Progress, when set, is called after each row group with the rows
	// scored so far and the rows selected.
	Progress func(done, total int64)
}

// ScoreFile scores one Parquet file (or the row groups opts selects) with a
// loaded model, one row group at a time, and writes a Parquet file with the
// passthrough columns, the prediction, and the model name and version on
// every row. The output appears atomically. It returns the output's rows and
// SHA-256. Bad options or input (a missing column, a row group out of range)
// are InvalidInput errors naming the file.
func ScoreFile(ctx context.Context, m *model.Model, name string, version int64, inPath, outPath string, opts ScoreOptions) (dataset.Info, error) {
	lo, hi, err := parseRowGroups(opts.RowGroups)
	if err != nil {
		return dataset.Info{}, invalid("%s: %v", inPath, err)
	}
	sc, err := newScorer(m, name, version, opts.Passthrough, scoreBatchRows)
	if err != nil {
		return dataset.Info{}, invalid("%s: %v", inPath, err)
	}
	r, err := dataset.OpenParquet(inPath)
	if err != nil {
		return dataset.Info{}, badInput(ctx, err)
	}
	defer r.Close()
	n := r.NumRowGroups()
	if hi < 0 {
		lo, hi = 0, n-1
	} else if hi >= n {
		return dataset.Info{}, invalid("%s: row_groups %q is out of range: the file has %d row groups%s", inPath, opts.RowGroups, n, groupRange(n))
	}
	if err := sc.check(inPath, r); err != nil {
		return dataset.Info{}, invalid("%v", err)
	}
	var total, first int64
	for g := 0; g <= hi; g++ {
		if g < lo {
			first += r.RowGroupRows(g)
		} else {
			total += r.RowGroupRows(g)
		}
	}
	w, err := dataset.CreateParquet(outPath, sc.out, sc.writerOptions())
	if err != nil {
		return dataset.Info{}, err
	}
	defer w.Abort()
	var done int64
	for g := lo; g <= hi; g++ {
		rows, err := sc.scoreRowGroup(ctx, r, g, first, w)
		if err != nil {
			return dataset.Info{}, scoreError(ctx, err)
		}
		first += rows
		done += rows
		if opts.Progress != nil {
			opts.Progress(done, total)
		}
	}
	return w.Commit()
}

// scoreError classifies an error of scoreRowGroup: bad data (a value, a
// corrupt page) is InvalidInput and not retried; a write failure or a
// cancellation is returned as it is.
func scoreError(ctx context.Context, err error) error {
	var de *dataError
	if ctx.Err() != nil || !errors.As(err, &de) && !isReadError(err) {
		return err
	}
	return invalid("%v", err)
}

// isReadError reports whether err came from decoding the input (its
// message starts with "reading "): a corrupt file is not fixed by a retry.
func isReadError(err error) bool { return strings.HasPrefix(err.Error(), "reading ") }

// parseRowGroups reads a row group selection: "" selects all (hi < 0), "N"
// row group N, "N-M" row groups N to M inclusive.
func parseRowGroups(s string) (lo, hi int, err error) {
	if s == "" {
		return 0, -1, nil
	}
	first, last, isRange := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(first)
	hi, err2 := lo, error(nil)
	if isRange {
		hi, err2 = strconv.Atoi(last)
	}
	if err1 != nil || err2 != nil || lo < 0 || hi < lo || strings.HasPrefix(first, "+") || strings.HasPrefix(last, "+") {
		return 0, 0, fmt.Errorf("row_groups %q: want a row group N or a range N-M with 0 <= N <= M", s)
	}
	return lo, hi, nil
}

// groupRange describes the valid row group indexes of a file with n of them.
func groupRange(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return " (0)"
	}
	return fmt.Sprintf(" (0-%d)", n-1)
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
	if _, _, err := parseRowGroups(cfg.RowGroups); err != nil {
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
	if artifact.Remote(input) {
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
		if inPath, err = artifact.Path(input, in.Run.SpecDir); err != nil {
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
	m, err := loadBundle(mref.BundleURI)
	if err != nil {
		return StepOutput{}, err
	}
	var outPath string
	switch {
	case cfg.Output != "":
		if outPath, err = artifact.Path(cfg.Output, in.Run.SpecDir); err != nil {
			return StepOutput{}, invalid("score output: %v", err)
		}
	case in.Item != nil:
		outPath = a.Store.LocalPath(fmt.Sprintf("scores/%s/%s/%d.parquet", sanitize(in.Run.WorkflowID), sanitize(in.Step.Name), in.Item.Index))
	default:
		outPath = a.Store.LocalPath(fmt.Sprintf("scores/%s/%s.parquet", sanitize(in.Run.WorkflowID), in.Step.Name))
	}
	if err := os.MkdirAll(filepath.Dir(outPath), 0o755); err != nil {
		return StepOutput{}, fmt.Errorf("creating the directory of %s: %w", outPath, err)
	}
	start := time.Now()
	pl.set(Progress{Msg: "scoring " + filepath.Base(inPath)})
	info, err := ScoreFile(ctx, m, mref.Name, mref.Version, inPath, outPath, ScoreOptions{
		Passthrough: cfg.Passthrough,
		RowGroups:   cfg.RowGroups,
		Progress: func(done, total int64) {
			pl.set(Progress{Pct: 100 * float64(done) / float64(max(total, 1)), Msg: fmt.Sprintf("%d/%d rows", done, total)})
		},
	})
	if err != nil {
		return StepOutput{}, err
	}
	el := time.Since(start)
	summary := fmt.Sprintf("%d rows scored with %s:%d in %s → %s", info.Rows, mref.Name, mref.Version, el.Round(time.Millisecond), outPath)
	if cfg.RowGroups != "" {
		summary = fmt.Sprintf("%d rows (row groups %s) scored with %s:%d in %s → %s", info.Rows, cfg.RowGroups, mref.Name, mref.Version, el.Round(time.Millisecond), outPath)
	}
	return StepOutput{
		Artifacts: Artifacts{Scored: &ScoredRef{URI: artifact.FileURI(outPath), Rows: info.Rows, SHA256: info.SHA256}},
		Summary:   summary,
	}, nil
}
