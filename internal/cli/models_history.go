package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/registry"
)

func newModelsHistoryCmd(cfg *Config) *cobra.Command {
	var alias, at string
	cmd := &cobra.Command{
		Use:   "history NAME [--alias ALIAS] [--at TIME]",
		Short: "Show an alias's moves, or which version it pointed at a given time",
		Long: `Without --at, print every move of the model's aliases (or of --alias only),
oldest first: when, alias, from, to, who, why and which workflow moved it.

With --at TIME (RFC 3339, e.g. 2026-01-02T03:04:05Z) and --alias, answer which
version the alias pointed at then ("none" if it was not set).`,
		Example: `  kiln models history churn
  kiln models history churn --alias production
  kiln models history churn --alias production --at 2026-01-02T03:04:05Z --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			var atTime time.Time
			if at != "" {
				t, err := time.Parse(time.RFC3339Nano, at)
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--at %q: want an RFC 3339 time such as 2026-01-02T03:04:05Z", at)}
				}
				if alias == "" {
					return &exitError{code: 2, err: errors.New("--at needs --alias, e.g. --alias production")}
				}
				atTime = t
			}
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			if at != "" {
				v, ok, err := reg.AliasAt(ctx, name, alias, atTime)
				if err != nil {
					return modelNotFound(err, name)
				}
				if cfg.JSON {
					return printJSON(cfg.stdout, map[string]any{"model": name, "alias": alias, "at": atTime.UTC(), "version": v, "set": ok})
				}
				if !ok {
					fmt.Fprintf(cfg.stdout, "%s@%s was not set at %s\n", name, alias, atTime.UTC().Format(time.RFC3339))
					return nil
				}
				fmt.Fprintf(cfg.stdout, "%s@%s was version %d at %s\n", name, alias, v, atTime.UTC().Format(time.RFC3339))
				return nil
			}
			events, err := reg.AliasHistory(ctx, name, alias)
			if err != nil {
				return modelNotFound(err, name)
			}
			if cfg.JSON {
				if events == nil {
					events = []registry.AliasEvent{}
				}
				return printJSON(cfg.stdout, events)
			}
			if len(events) == 0 {
				fmt.Fprintf(cfg.stdout, "No alias moves for %s yet. Promote a version with: kiln models promote %s VERSION --to production --reason \"...\"\n", name, name)
				return nil
			}
			t := newTable(cfg.stdout, "WHEN (UTC)", "ALIAS", "FROM", "TO", "BY", "WHY", "WORKFLOW")
			for _, e := range events {
				t.row(e.At.UTC().Format(time.RFC3339), e.Alias, version(e.From), version(e.To), dash(e.Actor), dash(e.Reason), dash(e.RunID))
			}
			return t.flush()
		},
	}
	cmd.Flags().StringVar(&alias, "alias", "", "only this alias (required with --at)")
	cmd.Flags().StringVar(&at, "at", "", "answer which version the alias pointed at this time (RFC 3339)")
	return cmd
}

// modelNotFound turns a registry ErrNotFound for a model into a message
// that says what to do.
func modelNotFound(err error, name string) error {
	if errors.Is(err, registry.ErrNotFound) {
		return fmt.Errorf("model %q not found (kiln models list shows what exists): %w", name, err)
	}
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
