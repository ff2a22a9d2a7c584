package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/monitor"
	"github.com/kiln-ml/kiln/internal/registry"
)

func newMonitorCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "What the monitors measured and decided, window by window",
		Long: `A pipeline's monitor step starts monitor/<model>, which measures every window of
served traffic (drift of each feature and of the predictions, live metrics
over the late labels that joined, serving health), decides whether to retrain,
and records both in the registry. kiln monitor show reads that record.`,
	}
	cmd.AddCommand(newMonitorShowCmd(cfg))
	return cmd
}

// crossing is a figure that crossed its threshold in a window.
type crossing struct {
	Window    time.Time `json:"window"`
	Metric    string    `json:"metric"`
	Value     float64   `json:"value"`
	Threshold float64   `json:"threshold"`
	// By is how far beyond the threshold the value is.
	By float64 `json:"by"`
}

// monitorView is what `kiln monitor show` prints.
type monitorView struct {
	Model     string                     `json:"model"`
	Windows   []monitor.Window           `json:"windows"`
	Decisions []registry.MonitorDecision `json:"decisions"`
	Crossings []crossing                 `json:"crossings"`
}

func newMonitorShowCmd(cfg *Config) *cobra.Command {
	var since string
	var limit int
	cmd := &cobra.Command{
		Use:   "show MODEL",
		Short: "Print a model's monitor windows, what crossed its threshold, and the decisions",
		Long: `Show the windows recorded by monitor/MODEL, newest last: served rows, the share of
drifted features, the live metrics over labelled rows (only above the minimum
sample), label coverage and serving health; then every figure that crossed its
threshold (which, by how much, when) and every decision with its reason
(retrain, none, cooldown, ...). --json prints it all.`,
		Example: `  kiln monitor show churn
  kiln monitor show churn --since 2h
  kiln monitor show churn --since 2026-12-03T08:00:00Z --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := sinceFlag(since)
			if err != nil {
				return err
			}
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			ctx := cmd.Context()
			rows, err := reg.MonitorWindows(ctx, args[0], from, limit)
			if err != nil {
				return err
			}
			v := monitorView{Model: args[0], Windows: []monitor.Window{}, Crossings: []crossing{}}
			for _, r := range rows {
				var w monitor.Window
				if err := json.Unmarshal(r.Data, &w); err != nil {
					return fmt.Errorf("window %s of %s: %w", r.End.Format(time.RFC3339), args[0], err)
				}
				v.Windows = append(v.Windows, w)
			}
			if v.Decisions, err = reg.MonitorDecisions(ctx, args[0], from); err != nil {
				return err
			}
			if v.Decisions == nil {
				v.Decisions = []registry.MonitorDecision{}
			}
			if len(v.Windows) > 0 && limit > 0 {
				first := v.Windows[0].End
				kept := v.Decisions[:0]
				for _, d := range v.Decisions {
					if !d.Window.Before(first) {
						kept = append(kept, d)
					}
				}
				v.Decisions = kept
			}
			v.Crossings = crossings(v.Windows, v.Decisions)
			if cfg.JSON {
				return printJSON(cfg.stdout, v)
			}
			if len(v.Windows) == 0 {
				fmt.Fprintf(cfg.stdout, "No monitor windows recorded for %s yet: a pipeline's monitor step starts monitor/%s.\n", args[0], args[0])
				return nil
			}
			printMonitor(cfg, v)
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "only windows ending after this: a duration back from now (2h, 7d), an RFC 3339 time or a date")
	cmd.Flags().IntVar(&limit, "limit", 50, "the newest N windows (0: all)")
	return cmd
}

// crossings lists, per window, the figures beyond their thresholds: drifted
// features (statistic against threshold) and the metric a decision names.
func crossings(ws []monitor.Window, ds []registry.MonitorDecision) []crossing {
	var out []crossing
	for _, w := range ws {
		for _, f := range w.Drift {
			if !f.Drifted {
				continue
			}
			c := crossing{Window: w.End, Metric: "drift:" + f.Name + " (" + f.Method + ")", Value: f.Statistic, Threshold: f.Threshold}
			if f.PValue != nil {
				c.Metric, c.Value = "p-value:"+f.Name+" ("+f.Method+")", *f.PValue
				c.By = f.Threshold - *f.PValue
			} else {
				c.By = f.Statistic - f.Threshold
			}
			out = append(out, c)
		}
	}
	for _, d := range ds {
		if d.Metric == "" || d.Trigger == "" {
			continue
		}
		out = append(out, crossing{Window: d.Window, Metric: d.Metric, Value: d.Value, Threshold: d.Threshold, By: d.Value - d.Threshold})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Window.Before(out[j].Window) })
	return out
}

func printMonitor(cfg *Config, v monitorView) {
	out := cfg.stdout
	fmt.Fprintf(out, "Monitor of %s: %d window(s)\n\n", v.Model, len(v.Windows))
	metricNames := map[string]bool{}
	for _, w := range v.Windows {
		for k := range w.Metrics {
			metricNames[k] = true
		}
	}
	var names []string
	for _, k := range []string{"auc", "logloss", "accuracy", "f1", "f1_macro", "rmse", "mae", "r2"} {
		if metricNames[k] {
			names = append(names, k)
		}
	}
	header := []string{"WINDOW END", "VERSION", "ROWS", "DRIFTED", "PRED", "LABELLED"}
	for _, n := range names {
		header = append(header, strings.ToUpper(n))
	}
	header = append(header, "P99 MS", "ERRORS", "DECISION")
	t := newTable(out, header...)
	dec := map[time.Time]registry.MonitorDecision{}
	for _, d := range v.Decisions {
		dec[d.Window.UTC()] = d
	}
	for _, w := range v.Windows {
		pred := "-"
		if w.Prediction != nil {
			pred = driftVerdict(w.Prediction.Drifted)
		}
		row := []string{w.End.Local().Format("2006-01-02 15:04:05"), fmt.Sprint(w.Version), fmt.Sprint(w.Rows),
			fmt.Sprintf("%d/%d", len(w.Drifted()), w.Features), pred, fmt.Sprintf("%d (%.0f%%)", w.Labeled, 100*w.Coverage)}
		for _, n := range names {
			if val, ok := w.Metrics[n]; ok {
				row = append(row, fmt.Sprintf("%.4f", val))
			} else {
				row = append(row, "-")
			}
		}
		p99, errs := "-", "-"
		if h := w.Health; h != nil {
			p99, errs = fmt.Sprintf("%.2f", h.P99Ms), fmt.Sprintf("%.2f%%", 100*h.ErrorRate)
		}
		action := "-"
		if d, ok := dec[w.End.UTC()]; ok {
			action = d.Action
		}
		row = append(row, p99, errs, action)
		t.row(row...)
	}
	t.flush()
	if len(v.Crossings) > 0 {
		fmt.Fprintf(out, "\nCrossed a threshold:\n")
		for _, c := range v.Crossings {
			fmt.Fprintf(out, "  %s  %s = %.4g (threshold %.4g, by %+.4g)\n", c.Window.Local().Format("2006-01-02 15:04:05"), c.Metric, c.Value, c.Threshold, c.By)
		}
	}
	fmt.Fprintf(out, "\nDecisions:\n")
	for _, d := range v.Decisions {
		extra := ""
		if d.WorkflowID != "" {
			extra = " → " + d.WorkflowID
		}
		fmt.Fprintf(out, "  #%d %s %-12s %s%s\n", d.ID, d.Window.Local().Format("2006-01-02 15:04:05"), d.Action, d.Reason, extra)
	}
	if last := v.Windows[len(v.Windows)-1]; last.Withheld != "" || len(last.Notes) > 0 {
		fmt.Fprintf(out, "\nLatest window:")
		if last.Withheld != "" {
			fmt.Fprintf(out, " metrics withheld: %s.", last.Withheld)
		}
		for _, n := range last.Notes {
			fmt.Fprintf(out, " %s.", n)
		}
		fmt.Fprintln(out)
	}
	var sum monitor.LabelCounts
	for _, w := range v.Windows {
		l := w.Labels
		sum.Total, sum.Joined, sum.Unknown = sum.Total+l.Total, sum.Joined+l.Joined, sum.Unknown+l.Unknown
		sum.Duplicate, sum.OutsideWindow, sum.BeforePrediction = sum.Duplicate+l.Duplicate, sum.OutsideWindow+l.OutsideWindow, sum.BeforePrediction+l.BeforePrediction
	}
	if sum.Total > 0 {
		fmt.Fprintf(out, "\nLabels arrived over these windows: %d: %d joined, %d unknown ID, %d duplicated, %d too late, %d before their prediction\n",
			sum.Total, sum.Joined, sum.Unknown, sum.Duplicate, sum.OutsideWindow, sum.BeforePrediction)
	}
}
