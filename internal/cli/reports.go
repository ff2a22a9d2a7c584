package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/report"
)

func newReportsCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "reports",
		Aliases: []string{"report"},
		Short:   "List, show and open batch reports (one per pipeline report step and logical date)",
		Long: `A report step writes, for each run's logical date, a self-contained HTML page
and a JSON summary (schema kiln.report/v1, docs/reports.md) and indexes them
in the registry. kiln dev serves them at http://127.0.0.1:8234/reports.`,
	}
	cmd.AddCommand(newReportsListCmd(cfg), newReportsShowCmd(cfg), newReportsOpenCmd(cfg))
	return cmd
}

func newReportsListCmd(cfg *Config) *cobra.Command {
	var f registry.ReportFilter
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List reports, oldest logical date first",
		Example: `  kiln reports list
  kiln reports list --model churn --from 2026-11-01
  kiln reports list --pipeline nightly-churn-report --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			entries, err := reg.Reports(cmd.Context(), f)
			if err != nil {
				return err
			}
			if cfg.JSON {
				if entries == nil {
					entries = []registry.ReportEntry{}
				}
				return printJSON(cfg.stdout, entries)
			}
			if len(entries) == 0 {
				fmt.Fprintln(cfg.stdout, "No reports yet: a pipeline with a report step writes one per run (see docs/reports.md).")
				return nil
			}
			t := newTable(cfg.stdout, "LOGICAL DATE", "PIPELINE", "STEP", "MODEL", "TRIGGER", "ROWS", "DRIFTED", "DATASET", "PREDICTIONS")
			for _, e := range entries {
				t.row(e.RunKey, e.Pipeline, e.Step, fmt.Sprintf("%s:%d", e.Model, e.Version), e.Trigger, fmt.Sprint(e.Rows),
					fmt.Sprintf("%d/%d", e.DriftedColumns, e.Columns), driftVerdict(e.DatasetDrift), driftVerdict(e.PredictionDrift))
			}
			return t.flush()
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Pipeline, "pipeline", "", "only this pipeline's reports")
	fl.StringVar(&f.Model, "model", "", "only reports over this model")
	fl.StringVar(&f.Schedule, "schedule", "", "only this schedule's reports")
	fl.StringVar(&f.From, "from", "", "first logical date (inclusive)")
	fl.StringVar(&f.To, "to", "", "last logical date (inclusive)")
	fl.IntVar(&f.Limit, "limit", 0, "keep the newest N (0: all)")
	return cmd
}

func driftVerdict(d bool) string {
	if d {
		return "DRIFT"
	}
	return "ok"
}

// findReport resolves PIPELINE[/STEP] and DATE to an indexed report.
func findReport(cmd *cobra.Command, cfg *Config, args []string) (registry.ReportEntry, string, error) {
	reg, err := cfg.openRegistry(cmd)
	if err != nil {
		return registry.ReportEntry{}, "", err
	}
	defer reg.Close()
	pipeline, step, _ := strings.Cut(args[0], "/")
	ctx := cmd.Context()
	var e registry.ReportEntry
	if step != "" {
		e, err = reg.Report(ctx, pipeline, step, args[1])
	} else {
		var entries []registry.ReportEntry
		entries, err = reg.Reports(ctx, registry.ReportFilter{Pipeline: pipeline, From: args[1], To: args[1]})
		switch {
		case err != nil:
		case len(entries) == 0:
			err = fmt.Errorf("report %s for %s: %w", pipeline, args[1], registry.ErrNotFound)
		case len(entries) > 1:
			var steps []string
			for _, x := range entries {
				steps = append(steps, pipeline+"/"+x.Step)
			}
			return e, "", &exitError{code: 2, err: fmt.Errorf("pipeline %s has %d reports for %s; name the step: %s", pipeline, len(entries), args[1], strings.Join(steps, ", "))}
		default:
			e = entries[0]
		}
	}
	if errors.Is(err, registry.ErrNotFound) {
		return e, "", &exitError{code: 1, err: fmt.Errorf("no report of %s for %s (kiln reports list shows them)", args[0], args[1])}
	}
	if err != nil {
		return e, "", err
	}
	dir, err := cfg.fetchArtifact(cmd.Context(), e.URI, true) // a backfill may have replaced it
	if err != nil {
		return e, "", err
	}
	return e, dir, nil
}

func newReportsShowCmd(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:   "show PIPELINE[/STEP] DATE",
		Short: "Print a report's summary (--json: the kiln.report/v1 JSON)",
		Example: `  kiln reports show nightly-churn-report 2026-12-02
  kiln reports show nightly-churn-report/report 2026-12-02 --json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, dir, err := findReport(cmd, cfg, args)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
			if err != nil {
				return fmt.Errorf("reading the report's summary: %w", err)
			}
			if cfg.JSON {
				_, err := cfg.stdout.Write(b)
				return err
			}
			var s report.Summary
			if err := json.Unmarshal(b, &s); err != nil {
				return fmt.Errorf("decoding %s: %w", filepath.Join(dir, "summary.json"), err)
			}
			printSummary(cfg, &s, filepath.Join(dir, "report.html"))
			return nil
		},
	}
}

