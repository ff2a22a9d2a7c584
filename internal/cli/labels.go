package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/labels"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
)

func newLabelsCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "labels",
		Short: "Push late labels for a model's predictions, and list the label batches",
		Long: `Labels (what really happened: did the customer churn?) often arrive days
after the predictions. Push them as files keyed by prediction ID; the monitor
joins them to the served predictions to compute live metrics, and a retrain
can train on the served rows whose labels joined.

Each pushed file becomes a label batch: its rows normalised to (id, label,
time), stored content-addressed under $KILN_HOME/artifacts/labels/ and
recorded in the registry. Rows without an ID or a valid label are rejected
and reported, never dropped silently. Pushing the same file again is a no-op.`,
	}
	cmd.AddCommand(newLabelsPushCmd(cfg), newLabelsListCmd(cfg))
	return cmd
}

func newLabelsPushCmd(cfg *Config) *cobra.Command {
	var idCol, labelCol, timeCol, actor string
	cmd := &cobra.Command{
		Use:   "push MODEL FILE",
		Short: "Push a labels file (CSV, JSON Lines or Parquet) for a model's predictions",
		Long: `Push a labels file for MODEL. The format comes from the name: .csv, .jsonl or
.ndjson (optionally .gz), .parquet or .pq.

Columns:
  --id-column     the prediction ID (default id), read as text: "007" stays "007"
  --label-column  the label (default label): a number, or true/false (1/0)
  --time-column   when the outcome happened (default time, optional): RFC 3339
                  (2026-12-02T15:04:05Z), Unix seconds or milliseconds; rows
                  without one take the push time

Rows with an empty ID, a missing or invalid label or an invalid time are
rejected: the command counts them by reason with examples (file lines, or
Parquet rows). A file with no usable row is an error naming the first bad
line and column. Pushing the same file with the same columns again, or the
same labels in another file, prints "already pushed" and stores nothing.`,
		Example: `  kiln labels push churn labels.csv
  kiln labels push churn outcomes.jsonl.gz --id-column prediction_id --label-column churned
  kiln labels push churn labels.parquet --time-column labelled_at --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			model, file := args[0], args[1]
			if _, err := labels.FormatOf(file); err != nil {
				return &exitError{code: 2, err: err}
			}
			if st, err := os.Stat(file); err != nil {
				return &exitError{code: 2, err: fmt.Errorf("labels file: %w", err)}
			} else if st.IsDir() {
				return &exitError{code: 2, err: fmt.Errorf("labels file %s is a directory", file)}
			}
			if !cmd.Flags().Changed("time-column") {
				timeCol = "" // the default time column is optional
			}
			if actor == "" {
				actor = activities.CurrentUser()
			}
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			store, err := cfg.openStore(cmd.Context())
			if err != nil {
				return err
			}
			defer store.Close()
			classes, err := modelClasses(cmd.Context(), cfg, reg, model)
			if err != nil {
				return err
			}
			b, rep, err := labels.Push(cmd.Context(), store, reg, labels.PushInput{
				Model: model, File: file, IDColumn: idCol, LabelColumn: labelCol, TimeColumn: timeCol, PushedBy: actor,
				Classes: classes,
			})
			if err != nil {
				if errors.Is(err, registry.ErrNotFound) {
					return modelNotFound(err, model)
				}
				if errors.Is(err, labels.ErrColumn) {
					return &exitError{code: 2, err: fmt.Errorf("%w\nName the columns with --id-column, --label-column and --time-column", err)}
				}
				return err
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, map[string]any{"batch": b, "report": rep})
			}
			printPush(cfg, file, b, rep)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&idCol, "id-column", labels.DefaultIDColumn, "the prediction ID column")
	f.StringVar(&labelCol, "label-column", labels.DefaultLabelColumn, "the label column")
	f.StringVar(&timeCol, "time-column", labels.DefaultTimeColumn, "the label time column (optional unless given)")
	f.StringVar(&actor, "as", "", "who pushes, for the record (default: the local user)")
	return cmd
}

func printPush(cfg *Config, file string, b registry.LabelBatch, rep labels.PushReport) {
	out := cfg.stdout
	fmt.Fprintf(out, "%s for %s: %d of %d rows accepted, %d rejected.\n", file, b.Model, rep.Accepted, rep.Rows, rep.Rejected)
	if len(rep.Rejections) > 0 {
		t := newTable(out, "  REJECTED", "ROWS", "EXAMPLES")
		for _, r := range rep.Rejections {
			for i, ex := range r.Examples {
				if i == 0 {
					t.row("  "+r.Reason, strconv.FormatInt(r.Count, 10), ex)
				} else {
					t.row("", "", ex)
				}
			}
		}
		t.flush()
	}
	if rep.PushTime > 0 {
		if rep.PushTime == 1 {
			fmt.Fprintln(out, "1 row had no time and takes the push time.")
		} else {
			fmt.Fprintf(out, "%d rows had no time and take the push time.\n", rep.PushTime)
		}
	}
	if rep.AlreadyPushed {
		fmt.Fprintf(out, "Already pushed as batch %d (%s by %s, from %s): nothing new stored.\n", b.ID, when(b.PushedAt), dash(b.PushedBy), b.Source)
	} else {
		fmt.Fprintf(out, "Pushed as batch %d.\n", b.ID)
	}
	path, err := artifact.Path(b.URI, "")
	if err != nil {
		path = b.URI
	}
	fmt.Fprintf(out, "sha256 %s\n%s\n", b.SHA256, path)
}

func newLabelsListCmd(cfg *Config) *cobra.Command {
	var since string
	cmd := &cobra.Command{
		Use:   "list MODEL",
		Short: "List a model's label batches, oldest first",
		Example: `  kiln labels list churn
  kiln labels list churn --since 7d
  kiln labels list churn --since 2026-12-01T00:00:00Z --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			model := args[0]
			from, err := sinceFlag(since)
			if err != nil {
				return err
			}
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			batches, err := reg.LabelBatches(cmd.Context(), model, from)
			if err != nil {
				return modelNotFound(err, model)
			}
			if cfg.JSON {
				if batches == nil {
					batches = []registry.LabelBatch{}
				}
				return printJSON(cfg.stdout, batches)
			}
			if len(batches) == 0 {
				fmt.Fprintf(cfg.stdout, "No label batches for %s%s: kiln labels push %s FILE adds one.\n", model, sinceText(since), model)
				return nil
			}
			t := newTable(cfg.stdout, "BATCH", "PUSHED", "BY", "ROWS", "REJECTED", "SHA256", "SOURCE")
			var rows, rejected int64
			for _, b := range batches {
				t.row(strconv.FormatInt(b.ID, 10), when(b.PushedAt), dash(b.PushedBy), strconv.FormatInt(b.Rows, 10),
					strconv.FormatInt(b.Rejected, 10), b.SHA256[:12], filepath.Base(b.Source))
				rows += b.Rows
				rejected += b.Rejected
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintf(cfg.stdout, "%d batches, %d labels (%d rows rejected).\n", len(batches), rows, rejected)
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only batches pushed since: a duration back from now (36h, 7d), an RFC 3339 time or a date")
	return cmd
}

func sinceText(since string) string {
	if since == "" {
		return ""
	}
	return " since " + since
}

// modelClasses returns the classes of model's latest version when it is a
// multiclass model (its labels are class names), else nil; nil too when the
// model has no version (labels.Push then says the model does not exist) or
// its bundle's manifest cannot be read here (a bundle on another machine:
// the labels are then read as numbers, class indexes for a multiclass
// model).
func modelClasses(ctx context.Context, cfg *Config, reg *registry.Registry, name string) ([]string, error) {
	v, err := reg.Resolve(ctx, name)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	dir, err := cfg.localArtifact(ctx, v.BundleURI)
	if err != nil {
		return nil, nil
	}
	classes, err := model.ReadClasses(dir)
	if err != nil {
		return nil, nil
	}
	return classes, nil
}
