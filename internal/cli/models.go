package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
)

func newModelsCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "models",
		Short: "Inspect the model registry",
		Long:  "Inspect registered models: versions, metrics, lineage and aliases. The registry is --registry (env KILN_REGISTRY: a SQLite file or a postgres:// DSN), by default $KILN_HOME/registry.db.",
	}
	cmd.AddCommand(newModelsListCmd(cfg), newModelsShowCmd(cfg), newModelsVersionsCmd(cfg),
		newModelsPromoteCmd(cfg), newModelsRollbackCmd(cfg), newModelsHistoryCmd(cfg),
		newModelsLineageCmd(cfg), newModelsDiffCmd(cfg), newModelsImportCmd(cfg))
	return cmd
}

// openRegistry opens the configured registry. A SQLite registry must
// exist: the CLI never creates an empty one by itself (a command run from
// the wrong directory would otherwise report "no models" from a new,
// empty registry instead of the one the pipelines write).
func (c *Config) openRegistry(cmd *cobra.Command) (*registry.Registry, error) {
	target := c.registryTarget()
	if !registry.IsPostgres(target) {
		if _, err := os.Stat(target); errors.Is(err, os.ErrNotExist) {
			abs, _ := filepath.Abs(target)
			return nil, fmt.Errorf("no model registry at %s: this Kiln home has registered nothing yet.\n"+
				"Run a pipeline (kiln run pipelines/churn.yaml --wait with kiln dev running), or point --home, KILN_HOME or --registry at the Kiln home that has one", abs)
		}
	}
	return registry.Open(cmd.Context(), target)
}

func newModelsListCmd(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List registered models",
		Example: "  kiln models list\n  kiln models list --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			models, err := reg.Models(cmd.Context())
			if err != nil {
				return err
			}
			if cfg.JSON {
				if models == nil {
					models = []registry.ModelSummary{}
				}
				return printJSON(cfg.stdout, models)
			}
			if len(models) == 0 {
				fmt.Fprintln(cfg.stdout, "No models yet. Register one with: kiln run pipelines/churn.yaml --wait")
				return nil
			}
			t := newTable(cfg.stdout, "MODEL", "VERSIONS", "LATEST", "ALIASES", "UPDATED")
			for _, m := range models {
				t.row(m.Name, strconv.Itoa(m.Versions), strconv.FormatInt(m.Latest, 10), aliasList(m.Aliases), when(m.UpdatedAt))
			}
			return t.flush()
		},
	}
}

