package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/internal/scorer/remote"
	"github.com/kiln-ml/kiln/pipelines"
)

// scoreSummary is `kiln score --json`'s output.
type scoreSummary struct {
	Model   string  `json:"model"`
	Version int64   `json:"version,omitempty"`
	Bundle  string  `json:"bundle"`
	Inputs  int     `json:"input_files"`
	Output  string  `json:"output"`
	Single  bool    `json:"single_file"`
	Parts   int     `json:"parts"`
	Skipped int     `json:"skipped_parts,omitempty"`
	Rows    int64   `json:"rows"`
	Seconds float64 `json:"seconds"`
	RowsPS  float64 `json:"rows_per_second"`
	// PeakRSSMiB is the process's peak resident memory (VmHWM), when known.
	PeakRSSMiB float64 `json:"peak_rss_mib,omitempty"`
}

// convertScoreInput converts a CSV or JSON Lines input to Parquet with the
// readers ingest uses (same type inference), into a temporary file under
// $KILN_HOME/artifacts/cache/score-inputs, and returns it.
func convertScoreInput(ctx context.Context, stderr io.Writer, cfg *Config, input, format string) ([]string, error) {
	if _, err := os.Stat(input); err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("input: %w", err)}
	}
	dir := cfg.path("artifacts", "cache", "score-inputs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sum, err := dataset.HashFile(input)
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	dst := filepath.Join(dir, sum+".parquet")
	if _, err := os.Stat(dst); err == nil {
		return []string{dst}, nil // converted before: the same bytes
	}
	tmp := dst + ".tmp"
	fmt.Fprintf(stderr, "converting %s (%s) to Parquet\n", input, format)
	if format == "csv" {
		_, err = dataset.CSVToParquet(ctx, input, tmp, dataset.CSVOptions{})
	} else {
		_, err = dataset.JSONLToParquet(ctx, input, tmp, dataset.JSONLOptions{})
	}
	if err != nil {
		os.Remove(tmp)
		return nil, &exitError{code: 2, err: fmt.Errorf("input %s: %w", input, err)}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return nil, err
	}
	return []string{dst}, nil
}