// printSummary prints a report summary for people.
func printSummary(cfg *Config, s *report.Summary, html string) {
	out := cfg.stdout
	fmt.Fprintf(out, "%s\n", s.Title)
	fmt.Fprintf(out, "  logical date %s (%s)", s.LogicalDate, s.Trigger)
	if s.Interval != nil {
		fmt.Fprintf(out, ", data interval %s → %s", s.Interval.Start.Format("2006-01-02 15:04Z07:00"), s.Interval.End.Format("2006-01-02 15:04Z07:00"))
	}
	fmt.Fprintf(out, "\n  %d rows from %s\n", s.Rows, s.Input)
	for _, m := range s.Models {
		fmt.Fprintf(out, "  scored by %s:%d (%d rows)\n", m.Name, m.Version, m.Rows)
	}
	fmt.Fprintf(out, "  reference: %s; predictions: %s\n", dash(s.Reference.FeatureSource), dash(s.Reference.PredictionSource))
	p := s.Prediction
	fmt.Fprintf(out, "\nPredictions: mean %.4f (reference %.4f); %s %s = %.4g", p.Mean, p.ReferenceMean, p.Method, "statistic", p.Statistic)
	if p.PValue != nil {
		fmt.Fprintf(out, ", p = %.3g", *p.PValue)
	}
	fmt.Fprintf(out, " → %s\n", driftVerdict(p.Drifted))
	fmt.Fprintf(out, "\nFeature drift: %d of %d drifted (%.0f%%; dataset drift at %.0f%%) → %s\n",
		s.Drift.DriftedColumns, len(s.Drift.Columns), 100*s.Drift.Share, 100*s.Drift.ShareThreshold, driftVerdict(s.Drift.Drifted))
	t := newTable(out, "  FEATURE", "KIND", "TEST", "STATISTIC", "P-VALUE", "THRESHOLD", "PSI", "VERDICT")
	for _, c := range s.Drift.Columns {
		pv := "-"
		if c.PValue != nil {
			pv = fmt.Sprintf("%.3g", *c.PValue)
		}
		t.row("  "+c.Column, c.Kind, c.Method, fmt.Sprintf("%.4g", c.Statistic), pv, fmt.Sprintf("%g", c.Threshold), fmt.Sprintf("%.4f", c.PSI), driftVerdict(c.Drifted))
	}
	t.flush()
	var issues []string
	for _, q := range s.Quality {
		switch {
		case q.Missing:
			issues = append(issues, fmt.Sprintf("%s: not in the scored output", q.Column))
		default:
			if q.NullRate > q.ReferenceNullRate+0.01 {
				issues = append(issues, fmt.Sprintf("%s: %.1f%% null (training %.1f%%)", q.Column, 100*q.NullRate, 100*q.ReferenceNullRate))
			}
			if q.OutOfRange > 0 {
				issues = append(issues, fmt.Sprintf("%s: %d values outside the training range", q.Column, q.OutOfRange))
			}
			if q.Unseen > 0 {
				issues = append(issues, fmt.Sprintf("%s: %d unseen categories (e.g. %s)", q.Column, q.Unseen, strings.Join(q.UnseenExamples, ", ")))
			}
		}
	}
	fmt.Fprintf(out, "\nData quality: %d issue(s)\n", len(issues))
	for _, i := range issues {
		fmt.Fprintf(out, "  %s\n", i)
	}
	if perf := s.Performance; perf != nil {
		fmt.Fprintf(out, "\nPerformance on %d labelled rows (%.1f%%, %s):", perf.LabeledRows, 100*perf.Coverage, perf.LabelSource)
		for _, k := range sortedKeys(perf.Metrics) {
			fmt.Fprintf(out, " %s %.4f", k, perf.Metrics[k])
		}
		fmt.Fprintln(out)
	}
	if len(s.Trend) > 1 {
		fmt.Fprintf(out, "\nTrend (%d reports): ", len(s.Trend))
		for _, p := range s.Trend {
			fmt.Fprintf(out, "%s %.0f%%  ", p.LogicalDate, 100*p.DriftShare)
		}
		fmt.Fprintln(out)
	}
	for _, w := range s.Warnings {
		fmt.Fprintf(out, "warning: %s\n", w)
	}
	fmt.Fprintf(out, "\n%s\n", html)
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func newReportsOpenCmd(cfg *Config) *cobra.Command {
	var print bool
	cmd := &cobra.Command{
		Use:   "open PIPELINE[/STEP] DATE",
		Short: "Open a report in the browser (or print where it is)",
		Long: `Open the report's page: on the running dev stack's local page when there is
one, else the HTML file itself, with xdg-open (or open on macOS). Without a
desktop (or with --print), print the URL and the file's path instead.`,
		Example: "  kiln reports open nightly-churn-report 2026-12-02",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, dir, err := findReport(cmd, cfg, args)
			if err != nil {
				return err
			}
			file := filepath.Join(dir, "report.html")
			target := file
			if cfg.devReports != "" {
				target = fmt.Sprintf("%s/reports/%s/%s/%s", strings.TrimRight(cfg.devReports, "/"), url.PathEscape(e.Pipeline), url.PathEscape(e.Step), url.PathEscape(e.RunKey))
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, map[string]string{"url": target, "file": file})
			}
			if !print {
				if opener := browserOpener(); opener != "" {
					if err := exec.Command(opener, target).Start(); err == nil {
						fmt.Fprintf(cfg.stdout, "Opened %s\n", target)
						return nil
					}
				}
			}
			fmt.Fprintf(cfg.stdout, "%s\n%s\n", target, file)
			return nil
		},
	}
	cmd.Flags().BoolVar(&print, "print", false, "print the URL and the file instead of opening them")
	return cmd
}

// browserOpener returns the desktop's URL opener, or "" without a desktop.
func browserOpener() string {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		if _, err := exec.LookPath("open"); err == nil && os.Getenv("TERM_PROGRAM") != "" {
			return "open"
		}
		return ""
	}
	if p, err := exec.LookPath("xdg-open"); err == nil {
		return p
	}
	return ""
}