func aliasList(aliases map[string]int64) string {
	var parts []string
	for a, v := range aliases {
		parts = append(parts, fmt.Sprintf("%s→%d", a, v))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func newModelsShowCmd(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME[:VERSION|@ALIAS]",
		Short: "Show a model's versions, or one version's metrics, lineage and deployments",
		Example: `  kiln models show churn
  kiln models show churn:3
  kiln models show churn@production --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			ref := args[0]
			if !strings.ContainsAny(ref, ":@") {
				versions, err := reg.Versions(ctx, ref)
				if errors.Is(err, registry.ErrNotFound) {
					return fmt.Errorf("model %q not found (kiln models list shows what exists)", ref)
				}
				if err != nil {
					return err
				}
				if len(versions) == 0 {
					return fmt.Errorf("model %q has no versions (kiln models list shows what exists)", ref)
				}
				if cfg.JSON {
					return printJSON(cfg.stdout, versions)
				}
				cols := metricColumns(versions)
				t := newTable(cfg.stdout, append(append([]string{"VERSION", "CREATED"}, upper(cols)...), "RUNTIME", "RUN", "ALIASES")...)
				for _, v := range versions {
					row := []string{strconv.FormatInt(v.Version, 10), when(v.CreatedAt)}
					for _, c := range cols {
						row = append(row, metric(v.Metrics, c))
					}
					t.row(append(row, v.Runtime, v.RunID, strings.Join(v.Aliases, ", "))...)
				}
				return t.flush()
			}
			v, err := reg.Resolve(ctx, ref)
			if err != nil {
				return err
			}
			var man *model.Manifest
			if p, err := cfg.localArtifact(cmd.Context(), v.BundleURI); err == nil {
				if m, err := model.Load(p); err == nil {
					man = &m.Manifest
				}
			}
			history, err := reg.AliasHistory(ctx, v.Model, "")
			if err != nil {
				return err
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, map[string]any{"version": v, "manifest": man, "alias_history": history})
			}
			out := cfg.stdout
			fmt.Fprintf(out, "Model      %s:%d (%s)\n", v.Model, v.Version, v.Status)
			fmt.Fprintf(out, "Created    %s by %s\n", when(v.CreatedAt), v.CreatedBy)
			fmt.Fprintf(out, "Run        %s (pipeline %s, step %s)\n", v.RunID, v.Pipeline, v.Step)
			fmt.Fprintf(out, "Data       dataset sha256 %s\n", v.DatasetHash)
			fmt.Fprintf(out, "Spec       sha256 %s\n", v.SpecHash)
			fmt.Fprintf(out, "Trained    %s runtime, image %s\n", v.Runtime, v.Image)
			if man != nil {
				fmt.Fprintf(out, "Estimator  %s, %d inputs → %d features, target %s\n", man.Estimator.Type, len(man.Inputs), len(man.Transforms.Features), man.Target)
				if len(man.Classes) > 0 {
					fmt.Fprintf(out, "Classes    %d: %s\n", len(man.Classes), strings.Join(man.Classes, ", "))
				}
				if man.Lineage.TrainerVersion != "" {
					fmt.Fprintf(out, "Trainer    %s\n", man.Lineage.TrainerVersion)
				}
			}
			fmt.Fprintf(out, "Bundle     %s\n", v.BundleURI)
			fmt.Fprintf(out, "Aliases    %s\n", strings.Join(v.Aliases, ", "))
			fmt.Fprintln(out, "\nMetrics")
			keys := make([]string, 0, len(v.Metrics))
			for k := range v.Metrics {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Fprintf(out, "  %-22s %.6g\n", k, v.Metrics[k])
			}
			if len(v.Params) > 0 {
				fmt.Fprintf(out, "\nParams     %s\n", paramsText(v.Params))
			}
			var mine []registry.AliasEvent
			for _, e := range history {
				if e.To == v.Version || e.From == v.Version {
					mine = append(mine, e)
				}
			}
			if len(mine) > 0 {
				fmt.Fprintln(out, "\nAlias history")
				t := newTable(out, "  WHEN", "ALIAS", "FROM", "TO", "BY", "WHY")
				for _, e := range mine {
					t.row("  "+when(e.At), e.Alias, version(e.From), version(e.To), e.Actor, e.Reason)
				}
				return t.flush()
			}
			return nil
		},
	}
}

// metricColumns are the metrics a versions table shows: AUC, accuracy and
// F1 for binary classifiers (one-vs-rest AUC and macro F1 for multi-class
// ones), RMSE, MAE and R² for regressions (every kind a model has), else
// the first three metrics by name.
func metricColumns(versions []registry.Version) []string {
	has := map[string]bool{}
	for _, v := range versions {
		for k := range v.Metrics {
			has[k] = true
		}
	}
	var cols []string
	for _, group := range [][]string{{"auc", "auc_ovr", "accuracy", "f1", "f1_macro"}, {"rmse", "mae", "r2"}} {
		for _, m := range group {
			if has[m] {
				cols = append(cols, m)
			}
		}
	}
	if len(cols) > 0 {
		return cols
	}
	for k := range has {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	if len(cols) > 3 {
		cols = cols[:3]
	}
	return cols
}

func upper(s []string) []string {
	out := make([]string, len(s))
	for i, x := range s {
		out[i] = strings.ToUpper(x)
	}
	return out
}

// paramsText prints training parameters as key=value, sorted by key.
func paramsText(p map[string]any) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := p[k]
		switch x := v.(type) {
		case float64:
			v = strconv.FormatFloat(x, 'g', -1, 64)
		case map[string]any, []any:
			b, _ := json.Marshal(x)
			v = string(b)
		}
		parts[i] = fmt.Sprintf("%s=%v", k, v)
	}
	return strings.Join(parts, " ")
}

func metric(m map[string]float64, k string) string {
	if v, ok := m[k]; ok {
		return fmt.Sprintf("%.4f", v)
	}
	return "-"
}

func version(v int64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatInt(v, 10)
}
