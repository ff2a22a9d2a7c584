package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/pipelines"
)

func newValidateCmd(cfg *Config) *cobra.Command {
	var params []string
	cmd := &cobra.Command{
		Use:   "validate SPEC...",
		Short: "Check pipeline specs with the validator the worker uses",
		Long: `Decode and validate pipeline specs. Every problem is reported, each as
file:line:col: field.path: message, with a suggestion where one helps. The
worker runs exactly this validator before a run starts.`,
		Example: `  kiln validate pipelines/*.yaml --json
  kiln validate pipelines/churn.yaml -p seed=7`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			overrides, err := parseParams(params)
			if err != nil {
				return err
			}
			type result struct {
				File     string              `json:"file"`
				Valid    bool                `json:"valid"`
				Pipeline string              `json:"pipeline,omitempty"`
				Steps    int                 `json:"steps,omitempty"`
				Problems []pipelines.Problem `json:"problems,omitempty"`
				Error    string              `json:"error,omitempty"`
			}
			var results []result
			failed := 0
			for _, path := range args {
				r := result{File: path}
				spec, err := pipelines.ParseFile(path, overrides)
				var probs pipelines.Problems
				switch {
				case err == nil:
					r.Valid, r.Pipeline, r.Steps = true, spec.Name, len(spec.Steps)
				case errors.As(err, &probs):
					r.Problems = probs
				default:
					r.Error = err.Error()
				}
				if !r.Valid {
					failed++
				}
				results = append(results, r)
			}
			if cfg.JSON {
				if err := printJSON(cfg.stdout, results); err != nil {
					return err
				}
			} else {
				for _, r := range results {
					switch {
					case r.Valid:
						fmt.Fprintf(cfg.stdout, "ok    %s (pipeline %s, %d steps)\n", r.File, r.Pipeline, r.Steps)
					case r.Error != "":
						fmt.Fprintf(cfg.stderr, "%s\n", r.Error)
					default:
						fmt.Fprintln(cfg.stderr, pipelines.Problems(r.Problems).Error())
					}
				}
			}
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("%d of %d specs invalid", failed, len(args))}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "override a pipeline parameter, name=value (repeatable)")
	return cmd
}

// parseParams turns name=value flags into overrides.
func parseParams(params []string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, &exitError{code: 2, err: fmt.Errorf("-p %q: expected name=value", p)}
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, nil
}
