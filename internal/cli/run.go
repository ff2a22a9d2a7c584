package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/pipelines"
	"github.com/kiln-ml/kiln/workflows"
)

func newRunCmd(cfg *Config) *cobra.Command {
	var (
		params  []string
		wait    bool
		runID   string
		noCache bool
		resume  string
		logical string
	)
	cmd := &cobra.Command{
		Use:   "run [SPEC]",
		Short: "Start a pipeline run (validate first; --wait to follow it)",
		Long: `Validate SPEC locally, then start it as the durable workflow
pipeline/<name>/<run> on the Kiln workers. Prints the run ID and its link in
the Temporal web UI. With --wait, follows the run step by step (Ctrl-C stops
following; the run goes on) and exits non-zero if the run fails.

A step whose work was done before (same step type, configuration and input
content, and for train the same trainer image) takes its result from the step
cache instead of running again; kiln runs show marks it "cached". --no-cache
runs every step, and stores the new results in the cache.

--resume RUN starts a new run that reuses the results of RUN's completed
steps (RUN is typically a failed or canceled run) as long as their cache keys
still match and their outputs still exist; every other step runs. Without
SPEC, the new run uses RUN's spec text, spec directory and parameters; -p
given now replaces RUN's value of that parameter.`,
		Example: `  kiln run pipelines/churn.yaml --wait
  kiln run pipelines/churn.yaml -p seed=7 -p l2=0.01
  kiln run pipelines/breast_cancer.yaml --json
  kiln run pipelines/churn.yaml --no-cache
  kiln run pipelines/nightly_churn_report.yaml --logical-date 2026-12-01 --wait
  kiln run --resume churn/20261125-104512-a1b2 --wait
  kiln run pipelines/churn.yaml --resume churn/20261125-104512-a1b2 -p l2=0.01`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			overrides, err := parseParams(params)
			if err != nil {
				return err
			}
			if len(args) == 0 && resume == "" {
				return &exitError{code: 2, err: errors.New("kiln run needs a SPEC, or --resume RUN to run an earlier run's spec again")}
			}
			var src activities.ValidateInput
			var spec *pipelines.Spec
			if len(args) == 1 {
				path := args[0]
				text, err := os.ReadFile(path)
				if err != nil {
					return fmt.Errorf("reading spec: %w", err)
				}
				if spec, err = pipelines.Parse(path, text, overrides); err != nil {
					return &exitError{code: 1, err: fmt.Errorf("invalid spec:\n%w", err)}
				}
				absDir, err := filepath.Abs(filepath.Dir(path))
				if err != nil {
					return err
				}
				src = activities.ValidateInput{SpecText: string(text), SpecFile: path, SpecDir: absDir, Overrides: overrides}
			}
			c, err := cfg.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			in := workflows.PipelineInput{CreatedBy: activities.CurrentUser(), TriggeredBy: "cli", NoCache: noCache}
			if resume != "" {
				prev, err := readResume(ctx, c, runWorkflowID(resume), spec == nil)
				if err != nil {
					return err
				}
				if spec == nil {
					src = resumeSpec(prev.start.Spec, overrides)
					if spec, err = pipelines.Parse(src.SpecFile, []byte(src.SpecText), src.Overrides); err != nil {
						return &exitError{code: 1, err: fmt.Errorf("the spec of %s is no longer valid:\n%w", prev.from.WorkflowID, err)}
					}
				}
				in.Resume = &prev.from
				if !cfg.JSON {
					fmt.Fprintln(cfg.stdout, resumeLine(prev.status, prev.from))
				}
			}
			in.Spec = src
			in.Git = gitInfo(ctx, src.SpecDir)
			now := time.Now()
			lr := activities.ManualLogicalRun(now, time.Local)
			if logical != "" {
				d, err := time.ParseInLocation(time.DateOnly, logical, time.Local)
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("--logical-date %q: want a date such as 2026-12-02", logical)}
				}
				lr = activities.ManualLogicalRun(d, time.Local)
				if runID == "" {
					// One run of a date at a time, as for scheduled runs.
					runID = lr.Key
				}
			}
			in.Logical = &lr
			if runID == "" {
				runID = newRunID(now)
			}
			wid := activities.PipelineID(spec.Name, runID)
			memo := map[string]any{"spec": src.SpecText, "spec_file": src.SpecFile, "params": src.Overrides}
			summary := fmt.Sprintf("pipeline %s from %s", spec.Name, filepath.Base(src.SpecFile))
			if in.Resume != nil {
				memo["resumes"] = in.Resume.WorkflowID
				summary += ", resuming " + in.Resume.WorkflowID
			}
			opts := client.StartWorkflowOptions{
				ID:        wid,
				TaskQueue: cfg.TaskQueue,
				Memo:      memo,
				TypedSearchAttributes: temporal.NewSearchAttributes(
					workflows.AttrPipeline.ValueSet(spec.Name), workflows.AttrSpecHash.ValueSet(spec.Hash), workflows.AttrTrigger.ValueSet("cli"),
					workflows.AttrLogicalDate.ValueSet(in.Logical.Key)),
				StaticSummary: summary,
				StaticDetails: spec.Description,
			}
			run, err := c.ExecuteWorkflow(ctx, opts, activities.WorkflowPipeline, in)
			if err != nil {
				return fmt.Errorf("starting %s: %w", wid, err)
			}
			link := cfg.workflowURL(wid, run.GetRunID())
			if !wait {
				if cfg.JSON {
					out := map[string]string{"workflow_id": wid, "run_id": run.GetRunID(), "ui": link}
					if in.Resume != nil {
						out["resumes"] = in.Resume.WorkflowID
					}
					return printJSON(cfg.stdout, out)
				}
				fmt.Fprintf(cfg.stdout, "Started %s\n  UI:     %s\n  Follow: kiln runs show %s\n", wid, link, wid)
				return nil
			}
			if !cfg.JSON {
				fmt.Fprintf(cfg.stdout, "Started %s\n  UI: %s\n\n", wid, link)
			}
			st, err := follow(ctx, cfg, c, wid, run.GetRunID())
			if ctx.Err() != nil {
				fmt.Fprintf(cfg.stderr, "\nStopped following; the run goes on. See: kiln runs show %s\n", wid)
				if cfg.JSON {
					return printJSON(cfg.stdout, st) // the last status seen
				}
				return nil
			}
			if cfg.JSON {
				if perr := printJSON(cfg.stdout, st); perr != nil {
					return perr
				}
			} else {
				fmt.Fprintln(cfg.stdout)
				printRun(cfg, st, link)
			}
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("run %s %s", wid, st.Status)}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&params, "param", "p", nil, "override a pipeline parameter, name=value (repeatable)")
	f.BoolVarP(&wait, "wait", "w", false, "follow the run until it ends, printing each step")
	f.StringVar(&runID, "run-id", "", "the <run> part of the workflow ID (default: time-based)")
	f.BoolVar(&noCache, "no-cache", false, "run every step even when the step cache holds its result (the results are still stored)")
	f.StringVar(&resume, "resume", "", "reuse the completed steps of this earlier run (pipeline/<name>/<run>) when they still match")
	f.StringVar(&logical, "logical-date", "", "the run's logical date, ${run.logical_date} (default: today); the run is then pipeline/<name>/<date>")
	return cmd
}

