package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/pipelines"
)

func newDataCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Look at data files: the first rows and the schema of Parquet, CSV or JSON Lines",
		Long: `Look at what Kiln reads and writes: datasets, prepared splits, scored outputs
and request logs are Parquet files (kiln models lineage and kiln runs show
print their paths). CSV and JSON Lines files are read as ingest reads them.`,
	}
	cmd.AddCommand(newDataHeadCmd(cfg), newDataSchemaCmd(cfg))
	return cmd
}

// openData opens a Parquet file, converting CSV or JSON Lines first (as
// kiln score does). A directory (a scored output's part files, as the score
// step writes them) opens its first Parquet part, saying so on stderr.
func openData(ctx context.Context, cfg *Config, path string) (*dataset.Reader, error) {
	st, statErr := os.Stat(path)
	isDir := statErr == nil && st.IsDir()
	if f := pipelines.FormatOf(path); f == "csv" || f == "jsonl" || strings.HasPrefix(path, "file://") || isDir {
		files, err := scoreInputs(ctx, cfg.stderr, cfg, path)
		if err != nil {
			return nil, err
		}
		switch {
		case len(files) == 0:
			return nil, &exitError{code: 2, err: fmt.Errorf("%s: no Parquet files", path)}
		case len(files) > 1:
			fmt.Fprintf(cfg.stderr, "%s holds %d Parquet files; showing the first, %s (name another to see it)\n", path, len(files), files[0])
		}
		path = files[0]
	}
	r, err := dataset.OpenParquet(path)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return r, nil
}

func newDataHeadCmd(cfg *Config) *cobra.Command {
	var n int
	cmd := &cobra.Command{
		Use:   "head FILE",
		Short: "Print a data file's first rows",
		Example: `  kiln data head .kiln/artifacts/datasets/8bbb…/data.parquet
  kiln data head scored.parquet -n 5 --json
  kiln data head data/churn.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if n < 1 {
				return &exitError{code: 2, err: fmt.Errorf("-n must be at least 1, got %d", n)}
			}
			r, err := openData(cmd.Context(), cfg, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			schema := r.Schema()
			var rows [][]any
			errEnough := errors.New("enough rows")
			for g := 0; g < r.NumRowGroups() && len(rows) < n; g++ {
				err := r.ScanRowGroup(cmd.Context(), g, nil, n, func(rec arrow.Record) error {
					for i := 0; i < int(rec.NumRows()) && len(rows) < n; i++ {
						row := make([]any, rec.NumCols())
						for j := range row {
							row[j] = cellValue(rec.Column(j), i)
						}
						rows = append(rows, row)
					}
					if len(rows) >= n {
						return errEnough
					}
					return nil
				})
				if err != nil && !errors.Is(err, errEnough) {
					return err
				}
			}
			if cfg.JSON {
				out := make([]map[string]any, len(rows))
				for i, row := range rows {
					out[i] = map[string]any{}
					for j, f := range schema.Fields {
						out[i][f.Name] = row[j]
					}
				}
				return printJSON(cfg.stdout, out)
			}
			header := make([]string, len(schema.Fields))
			for j, f := range schema.Fields {
				header[j] = f.Name
			}
			t := newTable(cfg.stdout, header...)
			for _, row := range rows {
				cells := make([]string, len(row))
				for j, v := range row {
					cells[j] = cellText(v)
				}
				t.row(cells...)
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintf(cfg.stdout, "(%d of %d rows)\n", len(rows), r.NumRows())
			return nil
		},
	}
	cmd.Flags().IntVarP(&n, "rows", "n", 10, "how many rows")
	return cmd
}

func newDataSchemaCmd(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:   "schema FILE",
		Short: "Print a data file's columns, types, rows and row groups",
		Example: `  kiln data schema scored.parquet
  kiln data schema data/churn.csv --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := openData(cmd.Context(), cfg, args[0])
			if err != nil {
				return err
			}
			defer r.Close()
			schema := r.Schema()
			if cfg.JSON {
				return printJSON(cfg.stdout, map[string]any{
					"columns": schema.Fields, "rows": r.NumRows(), "row_groups": r.NumRowGroups(), "unsupported_columns": r.Unsupported(),
				})
			}
			t := newTable(cfg.stdout, "COLUMN", "TYPE")
			for _, f := range schema.Fields {
				t.row(f.Name, string(f.Type))
			}
			for _, u := range r.Unsupported() {
				t.row(u, "(unsupported type: not read)")
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintf(cfg.stdout, "%d rows in %d row groups\n", r.NumRows(), r.NumRowGroups())
			return nil
		},
	}
}

// cellValue is row i of a column as a JSON-friendly value (nil for null).
func cellValue(a arrow.Array, i int) any {
	if a.IsNull(i) {
		return nil
	}
	switch c := a.(type) {
	case *array.Float64:
		return c.Value(i)
	case *array.Int64:
		return c.Value(i)
	case *array.Boolean:
		return c.Value(i)
	case *array.String:
		return strings.Clone(c.Value(i)) // Value aliases a buffer the scan reuses
	}
	return a.ValueStr(i)
}

// cellText prints a cell for a table.
func cellText(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case float64:
		return strconv.FormatFloat(x, 'g', 6, 64)
	case string:
		return x
	}
	return fmt.Sprint(v)
}