func newScoreCmd(cfg *Config) *cobra.Command {
	var passthrough []string
	var shardRows int64
	cmd := &cobra.Command{
		Use:   "score MODEL INPUT OUTPUT",
		Short: "Batch-score Parquet, CSV or JSON Lines with a model bundle, here and now (no Temporal)",
		Long: `Score Parquet input with a model, in this process, with the same scorer the
pipeline's score step runs on workers. A .csv, .jsonl or .ndjson INPUT file is
converted to Parquet first with ingest's readers (same type inference), and a
file:// URI (as kiln models lineage prints datasets) is read as its path.

MODEL is a bundle directory, or a registry reference (name, name:VERSION or
name@ALIAS) resolved in $KILN_HOME/registry.db.
INPUT is a Parquet file, a directory of .parquet files, a glob ('data/*.parquet')
or a path prefix; or an object or prefix in an object store (s3://bucket/key,
gs://bucket/key, with the driver's options as a query), whose .parquet objects
are fetched first into $KILN_HOME/artifacts/cache/objects (reused while they
do not change). Credentials come from the cloud SDK's environment.
OUTPUT ending in .parquet is written as one file; any other OUTPUT is a
directory of part files with a _SUCCESS manifest (parts and row counts). Both
appear atomically: nothing is published unless every row was scored. An
interrupted directory job resumes from its completed parts when rerun.

The output holds the --passthrough columns, "prediction", "model" and
"model_version". Bad input (a missing column, a wrong type, a corrupt file,
NaN or Inf in a feature) fails with the file, row group, column and row.
Progress goes to stderr: a bar on a terminal, plain lines otherwise.`,
		Example: `  kiln score churn@production data/customers.parquet scored.parquet --passthrough customer_id
  kiln score churn:3 'landing/2026-11-*.parquet' scores/2026-11 --json
  kiln score ./bundle data/ scored/ --passthrough id,segment
  kiln score churn@production data/churn.csv scored.parquet
  kiln score churn@production 's3://lake/landing/2026-12/?region=eu-west-1' scores/2026-12`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			m, name, version, bundle, err := loadScoreModel(cmd, cfg, args[0])
			if err != nil {
				return err
			}
			files, err := scoreInputs(ctx, cmd.ErrOrStderr(), cfg, args[1])
			if err != nil {
				return err
			}
			out, err := filepath.Abs(args[2])
			if err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			prog := newProgress(cmd.ErrOrStderr())
			start := time.Now()
			res, err := scorer.Local(ctx, m, files, out, scorer.LocalOptions{
				PlanOptions: scorer.PlanOptions{
					Model: name, Version: version, BundleDir: bundle, Passthrough: passthrough, ShardRows: shardRows,
				},
				Progress: prog.update,
			})
			prog.finish(err == nil)
			if err != nil {
				return fmt.Errorf("scoring with %s: %w", args[0], err)
			}
			el := time.Since(start).Seconds()
			sum := scoreSummary{Model: name, Version: version, Bundle: bundle, Inputs: res.Files, Output: res.Output,
				Single: res.Single, Parts: res.Parts, Skipped: res.Skipped, Rows: res.Rows, Seconds: el,
				RowsPS: float64(res.Rows) / max(el, 1e-9), PeakRSSMiB: peakRSSMiB()}
			if cfg.JSON {
				enc := json.NewEncoder(cfg.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(sum)
			}
			what := fmt.Sprintf("%d part(s) + %s", res.Parts, scorer.SuccessFile)
			if res.Single {
				what = "one file"
			}
			fmt.Fprintf(cfg.stdout, "Scored %d rows from %d file(s) with %s in %.2fs (%.0f rows/s) → %s (%s)\n",
				res.Rows, res.Files, modelLabel(name, version), el, sum.RowsPS, res.Output, what)
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&passthrough, "passthrough", nil, "input columns copied to the output (comma separated or repeated)")
	cmd.Flags().Int64Var(&shardRows, "shard-rows", 0, "rows per shard of a directory output (default 4194304)")
	return cmd
}

// modelLabel is name:version, or the name alone for an unregistered bundle.
func modelLabel(name string, version int64) string {
	if version == 0 {
		return name
	}
	return fmt.Sprintf("%s:%d", name, version)
}

// loadScoreModel loads MODEL: a bundle directory, or a registry reference.
func loadScoreModel(cmd *cobra.Command, cfg *Config, ref string) (*model.Model, string, int64, string, error) {
	if st, err := os.Stat(ref); err == nil && st.IsDir() {
		m, err := model.Load(ref)
		if err != nil {
			return nil, "", 0, "", err
		}
		abs, _ := filepath.Abs(ref)
		name := m.Manifest.Name
		if name == "" {
			name = filepath.Base(abs)
		}
		return m, name, 0, abs, nil
	}
	if _, err := registry.ParseRef(ref); err != nil {
		return nil, "", 0, "", &exitError{code: 2, err: fmt.Errorf("MODEL %q is neither a bundle directory nor a model reference: %w", ref, err)}
	}
	db := cfg.path("registry.db")
	if _, err := os.Stat(db); err != nil {
		return nil, "", 0, "", fmt.Errorf("resolving %s: no registry at %s (use a bundle directory, or --home)", ref, db)
	}
	reg, err := registry.Open(cmd.Context(), db)
	if err != nil {
		return nil, "", 0, "", err
	}
	defer reg.Close()
	v, err := reg.Resolve(cmd.Context(), ref)
	if err != nil {
		return nil, "", 0, "", err
	}
	dir, err := cfg.localArtifact(cmd.Context(), v.BundleURI)
	if err != nil {
		return nil, "", 0, "", err
	}
	m, err := model.Load(dir)
	if err != nil {
		return nil, "", 0, "", err
	}
	return m, v.Model, v.Version, dir, nil
}

// progress reports scoring progress on stderr: a redrawn bar (rows, rows/s,
// ETA) on a terminal, a plain line every few seconds otherwise.
type progress struct {
	w     io.Writer
	tty   bool
	start time.Time
	last  time.Time
	drawn bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

func (p *progress) update(done, total int64) {
	now := time.Now()
	every := 5 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if now.Sub(p.last) < every && done < total {
		return
	}
	p.last = now
	el := now.Sub(p.start).Seconds()
	rate := float64(done) / max(el, 1e-9)
	eta := "?"
	if rate > 0 && total >= done {
		eta = (time.Duration(float64(total-done)/rate) * time.Second).Round(time.Second).String()
	}
	pct := 100 * float64(done) / float64(max(total, 1))
	if !p.tty {
		fmt.Fprintf(p.w, "scored %d/%d rows (%.1f%%), %.0f rows/s, ETA %s\n", done, total, pct, rate, eta)
		return
	}
	const width = 30
	fill := int(pct / 100 * width)
	bar := strings.Repeat("█", fill) + strings.Repeat("░", width-fill)
	fmt.Fprintf(p.w, "\r%s %5.1f%% %d/%d rows  %.2fM rows/s  ETA %s\x1b[K", bar, pct, done, total, rate/1e6, eta)
	p.drawn = true
}

func (p *progress) finish(ok bool) {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}

// peakRSSMiB reads the process's peak resident set size (VmHWM) from
// /proc/self/status; 0 where that is not available.
func peakRSSMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%f kB", &kb); err == nil {
				return kb / 1024
			}
		}
	}
	return 0
}

// scoreInputs resolves kiln score's input to local Parquet files: a file, a
// directory, a glob or a path prefix; or an object or prefix in an object
// store, fetched into the object cache under the Kiln home
// (artifacts/cache/objects) unless already there.
func scoreInputs(ctx context.Context, stderr io.Writer, cfg *Config, input string) ([]string, error) {
	if strings.HasPrefix(input, "file://") {
		// As kiln models lineage prints datasets.
		p, err := artifact.Path(input, "")
		if err != nil {
			return nil, &exitError{code: 2, err: fmt.Errorf("input: %w", err)}
		}
		input = p
	}
	if f := pipelines.FormatOf(input); f == "csv" || f == "jsonl" {
		return convertScoreInput(ctx, stderr, cfg, input, f)
	}
	if !artifact.Remote(input) {
		files, err := scorer.ResolveInputs(input, "")
		if err != nil {
			return nil, &exitError{code: 2, err: fmt.Errorf("input: %w", err)}
		}
		return files, nil
	}
	cache := cfg.path("artifacts", "cache", "objects")
	fmt.Fprintf(stderr, "fetching %s into %s\n", input, cache)
	var fetched int64
	files, err := remote.Stage(ctx, input, remote.StageOptions{
		CacheDir: cache,
		Progress: func(done, total int64) { fetched = total },
	})
	if errors.Is(err, artifact.ErrNotFound) {
		return nil, &exitError{code: 2, err: fmt.Errorf("input: %w", err)}
	}
	if err != nil {
		return nil, fmt.Errorf("input: %w", err)
	}
	fmt.Fprintf(stderr, "%d object(s), %.1f MiB, ready\n", len(files), float64(fetched)/(1<<20))
	return files, nil
}