// resumeSource is what kiln run --resume takes from the earlier run.
type resumeSource struct {
	status workflows.RunStatus
	from   workflows.ResumeFrom
	// start is the earlier run's start input, read only when asked for.
	start workflows.PipelineInput
}

// readResume reads the run wid to resume: its final status and, when
// withStart is set, its start input (the spec to run again).
func readResume(ctx context.Context, c client.Client, wid string, withStart bool) (resumeSource, error) {
	var src resumeSource
	st, runID, running, err := readRunStatus(ctx, c, wid)
	if err != nil {
		return src, &exitError{code: 1, err: fmt.Errorf("cannot resume %s: %w", wid, err)}
	}
	if running {
		return src, &exitError{code: 1, err: fmt.Errorf("cannot resume %s: it is still running; wait for it to end, or cancel it (kiln runs cancel %s)", wid, wid)}
	}
	src.status, src.from = st, resumeFrom(wid, st)
	if withStart {
		if src.start, err = readStartInput(ctx, c, wid, runID); err != nil {
			return src, &exitError{code: 1, err: fmt.Errorf("cannot resume %s: %w", wid, err)}
		}
	}
	return src, nil
}

// resumeFrom lists the outputs of the completed steps of a run (cached and
// reused ones included), with their cache keys, for a new run to reuse.
func resumeFrom(wid string, st workflows.RunStatus) workflows.ResumeFrom {
	from := workflows.ResumeFrom{WorkflowID: wid, Steps: map[string]activities.StepOutput{}}
	for _, s := range st.Steps {
		if s.Status != workflows.StatusCompleted {
			continue
		}
		from.Steps[s.Name] = activities.StepOutput{
			Artifacts: s.Artifacts, Summary: s.Summary,
			CacheKey: s.CacheKey, Cached: s.Cached, Reused: s.Reused,
		}
	}
	return from
}

