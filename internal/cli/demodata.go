package cli

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/demodata"
)

func newDemoDataCmd(cfg *Config) *cobra.Command {
	var (
		out        string
		rows       int
		seed       uint64
		drift      float64
		concept    float64
		days       int
		partitions string
		end        string
		tz         string
	)
	cmd := &cobra.Command{
		Use:   "demo-data",
		Short: "Write a deterministic synthetic churn data set (CSV)",
		Long: `Write a synthetic, churn-like customer table: numeric and categorical columns,
missing values, and a churned label drawn from a known logistic model. The
same options always give the same bytes. --drift shifts the feature
distributions (0 = none, 1 = strong) to exercise drift monitoring.

With --days N, it writes N daily partitions instead, as a data lake would
hold them: DIR/date=YYYY-MM-DD/part-0.parquet for the N days ending at --end
(default: yesterday in --timezone), with drift growing from 0 on the first
day to --drift on the last, so nightly reports show a trend.`,
		Example: `  kiln demo-data -o data/churn.csv
  kiln demo-data -o data/churn-drifted.csv --drift 1 --seed 2
  kiln demo-data --days 30 --partitions data/events --drift 1 --rows 2000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if rows <= 0 {
				return &exitError{code: 2, err: fmt.Errorf("--rows must be positive, got %d", rows)}
			}
			if !(drift >= 0 && drift <= 1) {
				return &exitError{code: 2, err: fmt.Errorf("--drift must be between 0 and 1, got %v", drift)}
			}
			if days > 0 || cmd.Flags().Changed("partitions") {
				return writePartitions(cmd, cfg, partitionOptions{dir: partitions, days: days, end: end, tz: tz, rows: rows, seed: seed, drift: drift})
			}
			if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
				return err
			}
			tmp, err := os.CreateTemp(filepath.Dir(out), ".demo-data-*")
			if err != nil {
				return err
			}
			defer os.Remove(tmp.Name())
			w := bufio.NewWriter(tmp)
			if err := demodata.WriteChurnCSV(w, demodata.ChurnOptions{Rows: rows, Seed: seed, Drift: drift, Concept: concept}); err != nil {
				tmp.Close()
				return err
			}
			if err := w.Flush(); err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			if err := os.Rename(tmp.Name(), out); err != nil {
				return err
			}
			fmt.Fprintf(cfg.stdout, "wrote %d rows to %s\n", rows, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "output", "o", "data/churn.csv", "where to write the CSV")
	f.IntVar(&rows, "rows", 5000, "number of rows")
	f.Uint64Var(&seed, "seed", 1, "random seed")
	f.Float64Var(&drift, "drift", 0, "distribution shift, 0 (none) to 1 (strong); with --days, the last day's")
	f.Float64Var(&concept, "concept", 0, "concept drift, 0 (none) to 1 (the label's dependence on the features reversed)")
	f.IntVar(&days, "days", 0, "write this many daily Parquet partitions (with --partitions)")
	f.StringVar(&partitions, "partitions", "data/events", "with --days: the directory of the date=YYYY-MM-DD partitions")
	f.StringVar(&end, "end", "", "with --days: the last date (default: yesterday in --timezone)")
	f.StringVar(&tz, "timezone", "UTC", "with --days: the time zone that decides what yesterday is")
	return cmd
}

// partitionOptions configure writePartitions.
type partitionOptions struct {
	dir, end, tz string
	days, rows   int
	seed         uint64
	drift        float64
}

// writePartitions writes daily Parquet partitions with drift growing over
// the days, each one atomically (a temporary file renamed into place).
func writePartitions(cmd *cobra.Command, cfg *Config, o partitionOptions) error {
	if o.days <= 0 {
		return &exitError{code: 2, err: fmt.Errorf("--days must be positive, got %d", o.days)}
	}
	loc, err := time.LoadLocation(o.tz)
	if err != nil {
		return &exitError{code: 2, err: fmt.Errorf("--timezone %q: %w", o.tz, err)}
	}
	last := time.Now().In(loc).AddDate(0, 0, -1)
	if o.end != "" {
		if last, err = time.ParseInLocation(time.DateOnly, o.end, loc); err != nil {
			return &exitError{code: 2, err: fmt.Errorf("--end %q: want a date like 2026-12-02", o.end)}
		}
	}
	tmpDir, err := os.MkdirTemp("", "kiln-demo-data-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmpDir)
	for i := 0; i < o.days; i++ {
		day := last.AddDate(0, 0, i-o.days+1).Format(time.DateOnly)
		d := 0.0
		if o.days > 1 {
			d = o.drift * float64(i) / float64(o.days-1)
		}
		csvPath := filepath.Join(tmpDir, day+".csv")
		f, err := os.Create(csvPath)
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		err = demodata.WriteChurnCSV(w, demodata.ChurnOptions{Rows: o.rows, Seed: o.seed + uint64(i)*7919, Drift: d})
		if err == nil {
			err = w.Flush()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		part := filepath.Join(o.dir, "date="+day)
		if err := os.MkdirAll(part, 0o755); err != nil {
			return err
		}
		tmp := filepath.Join(part, ".part-0.parquet.tmp")
		if _, err := dataset.CSVToParquet(cmd.Context(), csvPath, tmp, dataset.CSVOptions{}); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("writing %s: %w", part, err)
		}
		if err := os.Rename(tmp, filepath.Join(part, "part-0.parquet")); err != nil {
			return err
		}
		if !cfg.JSON {
			fmt.Fprintf(cfg.stdout, "wrote %d rows to %s (drift %.2f)\n", o.rows, filepath.Join(part, "part-0.parquet"), d)
		}
	}
	if cfg.JSON {
		return printJSON(cfg.stdout, map[string]any{"dir": o.dir, "days": o.days, "last": last.Format(time.DateOnly), "rows_per_day": o.rows})
	}
	return nil
}
