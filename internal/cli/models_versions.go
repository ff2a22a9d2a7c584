package cli

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newModelsVersionsCmd(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:   "versions NAME",
		Short: "List a model's versions, newest first, with status, metrics and aliases",
		Long: `List a model's versions, newest first: status ("ready", or "rejected" when
it failed its gate: such versions can never be aliased), creation time, the
main metrics, the run that registered it and the aliases pointing at it.`,
		Example: `  kiln models versions churn
  kiln models versions churn --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			versions, err := reg.Versions(cmd.Context(), args[0])
			if err != nil {
				return modelNotFound(err, args[0])
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, versions)
			}
			cols := metricColumns(versions)
			t := newTable(cfg.stdout, append(append([]string{"VERSION", "STATUS", "CREATED"}, upper(cols)...), "RUN", "ALIASES")...)
			for _, v := range versions {
				row := []string{strconv.FormatInt(v.Version, 10), v.Status, when(v.CreatedAt)}
				for _, c := range cols {
					row = append(row, metric(v.Metrics, c))
				}
				t.row(append(row, dash(v.RunID), dash(strings.Join(v.Aliases, ", ")))...)
			}
			return t.flush()
		},
	}
}