// resumeLine says which run a new run resumes and which of its steps it may
// reuse.
func resumeLine(st workflows.RunStatus, from workflows.ResumeFrom) string {
	var done []string
	for _, s := range st.Steps {
		if _, ok := from.Steps[s.Name]; ok {
			done = append(done, s.Name)
		}
	}
	status := st.Status
	if status == "" {
		status = "ended"
	}
	if len(done) == 0 {
		return fmt.Sprintf("Resuming %s (%s): no step completed there, so every step runs", from.WorkflowID, status)
	}
	return fmt.Sprintf("Resuming %s (%s): %d of %d steps completed there and are reused if still valid: %s",
		from.WorkflowID, status, len(done), len(st.Steps), strings.Join(done, ", "))
}

// readStartInput reads the input a pipeline run was started with, from the
// WorkflowExecutionStarted event of its history.
func readStartInput(ctx context.Context, c client.Client, wid, runID string) (workflows.PipelineInput, error) {
	it := c.GetWorkflowHistory(ctx, wid, runID, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	if !it.HasNext() {
		return workflows.PipelineInput{}, fmt.Errorf("%s has no history", wid)
	}
	ev, err := it.Next()
	if err != nil {
		return workflows.PipelineInput{}, fmt.Errorf("reading the history of %s: %w", wid, err)
	}
	return startInput(ev)
}

// startInput decodes a pipeline run's start input from its
// WorkflowExecutionStarted event.
func startInput(ev *historypb.HistoryEvent) (workflows.PipelineInput, error) {
	var in workflows.PipelineInput
	attrs := ev.GetWorkflowExecutionStartedEventAttributes()
	if attrs == nil {
		return in, fmt.Errorf("the first event of the run is %s, not its start", ev.GetEventType())
	}
	if attrs.GetWorkflowType().GetName() != activities.WorkflowPipeline {
		return in, fmt.Errorf("it is a %s, not a pipeline run", attrs.GetWorkflowType().GetName())
	}
	payloads := attrs.GetInput().GetPayloads()
	if len(payloads) == 0 {
		return in, errors.New("its start event holds no input")
	}
	if err := converter.GetDefaultDataConverter().FromPayload(payloads[0], &in); err != nil {
		return in, fmt.Errorf("decoding its start input: %w", err)
	}
	if in.Spec.SpecText == "" {
		return in, errors.New("its start input holds no spec text; pass the SPEC to run")
	}
	return in, nil
}

// resumeSpec is the spec of a run started again: the earlier run's spec,
// with the parameters given now replacing its values.
func resumeSpec(prev activities.ValidateInput, overrides map[string]string) activities.ValidateInput {
	spec := prev
	if len(prev.Overrides)+len(overrides) > 0 {
		spec.Overrides = make(map[string]string, len(prev.Overrides)+len(overrides))
		for k, v := range prev.Overrides {
			spec.Overrides[k] = v
		}
		for k, v := range overrides {
			spec.Overrides[k] = v
		}
	}
	return spec
}

// newRunID is time-ordered and unique enough for humans: 20261125-104512-a1b2.
func newRunID(now time.Time) string {
	b := make([]byte, 2)
	_, _ = rand.Read(b)
	return now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b)
}

