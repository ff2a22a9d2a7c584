package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/experiment"
	"github.com/kiln-ml/kiln/internal/labels"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/internal/serving/logship"
)

func newExperimentsCmd(cfg *Config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "experiments",
		Short: "Run A/B experiments between model versions on live traffic",
		Long: `An experiment splits a model's traffic between fixed variants (model
versions) by weight, assigning each request by a key it carries (a header
such as X-User-ID, or a field of the request's first instance), so the same
user always meets the same variant, on every replica and after restarts.

Outcomes are posted later by prediction ID with kiln labels push (the label
of a prediction, or a business KPI such as a conversion), and kiln
experiments show compares every variant with the control (the first) with
always-valid sequential intervals and a practical-significance margin
(--min-effect): "better" and "worse" mean by more than the margin, and the
verdict may be read as often as you like. See docs/experiments.md.`,
	}
	cmd.AddCommand(newExperimentsStartCmd(cfg), newExperimentsShowCmd(cfg), newExperimentsStopCmd(cfg), newExperimentsListCmd(cfg))
	return cmd
}

// experimentServers are the model servers an experiment command talks to:
// --server values (comma-separated lists allowed), else the default one.
func experimentServers(cfg *Config, flags []string) []string {
	var out []string
	for _, f := range flags {
		for _, s := range strings.Split(f, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	if len(out) == 0 {
		out = []string{cfg.modelServer()}
	}
	return out
}

// adminToken is the model servers' admin token: --admin-token, else
// KILN_ADMIN_TOKEN, else $KILN_HOME/admin-token.
func adminToken(cfg *Config, flag string) string {
	if flag != "" {
		return flag
	}
	tok := ""
	fromEnv(&tok, "KILN_ADMIN_TOKEN")
	if tok == "" {
		tok = readToken(cfg.path("admin-token"))
	}
	return tok
}

// parseVariant reads NAME=VERSION[:WEIGHT].
func parseVariant(s string) (experiment.Variant, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return experiment.Variant{}, fmt.Errorf("--variant %q: want NAME=VERSION or NAME=VERSION:WEIGHT, e.g. control=3 or treatment=4:20", s)
	}
	ver, weight, hasWeight := strings.Cut(rest, ":")
	v := experiment.Variant{Name: name, Weight: 1}
	var err error
	if v.Version, err = strconv.ParseInt(ver, 10, 64); err != nil || v.Version < 1 {
		return experiment.Variant{}, fmt.Errorf("--variant %q: version %q is not a version number", s, ver)
	}
	if hasWeight {
		if v.Weight, err = strconv.Atoi(weight); err != nil || v.Weight < 1 {
			return experiment.Variant{}, fmt.Errorf("--variant %q: weight %q is not a whole number ≥ 1", s, weight)
		}
	}
	return v, nil
}

func newExperimentsStartCmd(cfg *Config) *cobra.Command {
	var (
		model, key, metric, token string
		variants, servers         []string
		minEffect, alpha, power   float64
	)
	cmd := &cobra.Command{
		Use:   "start NAME --model MODEL --variant NAME=VERSION[:WEIGHT]... --key header:H|field:F --metric METRIC --min-effect X",
		Short: "Start an A/B experiment: deploy its variants to the model servers",
		Long: `Start an experiment on MODEL: record it in the registry and deploy its
variants to the model servers (--server, default the dev stack's; a replica
that restarts restores it from the registry). The first --variant is the
control. Weights are relative (default 1 each). The experiment replaces the
model's stable/canary split until kiln experiments stop. A deploy step on
the same model replaces the split: stop one before starting the other.

--metric says what a posted outcome measures:
  accuracy   the label of a binary classifier's prediction (correct at 0.5)
  kpi        a business value posted per prediction (conversion, revenue)
  abs_error  a regression's label (lower |prediction - label| is better)
--min-effect is the smallest difference in that metric that matters.`,
		Example: `  kiln experiments start pricing --model churn --variant control=3 --variant treatment=4 \
      --key header:X-User-ID --metric accuracy --min-effect 0.02
  kiln experiments start upsell --model churn --variant a=3:80 --variant b=4:10 --variant c=5:10 \
      --key field:customer_id --metric kpi --min-effect 0.5 --server http://10.0.0.5:8080,http://10.0.0.6:8080`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			def := experiment.Definition{Key: key, Metric: metric, MinEffect: minEffect, Alpha: alpha, Power: power,
				Servers: experimentServers(cfg, servers)}
			for _, s := range variants {
				v, err := parseVariant(s)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				def.Variants = append(def.Variants, v)
			}
			if model == "" {
				return &exitError{code: 2, err: errors.New("--model is required")}
			}
			if err := def.Check(); err != nil {
				return &exitError{code: 2, err: err}
			}
			ctx := cmd.Context()
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			exp := &serving.Experiment{Name: name, Key: key}
			for _, v := range def.Variants {
				ver, err := reg.Get(ctx, model, v.Version)
				if err != nil {
					return fmt.Errorf("variant %s: %w", v.Name, modelNotFound(err, model))
				}
				exp.Variants = append(exp.Variants, serving.Variant{Name: v.Name, Version: v.Version, BundleURI: ver.BundleURI, Weight: v.Weight})
			}
			if err := exp.Check(); err != nil {
				return &exitError{code: 2, err: err}
			}
			defJSON, _ := json.Marshal(def)
			expJSON, _ := json.Marshal(exp)
			rec, err := reg.CreateExperiment(ctx, registry.Experiment{Name: name, Model: model, Definition: string(defJSON), StartedBy: activities.CurrentUser()})
			if err != nil {
				return err
			}
			ctl := exp.Variants[0]
			if err := reg.SetDeployment(ctx, registry.Deployment{Model: model, StableVersion: ctl.Version, StableURI: ctl.BundleURI,
				Experiment: string(expJSON), RunID: "experiment/" + name}); err != nil {
				return err
			}
			d := serving.Deployment{Stable: serving.Target{Version: ctl.Version, BundleURI: ctl.BundleURI}, Experiment: exp}
			if err := pushDeployment(ctx, def.Servers, adminToken(cfg, token), model, d); err != nil {
				return fmt.Errorf("%w\nthe experiment is recorded (replicas restore it when they restart); kiln experiments stop %s undoes it", err, name)
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, map[string]any{"experiment": rec, "definition": def})
			}
			fmt.Fprintf(cfg.stdout, "Experiment %s started on %s (%s), assigning by %s:\n", name, model, strings.Join(def.Servers, ", "), key)
			var total int
			for _, v := range def.Variants {
				total += v.Weight
			}
			for i, v := range def.Variants {
				role := ""
				if i == 0 {
					role = " (control)"
				}
				fmt.Fprintf(cfg.stdout, "  %-12s v%-4d %5.1f%%%s\n", v.Name, v.Version, 100*float64(v.Weight)/float64(total), role)
			}
			fmt.Fprintf(cfg.stdout, "Post outcomes by prediction ID with kiln labels push %s FILE; read the verdicts with kiln experiments show %s.\n", model, name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&model, "model", "", "the model whose traffic is split (required)")
	f.StringArrayVar(&variants, "variant", nil, "a variant as NAME=VERSION[:WEIGHT]; repeat, the first is the control")
	f.StringVar(&key, "key", "header:X-User-ID", `what assigns a request: "header:NAME" or "field:NAME"`)
	f.StringVar(&metric, "metric", experiment.MetricAccuracy, "the outcome compared: accuracy, kpi or abs_error")
	f.Float64Var(&minEffect, "min-effect", 0, "the smallest difference in the metric that matters (required), e.g. 0.02")
	f.Float64Var(&alpha, "alpha", 0.05, "chance of any wrong better/worse verdict over the experiment")
	f.Float64Var(&power, "power", 0.8, "chance of finding a difference of --min-effect at the planned sample")
	f.StringArrayVar(&servers, "server", nil, "model server base URL(s), comma-separated or repeated (default: the dev stack's)")
	f.StringVar(&token, "admin-token", "", "model server admin token (env KILN_ADMIN_TOKEN; default: $KILN_HOME/admin-token)")
	return cmd
}

// pushDeployment sends d to every server, naming the ones that failed.
func pushDeployment(ctx context.Context, servers []string, token, model string, d serving.Deployment) error {
	var errs []error
	for _, s := range servers {
		c := &serving.Client{BaseURL: s, Token: token}
		if err := c.SetDeployment(ctx, model, d); err != nil {
			errs = append(errs, fmt.Errorf("deploying %s to %s: %w", model, s, err))
		}
	}
	return errors.Join(errs...)
}

// experimentRecord reads an experiment and its definition.
func experimentRecord(ctx context.Context, reg *registry.Registry, name string) (registry.Experiment, experiment.Definition, error) {
	rec, err := reg.Experiment(ctx, name)
	if errors.Is(err, registry.ErrNotFound) {
		return rec, experiment.Definition{}, fmt.Errorf("experiment %q not found (kiln experiments list shows what exists)", name)
	}
	if err != nil {
		return rec, experiment.Definition{}, err
	}
	var def experiment.Definition
	if err := json.Unmarshal([]byte(rec.Definition), &def); err != nil {
		return rec, def, fmt.Errorf("experiment %s: reading its definition: %w", name, err)
	}
	return rec, def, nil
}

// ExperimentShow is what kiln experiments show --json prints.
type ExperimentShow struct {
	Experiment registry.Experiment   `json:"experiment"`
	Definition experiment.Definition `json:"definition"`
	Report     experiment.Report     `json:"report"`
	Labels     labels.Counts         `json:"labels"`
	Logs       int                   `json:"request_logs"`
	Notes      []string              `json:"notes,omitempty"`
	Pairs      int                   `json:"pairs"`
}

func newExperimentsShowCmd(cfg *Config) *cobra.Command {
	var logDirs []string
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Print an experiment's verdict per variant",
		Long: `Join the outcomes posted for the experiment's model (kiln labels push) to
its request logs by prediction ID, and compare each variant with the control:
  better      the interval lies wholly above +min_effect (practically significant)
  worse       the interval lies wholly below -min_effect
  equivalent  the interval lies within ±min_effect and the planned sample is reached
  not yet     none of these, yet (the note says what is missing)
The intervals are always valid (an mSPRT confidence sequence): reading the
verdict every day does not raise the chance of a false one. The decision
line says which variant to keep, or to continue.

Request logs are read from $KILN_HOME/requests; replicas with their own Kiln
homes are added with --request-logs DIR.`,
		Example: `  kiln experiments show pricing
  kiln experiments show pricing --request-logs /srv/replica2/.kiln/requests --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			rec, def, err := experimentRecord(ctx, reg, args[0])
			if err != nil {
				return err
			}
			out := ExperimentShow{Experiment: rec, Definition: def}
			// The home's logs, with those the model servers shipped to the
			// object store (--artifacts), and those of --logs.
			var store *artifact.Store
			if cfg.Artifacts != "" {
				if store, err = cfg.openStore(ctx); err != nil {
					return err
				}
				defer store.Close()
			}
			logs, err := logship.Files(ctx, store, cfg.path("requests"), rec.Model, rec.StartedAt)
			if err != nil {
				return err
			}
			dirs := append([]string{cfg.path("requests")}, logDirs...)
			for _, d := range logDirs {
				files, err := serving.RequestLogFiles(d, rec.Model, rec.StartedAt)
				if err != nil {
					return err
				}
				logs = append(logs, files...)
			}
			out.Logs = len(logs)
			batches, err := reg.LabelBatches(ctx, rec.Model, rec.StartedAt)
			if err != nil {
				return modelNotFound(err, rec.Model)
			}
			var files []string
			for _, b := range batches {
				p, err := cfg.localArtifact(cmd.Context(), b.URI)
				if err != nil {
					return fmt.Errorf("label batch %d: %w", b.ID, err)
				}
				files = append(files, p)
			}
			var obs []experiment.Observation
			switch {
			case len(logs) == 0:
				out.Notes = append(out.Notes, fmt.Sprintf("no request logs of %s since the experiment started in %s", rec.Model, strings.Join(dirs, ", ")))
			case len(files) == 0:
				out.Notes = append(out.Notes, fmt.Sprintf("no outcomes posted since the experiment started: kiln labels push %s FILE", rec.Model))
			default:
				j, err := labels.Join(ctx, labels.JoinInput{RequestLogs: logs, LabelFiles: files, From: rec.StartedAt, To: rec.StoppedAt})
				if err != nil {
					return fmt.Errorf("joining outcomes to predictions: %w", err)
				}
				out.Labels, out.Pairs = j.Counts, len(j.Pairs)
				classes, err := modelClasses(ctx, cfg, reg, rec.Model)
				if err != nil {
					return err
				}
				for _, p := range j.Pairs {
					obs = append(obs, experiment.Observation{Variant: p.Variant, Prediction: p.Prediction, Label: p.Label, Class: classes != nil})
				}
			}
			if out.Report, err = experiment.Analyze(def, obs); err != nil {
				return err
			}
			if out.Report.Unassigned > 0 {
				out.Notes = append(out.Notes, fmt.Sprintf("%d labelled predictions were not served by a variant of the experiment (ignored)", out.Report.Unassigned))
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, out)
			}
			status := "running"
			if !rec.Running() {
				status = "stopped " + when(rec.StoppedAt) + ": " + rec.Outcome
			}
			fmt.Fprintf(cfg.stdout, "Experiment %s on %s, by %s, started %s by %s (%s)\n", rec.Name, rec.Model, def.Key, when(rec.StartedAt), dash(rec.StartedBy), status)
			fmt.Fprintf(cfg.stdout, "Metric %s, practical margin ±%g, alpha %g over %d comparisons\n\n", def.Metric, def.MinEffect, out.Report.Alpha, len(def.Variants)-1)
			t := newTable(cfg.stdout, "VARIANT", "VERSION", "WEIGHT", "LABELLED", strings.ToUpper(def.Metric), "EFFECT", "INTERVAL", "NEED", "VERDICT")
			for i, r := range out.Report.Results {
				mean, eff, iv, need := "-", "-", "-", "-"
				if r.N > 0 {
					mean = fmt.Sprintf("%.4g", r.Mean)
				}
				if i > 0 {
					if r.N > 0 && out.Report.Results[0].N > 0 {
						eff = fmt.Sprintf("%+.4f", r.Effect)
						iv = fmt.Sprintf("[%s, %s]", bound(r.Lower), bound(r.Upper))
					}
					need = strconv.FormatInt(r.Need, 10)
				}
				t.row(r.Name, "v"+strconv.FormatInt(r.Version, 10), strconv.Itoa(def.Variants[i].Weight), strconv.FormatInt(r.N, 10), mean, eff, iv, need, r.Verdict)
			}
			if err := t.flush(); err != nil {
				return err
			}
			fmt.Fprintln(cfg.stdout)
			for _, r := range out.Report.Results[1:] {
				fmt.Fprintf(cfg.stdout, "%s: %s\n", r.Name, r.Note)
			}
			fmt.Fprintf(cfg.stdout, "Decision: %s\n", out.Report.Decision)
			for _, n := range out.Notes {
				fmt.Fprintf(cfg.stdout, "note: %s\n", n)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&logDirs, "request-logs", nil, "another replica's request log directory (repeatable)")
	return cmd
}

func newExperimentsStopCmd(cfg *Config) *cobra.Command {
	var (
		keep, reason, token string
		servers             []string
	)
	cmd := &cobra.Command{
		Use:   "stop NAME [--keep VARIANT] --reason REASON",
		Short: "Stop an experiment: serve one variant (the control by default) to everyone",
		Long: `Stop an experiment: the model servers serve the kept variant's version to
all traffic (the control unless --keep names another), the registry records
the outcome, and the experiment's verdicts stay readable with kiln
experiments show. Aliases do not move: promote the kept version with kiln
models promote when it should become production.`,
		Example: `  kiln experiments stop pricing --keep treatment --reason "better by 3 points, decided"
  kiln experiments stop pricing --reason "launch postponed"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return &exitError{code: 2, err: errors.New(`--reason is required: say why the experiment ends (it is kept in the registry)`)}
			}
			ctx := cmd.Context()
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			rec, def, err := experimentRecord(ctx, reg, args[0])
			if err != nil {
				return err
			}
			kept := def.Variants[0]
			if keep != "" {
				found := false
				for _, v := range def.Variants {
					if v.Name == keep {
						kept, found = v, true
					}
				}
				if !found {
					names := make([]string, len(def.Variants))
					for i, v := range def.Variants {
						names[i] = v.Name
					}
					return &exitError{code: 2, err: fmt.Errorf("--keep %q is not a variant of %s (%s)", keep, rec.Name, strings.Join(names, ", "))}
				}
			}
			if !rec.Running() {
				return fmt.Errorf("experiment %s already stopped at %s: %s", rec.Name, when(rec.StoppedAt), rec.Outcome)
			}
			ver, err := reg.Get(ctx, rec.Model, kept.Version)
			if err != nil {
				return modelNotFound(err, rec.Model)
			}
			if err := reg.SetDeployment(ctx, registry.Deployment{Model: rec.Model, StableVersion: kept.Version, StableURI: ver.BundleURI, RunID: "experiment/" + rec.Name}); err != nil {
				return err
			}
			if len(servers) == 0 {
				servers = def.Servers
			}
			d := serving.Deployment{Stable: serving.Target{Version: kept.Version, BundleURI: ver.BundleURI}}
			pushErr := pushDeployment(ctx, experimentServers(cfg, servers), adminToken(cfg, token), rec.Model, d)
			outcome := fmt.Sprintf("kept %s (v%d): %s", kept.Name, kept.Version, reason)
			stopped, err := reg.StopExperiment(ctx, rec.Name, outcome)
			if err != nil {
				return err
			}
			if pushErr != nil {
				return fmt.Errorf("%w\nthe experiment is stopped in the registry (replicas restore v%d when they restart)", pushErr, kept.Version)
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, stopped)
			}
			fmt.Fprintf(cfg.stdout, "Experiment %s stopped: %s now serves %s's v%d to all traffic.\n", rec.Name, rec.Model, kept.Name, kept.Version)
			fmt.Fprintf(cfg.stdout, "To make it production: kiln models promote %s %d --to production --reason %q\n", rec.Model, kept.Version, "experiment "+rec.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&keep, "keep", "", "the variant to serve to everyone (default: the control)")
	f.StringVar(&reason, "reason", "", "why the experiment ends (required)")
	f.StringArrayVar(&servers, "server", nil, "model server base URL(s) (default: the ones the experiment started on)")
	f.StringVar(&token, "admin-token", "", "model server admin token (env KILN_ADMIN_TOKEN; default: $KILN_HOME/admin-token)")
	return cmd
}

