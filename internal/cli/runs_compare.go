package cli

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/workflows"
)

// CompareField is one line of kiln runs compare: a field's value in each
// run, and whether they differ.
type CompareField struct {
	Name    string   `json:"name"`
	Values  []string `json:"values"`
	Differs bool     `json:"differs"`
}

// Comparison is what kiln runs compare --json prints.
type Comparison struct {
	Runs   []string       `json:"runs"`
	Fields []CompareField `json:"fields"`
}

func newRunsCompareCmd(cfg *Config) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "compare RUN RUN...",
		Short: "Compare runs side by side: params, data, metrics, model and step durations",
		Long: `Compare two or more pipeline runs field by field: status, spec and dataset
hashes, rows, task and features, training parameters, evaluation metrics,
the model registered (or rejected), and each step's duration. Lines whose
values differ are marked with *; --all-fields also prints the lines that are
the same. Runs that registered nothing (a gate rejected the model, a run that
failed after evaluate) compare on what they got to. RUN is as for kiln runs
show: a workflow ID, with or without "pipeline/", or a bare run ID.`,
		Example: `  kiln runs compare churn/20261203-101500-a1b2 churn/20261203-104512-c3d4
  kiln runs compare 20261203-101500-a1b2 20261203-104512-c3d4 20261203-110001-e5f6 --json`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := cfg.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			var runs []workflows.RunStatus
			var ids []string
			for _, arg := range args {
				wid, err := resolveRun(ctx, cfg, c, arg)
				if err != nil {
					return err
				}
				st, _, _, err := readRunStatus(ctx, c, wid)
				if err != nil {
					return err
				}
				runs = append(runs, st)
				ids = append(ids, wid)
			}
			cmp := compareRuns(ids, runs)
			if cfg.JSON {
				return printJSON(cfg.stdout, cmp)
			}
			header := []string{"", "FIELD"}
			for _, id := range ids {
				header = append(header, shortRun(id))
			}
			t := newTable(cfg.stdout, header...)
			same := 0
			for _, f := range cmp.Fields {
				if !f.Differs && !all {
					same++
					continue
				}
				mark := " "
				if f.Differs {
					mark = "*"
				}
				t.row(append([]string{mark, f.Name}, f.Values...)...)
			}
			if err := t.flush(); err != nil {
				return err
			}
			if same > 0 {
				fmt.Fprintf(cfg.stdout, "(%d fields are the same in every run: --all-fields shows them)\n", same)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all-fields", false, "also print the fields that are the same in every run")
	return cmd
}

// shortRun is a run's column header: its pipeline and run ID.
func shortRun(wid string) string { return strings.TrimPrefix(wid, "pipeline/") }

// compareRuns lays the runs' fields side by side, in a fixed order: the
// run, its data, the parameters, the metrics, the model, the durations.
func compareRuns(ids []string, runs []workflows.RunStatus) Comparison {
	out := Comparison{Runs: ids}
	n := len(runs)
	// addKeyed adds a field whose runs differ when their keys differ
	// (times always differ: a step's key is its status); add compares the
	// values themselves.
	addKeyed := func(name string, value, key func(i int) string) {
		f := CompareField{Name: name, Values: make([]string, n)}
		for i := range runs {
			f.Values[i] = value(i)
			if f.Values[i] == "" {
				f.Values[i] = "-"
			}
			if key != nil && i > 0 && key(i) != key(0) {
				f.Differs = true
			}
		}
		out.Fields = append(out.Fields, f)
	}
	add := func(name string, value func(i int) string) { addKeyed(name, value, value) }
	never := func(int) string { return "" }
	keys := func(pick func(i int) []string) []string {
		seen := map[string]bool{}
		var ks []string
		for i := range runs {
			for _, k := range pick(i) {
				if !seen[k] {
					seen[k] = true
					ks = append(ks, k)
				}
			}
		}
		sort.Strings(ks)
		return ks
	}
	short := func(h string) string {
		if len(h) > 12 {
			return h[:12]
		}
		return h
	}
	add("status", func(i int) string { return runs[i].Status })
	add("pipeline", func(i int) string { return runs[i].Pipeline })
	addKeyed("started", func(i int) string { return when(runs[i].Started) }, never)
	addKeyed("duration", func(i int) string {
		if runs[i].Ended.IsZero() {
			return ""
		}
		return duration(runs[i].Ended.Sub(runs[i].Started))
	}, never)
	add("spec sha256", func(i int) string { return short(runs[i].SpecHash) })
	add("error", func(i int) string { return runs[i].Error })
	arts := make([]struct {
		dataset, rows, task, features, model string
		params                               map[string]any
		metrics                              map[string]float64
	}, n)
	for i := range runs {
		a := runs[i].Artifacts()
		if d := a.Dataset; d != nil {
			arts[i].dataset, arts[i].rows = short(d.SHA256), strconv.FormatInt(d.Rows, 10)
		}
		if p := a.Prepared; p != nil {
			arts[i].task, arts[i].features = p.Task, strconv.Itoa(len(p.Features))
		}
		if b := a.Bundle; b != nil {
			arts[i].params = b.Params
		}
		if e := a.Evaluation; e != nil {
			arts[i].metrics = e.Metrics
		}
		if m := a.Model; m != nil {
			arts[i].model = fmt.Sprintf("%s:%d", m.Name, m.Version)
			if m.Rejected {
				arts[i].model += " (rejected)"
			}
		}
	}
	add("dataset sha256", func(i int) string { return arts[i].dataset })
	add("dataset rows", func(i int) string { return arts[i].rows })
	add("task", func(i int) string { return arts[i].task })
	add("features", func(i int) string { return arts[i].features })
	for _, k := range keys(func(i int) []string { return mapKeys(arts[i].params) }) {
		add("param "+k, func(i int) string {
			v, ok := arts[i].params[k]
			if !ok {
				return ""
			}
			return paramsText(map[string]any{k: v})[len(k)+1:]
		})
	}
	for _, k := range keys(func(i int) []string { return mapKeys(arts[i].metrics) }) {
		add("metric "+k, func(i int) string {
			v, ok := arts[i].metrics[k]
			if !ok {
				return ""
			}
			return strconv.FormatFloat(v, 'f', 4, 64)
		})
	}
	add("model", func(i int) string { return arts[i].model })
	var steps []string
	seen := map[string]bool{}
	for i := range runs {
		for _, s := range runs[i].Steps {
			if !seen[s.Name] {
				seen[s.Name] = true
				steps = append(steps, s.Name)
			}
		}
	}
	for _, name := range steps {
		status := func(i int) string {
			if s := runs[i].Step(name); s != nil {
				return stepLabel(*s)
			}
			return ""
		}
		addKeyed("step "+name, func(i int) string {
			s := runs[i].Step(name)
			if s == nil || s.Started.IsZero() || s.Ended.IsZero() {
				return status(i)
			}
			return fmt.Sprintf("%s %s", stepLabel(*s), duration(s.Ended.Sub(s.Started)))
		}, status)
	}
	return out
}

// mapKeys returns m's keys (any map with string keys).
func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