// follow polls a run's status query, printing step transitions and the
// progress heartbeats of running steps, until the run ends.
func follow(ctx context.Context, cfg *Config, c client.Client, wid, runID string) (workflows.RunStatus, error) {
	done := make(chan error, 1)
	var final, last workflows.RunStatus
	last.WorkflowID, last.Status = wid, workflows.StatusRunning
	go func() { done <- c.GetWorkflow(ctx, wid, runID).Get(ctx, &final) }()
	seen := map[string]string{}
	progress := map[string]string{}
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	report := func(st workflows.RunStatus) {
		if cfg.JSON {
			return
		}
		for _, s := range st.Steps {
			if seen[s.Name] == s.Status {
				continue
			}
			seen[s.Name] = s.Status
			if line := progressLine(wid, s); line != "" {
				fmt.Fprintln(cfg.stdout, line)
			}
		}
	}
	for {
		select {
		case err := <-done:
			if st, qerr := queryStatus(context.WithoutCancel(ctx), c, wid, runID); qerr == nil {
				final = st
			}
			report(final)
			return final, err
		case <-ctx.Done():
			return last, ctx.Err()
		case <-tick.C:
			st, err := queryStatus(ctx, c, wid, runID)
			if err != nil {
				continue
			}
			last = st
			report(st)
			if cfg.JSON {
				continue
			}
			live := pendingProgress(ctx, c, wid, runID)
			for _, s := range st.Steps {
				if s.Uses != pipelines.StepDeploy || s.Status != workflows.StatusRunning {
					continue
				}
				if m := st.Artifacts().Model; m != nil {
					if msg := canaryProgress(ctx, c, m.Name); msg != "" {
						live[s.Name] = msg
					}
				}
			}
			for name, p := range live {
				if progress[name] != p {
					progress[name] = p
					fmt.Fprintf(cfg.stdout, "    %-12s %s\n", name, p)
				}
			}
		}
	}
}

// progressLine is the line kiln run --wait prints when a step reaches its
// status; "" for statuses it does not print (pending).
func progressLine(wid string, s workflows.StepStatus) string {
	switch s.Status {
	case workflows.StatusRunning:
		return fmt.Sprintf("  ▶ %-12s running", s.Name)
	case workflows.StatusWaiting:
		return fmt.Sprintf("  ? %-12s %s", s.Name, stepOutput(wid, s))
	case workflows.StatusCompleted:
		d := duration(s.Ended.Sub(s.Started))
		if label := stepLabel(s); label != workflows.StatusCompleted {
			d = label
		}
		return fmt.Sprintf("  ✓ %-12s %-7s %s", s.Name, d, stepOutput(wid, s))
	case workflows.StatusFailed, workflows.StatusCanceled, workflows.StatusRejected:
		return fmt.Sprintf("  ✗ %-12s %s: %s", s.Name, s.Status, stepOutput(wid, s))
	case workflows.StatusSkipped:
		if s.SkipReason != "" {
			return fmt.Sprintf("  - %-12s skipped: %s", s.Name, s.SkipReason)
		}
		return fmt.Sprintf("  - %-12s skipped", s.Name)
	}
	return ""
}