func newExperimentsListCmd(cfg *Config) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List experiments, newest first",
		Example: `  kiln experiments list
  kiln experiments list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := cfg.openRegistry(cmd)
			if err != nil {
				return err
			}
			defer reg.Close()
			all, err := reg.Experiments(cmd.Context())
			if err != nil {
				return err
			}
			if cfg.JSON {
				if all == nil {
					all = []registry.Experiment{}
				}
				return printJSON(cfg.stdout, all)
			}
			if len(all) == 0 {
				fmt.Fprintln(cfg.stdout, "No experiments yet: kiln experiments start --help shows how to start one.")
				return nil
			}
			t := newTable(cfg.stdout, "NAME", "MODEL", "VARIANTS", "METRIC", "STARTED", "BY", "STATUS")
			for _, e := range all {
				var def experiment.Definition
				_ = json.Unmarshal([]byte(e.Definition), &def)
				vs := make([]string, len(def.Variants))
				for i, v := range def.Variants {
					vs[i] = fmt.Sprintf("%s=v%d", v.Name, v.Version)
				}
				status := "running"
				if !e.Running() {
					status = e.Outcome
				}
				t.row(e.Name, e.Model, strings.Join(vs, " "), def.Metric, when(e.StartedAt), dash(e.StartedBy), status)
			}
			return t.flush()
		},
	}
}
