package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/serving"
)

func newReplayCmd(cfg *Config) *cobra.Command {
	var (
		server  string
		rate    float64
		dur     time.Duration
		limit   int
		workers int
		batch   int
		quiet   bool
	)
	cmd := &cobra.Command{
		Use:   "replay MODEL DATA",
		Short: "Send the rows of a CSV or Parquet file to a model server as prediction requests",
		Long: `Replay rows of DATA (CSV or Parquet) against MODEL on a model server at a
steady rate, cycling through the rows, and report requests, errors and the
versions that answered. Useful to drive a canary rollout or to inject drift
(kiln demo-data --drift 1) in a demo.`,
		Example: `  kiln replay churn data/churn.csv --rate 100 --duration 60s
  kiln replay churn data/churn-drifted.csv --limit 2000`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			rows, err := loadRows(cmd, args[1])
			if err != nil {
				return err
			}
			if server == "" {
				server = cfg.modelServer()
			}
			c := &serving.Client{BaseURL: server}
			st, err := serving.Replay(ctx, c, args[0], rows, serving.ReplayOptions{Rate: rate, Duration: dur, Limit: limit, Workers: workers, Batch: batch})
			if err != nil && ctx.Err() == nil {
				return err
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, st)
			}
			if !quiet {
				fmt.Fprintf(cfg.stdout, "%d requests (%d rows) in %s, %d errors; by version: %v\n", st.Requests, st.Rows, duration(st.Elapsed), st.Errors, st.ByVersion)
				if st.LastError != "" {
					fmt.Fprintf(cfg.stdout, "last error: %s\n", st.LastError)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "model server base URL (default: $KILN_MODEL_SERVER, the running `kiln dev`, or http://127.0.0.1:8080)")
	f.Float64Var(&rate, "rate", 100, "requests per second (0 = as fast as possible)")
	f.DurationVar(&dur, "duration", 0, "stop after this long (0 = until --limit or all rows once)")
	f.IntVar(&limit, "limit", 0, "stop after this many requests")
	f.IntVar(&workers, "workers", 4, "concurrent requests")
	f.IntVar(&batch, "batch", 1, "rows per request")
	f.BoolVarP(&quiet, "quiet", "q", false, "print nothing on success")
	return cmd
}

// loadRows reads a CSV or Parquet file into request rows.
func loadRows(cmd *cobra.Command, path string) ([]map[string]any, error) {
	src := path
	if strings.EqualFold(filepath.Ext(path), ".csv") {
		tmp, err := os.MkdirTemp("", "kiln-replay-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		src = filepath.Join(tmp, "rows.parquet")
		if _, err := dataset.CSVToParquet(cmd.Context(), path, src, dataset.CSVOptions{}); err != nil {
			return nil, err
		}
	}
	r, err := dataset.OpenParquet(src)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rec, err := r.ReadAll(cmd.Context(), nil)
	if err != nil {
		return nil, err
	}
	defer rec.Release()
	return serving.RowsFromRecord(rec)
}