func queryStatus(ctx context.Context, c client.Client, wid, runID string) (workflows.RunStatus, error) {
	var st workflows.RunStatus
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, wid, runID, workflows.QueryStatus)
	if err != nil {
		return st, err
	}
	err = v.Get(&st)
	return st, err
}

// canaryProgress describes a running canary rollout.
func canaryProgress(ctx context.Context, c client.Client, model string) string {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, activities.CanaryID(model), "", workflows.QueryStatus)
	if err != nil {
		return ""
	}
	var cs workflows.CanaryStatus
	if v.Get(&cs) != nil || cs.Done || cs.Stable == 0 {
		return ""
	}
	msg := fmt.Sprintf("canary v%d at %d%% (stable v%d)", cs.Canary, cs.Percent, cs.Stable)
	if cs.Shadow != nil && len(cs.Steps) == 0 {
		msg = fmt.Sprintf("shadow v%d beside stable v%d, %d analyses, last %s: %s", cs.Canary, cs.Stable, cs.ShadowLooks, cs.Shadow.Decision, cs.Shadow.Reason)
	}
	if n := len(cs.Steps); n > 0 {
		last := cs.Steps[n-1]
		msg += fmt.Sprintf(", last analysis %s: %s", last.Verdict, last.Reason)
	}
	if cs.Paused != "" {
		msg += fmt.Sprintf("; PAUSED (%s): decide with kiln approve %s %s --reason ... [--reject]", cs.Paused, activities.CanaryID(model), cs.Step)
	}
	return msg
}

// readCanary returns the latest rollout of model if runWID started it: the
// status query of a running one, the result of a closed one.
func readCanary(ctx context.Context, c client.Client, model, runWID string) (workflows.CanaryStatus, bool) {
	var cs workflows.CanaryStatus
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if v, err := c.QueryWorkflow(qctx, activities.CanaryID(model), "", workflows.QueryStatus); err == nil && v.Get(&cs) == nil {
		return cs, cs.RunID == runWID
	}
	if err := c.GetWorkflow(qctx, activities.CanaryID(model), "").Get(qctx, &cs); err == nil || cs.RunID != "" {
		return cs, cs.RunID == runWID
	}
	return cs, false
}

// printCanaryEvidence prints the canary analysis of run's deploy step: each
// metric's effect, always-valid interval and samples, and how to decide a
// paused rollout.
func printCanaryEvidence(ctx context.Context, cfg *Config, c client.Client, st workflows.RunStatus) {
	a := st.Artifacts()
	if a.Model == nil {
		return
	}
	hasDeploy := false
	for _, s := range st.Steps {
		hasDeploy = hasDeploy || s.Uses == pipelines.StepDeploy
	}
	if !hasDeploy {
		return
	}
	cs, ok := readCanary(ctx, c, a.Model.Name, st.WorkflowID)
	if !ok || (cs.Analysis == nil && cs.Shadow == nil) {
		return
	}
	out := cfg.stdout
	if sh := cs.Shadow; sh != nil {
		fmt.Fprintf(out, "\nShadow   v%d beside v%d on %d mirrored requests (%d rows, %d dropped), %d analyses, decision %s\n",
			cs.Canary, cs.Baseline, sh.Requests, sh.Rows, sh.Dropped, cs.ShadowLooks, sh.Decision)
		t := newTable(out, "  METRIC", "VERDICT", "EFFECT", "INTERVAL", "MARGIN", "MIN EFFECT", "SHADOW/NEED", "LIVE", "DETAIL")
		agree := "ok"
		switch {
		case sh.AgreementUpper < sh.MinAgreement:
			agree = "worse"
		case sh.AgreementLower < sh.MinAgreement:
			agree = "not yet"
		}
		t.row("  agreement", agree, fmt.Sprintf("%.4f", sh.Agreement), fmt.Sprintf("[%.4f, %.4f]", sh.AgreementLower, sh.AgreementUpper),
			"-", fmt.Sprintf("≥ %g", sh.MinAgreement), fmt.Sprint(sh.Rows), "-", "share of rows agreeing with the live answer")
		for _, m := range sh.Comparison.Metrics {
			t.row("  "+m.Metric, m.Verdict, fmt.Sprintf("%+.4f", m.Effect), fmt.Sprintf("[%s, %s]", bound(m.Lower), bound(m.Upper)),
				fmt.Sprintf("%g", m.Margin), fmt.Sprintf("%g", m.MinEffect), fmt.Sprintf("%d/%d", m.Canary, m.Need), fmt.Sprint(m.Stable), m.Detail)
		}
		_ = t.flush()
	}
	if cs.Analysis != nil {
		printCanaryAnalysis(out, cs)
	}
	for _, d := range cs.Decisions {
		fmt.Fprintf(out, "  %s by %s at %s: %s\n", d.Decision, d.By, when(d.At), d.Reason)
	}
	if cs.Paused != "" {
		fmt.Fprintf(out, "  PAUSED: %s\n  Decide: kiln approve %s %s --reason ... [--reject]\n", cs.Paused, activities.CanaryID(cs.Model), cs.Step)
	}
}

