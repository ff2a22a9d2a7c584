package cli

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/demodata"
)

func newDemoDataCmd(cfg *Config) *cobra.Command {
	var (
		out   string
		rows  int
		seed  uint64
		drift float64
	)
	cmd := &cobra.Command{
		Use:   "demo-data",
		Short: "Write a deterministic synthetic churn data set (CSV)",
		Long: `Write a synthetic, churn-like customer table: numeric and categorical columns,
missing values, and a churned label drawn from a known logistic model. The
same options always give the same bytes. --drift shifts the feature
distributions (0 = none, 1 = strong) to exercise drift monitoring.`,
		Example: `  kiln demo-data -o data/churn.csv
  kiln demo-data -o data/churn-drifted.csv --drift 1 --seed 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if rows <= 0 {
				return &exitError{code: 2, err: fmt.Errorf("--rows must be positive, got %d", rows)}
			}
			if !(drift >= 0 && drift <= 1) {
				return &exitError{code: 2, err: fmt.Errorf("--drift must be between 0 and 1, got %v", drift)}
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
			if err := demodata.WriteChurnCSV(w, demodata.ChurnOptions{Rows: rows, Seed: seed, Drift: drift}); err != nil {
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
	f.Float64Var(&drift, "drift", 0, "distribution shift, 0 (none) to 1 (strong)")
	return cmd
}