// printCanaryAnalysis prints the canary's latest analysis as a table.
func printCanaryAnalysis(out io.Writer, cs workflows.CanaryStatus) {
	fmt.Fprintf(out, "\nCanary   v%d against v%d, %d analyses, decision %s\n", cs.Canary, cs.Baseline, len(cs.Steps), cs.Analysis.Decision)
	t := newTable(out, "  METRIC", "VERDICT", "EFFECT", "INTERVAL", "MARGIN", "MIN EFFECT", "CANARY/NEED", "STABLE", "DETAIL")
	for _, m := range cs.Analysis.Metrics {
		t.row("  "+m.Metric, m.Verdict, fmt.Sprintf("%+.4f", m.Effect), fmt.Sprintf("[%s, %s]", bound(m.Lower), bound(m.Upper)),
			fmt.Sprintf("%g", m.Margin), fmt.Sprintf("%g", m.MinEffect), fmt.Sprintf("%d/%d", m.Canary, m.Need), fmt.Sprint(m.Stable), m.Detail)
	}
	_ = t.flush()
}

// bound prints an interval end; ±1e9 stands for unbounded.
func bound(v float64) string {
	switch {
	case v >= 1e9:
		return "+inf"
	case v <= -1e9:
		return "-inf"
	}
	return fmt.Sprintf("%+.4f", v)
}

// pendingProgress reads the latest heartbeat of each running activity.
func pendingProgress(ctx context.Context, c client.Client, wid, runID string) map[string]string {
	out := map[string]string{}
	d, err := c.DescribeWorkflowExecution(ctx, wid, runID)
	if err != nil {
		return out
	}
	dc := converter.GetDefaultDataConverter()
	for _, pa := range d.GetPendingActivities() {
		var p activities.Progress
		msg := ""
		if hd := pa.GetHeartbeatDetails(); hd != nil && len(hd.GetPayloads()) > 0 {
			if err := dc.FromPayload(hd.GetPayloads()[0], &p); err == nil {
				msg = p.Msg
				if p.Pct > 0 {
					msg = fmt.Sprintf("%3.0f%% %s", p.Pct, p.Msg)
				}
			}
		}
		if pa.GetAttempt() > 1 {
			msg = fmt.Sprintf("attempt %d: %s", pa.GetAttempt(), msg)
			if f := pa.GetLastFailure(); f != nil {
				msg += " (last failure: " + f.GetMessage() + ")"
			}
		}
		if msg != "" {
			out[pa.GetActivityId()] = msg
		}
	}
	return out
}
