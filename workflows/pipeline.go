package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/pipelines"
)

// PipelineInput starts a pipeline run.
type PipelineInput struct {
	// Spec is the spec text and where it came from; the worker validates it.
	Spec activities.ValidateInput `json:"spec"`
	// CreatedBy is the user (or component) that started the run.
	CreatedBy string `json:"created_by"`
	// TriggeredBy says why: "cli", "drift", "schedule", "backfill" or
	// "trigger".
	TriggeredBy string `json:"triggered_by"`
	// Logical is the run's logical date and data interval: set by the
	// schedule's launcher for scheduled runs and by kiln run for manual
	// ones. Nil means the day the workflow started (UTC).
	Logical *activities.LogicalRun `json:"logical,omitempty"`
	// AppendData are datasets the run's ingest steps append to their
	// source (a monitor's retrain: the served rows whose labels joined).
	AppendData []string `json:"append_data,omitempty"`
	// Trigger says which decision started the run (lineage).
	Trigger string `json:"trigger,omitempty"`
	// Git is the git work tree holding the spec, when there is one; it
	// goes into registered versions' lineage.
	Git *activities.GitInfo `json:"git,omitempty"`
	// NoCache runs every step even when the step cache has its result.
	NoCache bool `json:"no_cache,omitempty"`
	// Resume reuses the completed steps of an earlier run whose cache keys
	// still match (kiln run --resume).
	Resume *ResumeFrom `json:"resume,omitempty"`
}

// ResumeFrom is the earlier run a new run resumes.
type ResumeFrom struct {
	WorkflowID string `json:"workflow_id"`
	// Steps are the earlier run's completed steps' outputs, by step name.
	Steps map[string]activities.StepOutput `json:"steps"`
}

// Step and run states shown by `kiln runs show` and the status query.
const (
	StatusPending   = "pending"
	StatusRunning   = "running"
	StatusCompleted = "completed"
	StatusFailed    = "failed"
	StatusSkipped   = "skipped"
	StatusCanceled  = "canceled"
	// StatusWaiting: an approval step waiting for a decision.
	StatusWaiting = "waiting"
	// StatusRejected: an evaluate step whose model failed the gate or the
	// significance test. Only register steps downstream run (they keep the
	// model as a rejected version and fail the run); other dependents are
	// skipped.
	StatusRejected = "rejected"
)

// StepStatus is one step's state in a run.
type StepStatus struct {
	Name      string               `json:"name"`
	Uses      pipelines.StepType   `json:"uses"`
	Needs     []string             `json:"needs,omitempty"`
	Status    string               `json:"status"`
	Started   time.Time            `json:"started,omitempty"`
	Ended     time.Time            `json:"ended,omitempty"`
	Summary   string               `json:"summary,omitempty"`
	Error     string               `json:"error,omitempty"`
	Artifacts activities.Artifacts `json:"artifacts"`
	// CacheKey, Cached and Reused come from the step's activity (see
	// activities.StepOutput): Cached and Reused steps did not run again.
	CacheKey string `json:"cache_key,omitempty"`
	Cached   bool   `json:"cached,omitempty"`
	Reused   bool   `json:"reused,omitempty"`
	// SkipReason says why a skipped step did not run.
	SkipReason string `json:"skip_reason,omitempty"`
}

// RunStatus is a pipeline run's state: the status query's answer and the
// workflow's result.
type RunStatus struct {
	Pipeline    string `json:"pipeline"`
	WorkflowID  string `json:"workflow_id"`
	SpecHash    string `json:"spec_hash,omitempty"`
	TriggeredBy string `json:"triggered_by,omitempty"`
	// LogicalDate is the run's key: its logical date (or time).
	LogicalDate string       `json:"logical_date,omitempty"`
	Status      string       `json:"status"`
	Started     time.Time    `json:"started"`
	Ended       time.Time    `json:"ended,omitempty"`
	Steps       []StepStatus `json:"steps"`
	Error       string       `json:"error,omitempty"`
}

// Step returns the named step's status, or nil.
func (r *RunStatus) Step(name string) *StepStatus {
	for i := range r.Steps {
		if r.Steps[i].Name == name {
			return &r.Steps[i]
		}
	}
	return nil
}

// Artifacts merges every completed step's artifacts, later steps first.
func (r *RunStatus) Artifacts() activities.Artifacts {
	var a activities.Artifacts
	for i := len(r.Steps) - 1; i >= 0; i-- {
		a.Merge(r.Steps[i].Artifacts)
	}
	return a
}

// Error types that must not be retried.
const (
	// ErrTypeInvalidInput marks bad specs, data or requests.
	ErrTypeInvalidInput = "InvalidInput"
	// ErrTypeGateFailed marks a model that failed its evaluation gate.
	ErrTypeGateFailed = "GateFailed"
)

// stepDefaults are per step type: attempt timeout and heartbeat timeout.
var stepDefaults = map[pipelines.StepType]struct{ timeout, heartbeat time.Duration }{
	pipelines.StepIngest:     {30 * time.Minute, time.Minute},
	pipelines.StepPreprocess: {30 * time.Minute, time.Minute},
	pipelines.StepTrain:      {0, 15 * time.Second},
	pipelines.StepEvaluate:   {30 * time.Minute, time.Minute},
	pipelines.StepRegister:   {5 * time.Minute, 0},
	pipelines.StepScore:      {2 * time.Hour, time.Minute},
	pipelines.StepMonitor:    {5 * time.Minute, 0},
	pipelines.StepNoop:       {time.Hour, 0},
	pipelines.StepReport:     {time.Hour, time.Minute},
}

// A deploy step whose model already has a canary running retries every
// canaryWait, for at most maxCanaryWait.
const (
	canaryWait    = 10 * time.Second
	maxCanaryWait = 2 * time.Hour
)

// a is the activity receiver used only for method references.
var a *activities.Activities

// PipelineWorkflow runs a pipeline spec: it validates the spec on a worker,
// then runs each step as soon as all its needs have completed. A failed step
// stops new steps from starting; steps already running finish, and the run
// fails naming the step.
func PipelineWorkflow(ctx workflow.Context, in PipelineInput) (RunStatus, error) {
	info := workflow.GetInfo(ctx)
	run := &RunStatus{WorkflowID: info.WorkflowExecution.ID, Status: StatusRunning, Started: workflow.Now(ctx), TriggeredBy: in.TriggeredBy}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (RunStatus, error) { return *run, nil }); err != nil {
		return *run, err
	}

	vctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		ActivityID:          "validate",
		Summary:             "validate spec",
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 3, NonRetryableErrorTypes: []string{ErrTypeInvalidInput}},
	})
	var v activities.ValidateOutput
	if err := workflow.ExecuteActivity(vctx, a.Validate, in.Spec).Get(ctx, &v); err != nil {
		return finish(ctx, run, fmt.Errorf("invalid spec: %w", err))
	}
	spec := v.Spec
	run.Pipeline, run.SpecHash = spec.Name, spec.Hash
	for _, s := range spec.Steps {
		run.Steps = append(run.Steps, StepStatus{Name: s.Name, Uses: s.Uses, Needs: s.Needs, Status: StatusPending})
	}
	upsert(ctx, AttrPipeline.ValueSet(spec.Name), AttrSpecHash.ValueSet(spec.Hash), AttrTrigger.ValueSet(trigger(in.TriggeredBy)))

	logical := in.Logical
	if logical == nil {
		l := activities.ManualLogicalRun(info.WorkflowStartTime, time.UTC)
		l.Trigger = trigger(in.TriggeredBy)
		logical = &l
	}
	run.LogicalDate = logical.Key
	runInfo := activities.RunInfo{
		Pipeline: spec.Name, WorkflowID: info.WorkflowExecution.ID, SpecHash: spec.Hash,
		SpecDir: spec.Dir, CreatedBy: in.CreatedBy, TriggeredBy: in.TriggeredBy, Git: in.Git,
		Logical: logical, AppendData: in.AppendData, Trigger: in.Trigger,
	}
	ap := &approvals{spec: &spec, waiting: map[string]bool{}, decisions: map[string]*activities.ApprovalRef{}}
	if err := ap.register(ctx); err != nil {
		return finish(ctx, run, err)
	}
	order := spec.Order()
	sel := workflow.NewSelector(ctx)
	running := 0
	var firstErr error
	fail := func(st *StepStatus, err error) {
		st.Status, st.Error, st.Ended = StatusFailed, errorMessage(err), workflow.Now(ctx)
		if temporal.IsCanceledError(err) {
			st.Status = StatusCanceled
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("step %q (%s) failed: %w", st.Name, st.Uses, err)
		}
	}
	for {
		if firstErr == nil && ctx.Err() == nil {
			for _, name := range order {
				st := run.Step(name)
				if st.Status != StatusPending {
					continue
				}
				if by := rejectedAncestor(run, &spec, name); by != "" && spec.Step(name).Uses != pipelines.StepRegister {
					st.Status, st.SkipReason = StatusSkipped, fmt.Sprintf("the model was rejected by step %q", by)
					continue
				}
				if !needsDone(run, spec.Step(name)) {
					continue
				}
				step := *spec.Step(name)
				if step.When != "" {
					ok, err := condition(&spec, run, step.When)
					if err != nil {
						fail(st, err)
						break
					}
					if !ok {
						st.Status, st.SkipReason = StatusSkipped, "condition is false: "+step.When
						continue
					}
				}
				resolved, err := resolveStep(step, run, nil, logical)
				if err != nil {
					fail(st, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeInvalidInput, nil))
					break
				}
				input := activities.StepInput{Run: runInfo, Step: resolved, NoCache: in.NoCache}
				if step.Uses == pipelines.StepRegister {
					input.Run.SpecText = in.Spec.SpecText
				}
				if prev, ok := in.Resume.step(name); ok {
					input.Reuse = &prev
				}
				for _, anc := range spec.Ancestors(name) {
					input.Inputs.Merge(run.Step(anc).Artifacts)
				}
				st.Status, st.Started = StatusRunning, workflow.Now(ctx)
				if step.Uses == pipelines.StepApproval {
					st.Status = StatusWaiting
				}
				running++
				fut := startStep(ctx, in, resolved, input, ap)
				sel.AddFuture(fut, func(f workflow.Future) {
					running--
					var out activities.StepOutput
					err := f.Get(ctx, &out)
					st := run.Step(step.Name)
					st.Ended = workflow.Now(ctx)
					var skip *skipError
					switch {
					case errors.As(err, &skip):
						st.Status, st.SkipReason = StatusSkipped, skip.reason
					case err != nil:
						fail(st, err)
						// A rejected model's register step reports the
						// version it kept in its error's details.
						var appErr *temporal.ApplicationError
						if errors.As(err, &appErr) && appErr.Type() == ErrTypeGateFailed && appErr.HasDetails() {
							if appErr.Details(&out) == nil {
								st.Summary, st.Artifacts = out.Summary, out.Artifacts
							}
						}
					default:
						st.Status, st.Summary, st.Artifacts = StatusCompleted, out.Summary, out.Artifacts
						st.CacheKey, st.Cached, st.Reused = out.CacheKey, out.Cached, out.Reused
						if ev := out.Artifacts.Evaluation; ev != nil && !ev.Passed && step.Uses == pipelines.StepEvaluate {
							st.Status = StatusRejected // the summary and the evaluation carry the report
						}
						recordAttributes(ctx, out.Artifacts)
					}
				})
			}
		}
		if running == 0 {
			break
		}
		sel.Select(ctx)
	}
	for i := range run.Steps {
		if run.Steps[i].Status == StatusPending {
			run.Steps[i].Status = StatusSkipped
			if run.Steps[i].SkipReason == "" && firstErr != nil {
				run.Steps[i].SkipReason = "an earlier step failed"
			}
		}
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = temporal.NewCanceledError()
	}
	if firstErr == nil {
		// A rejected model with no register step to keep it still fails the run.
		for _, st := range run.Steps {
			if st.Status == StatusRejected {
				firstErr = temporal.NewNonRetryableApplicationError(fmt.Sprintf("step %q (%s): model rejected by evaluation\n%s",
					st.Name, st.Uses, st.Artifacts.Evaluation.Report), ErrTypeGateFailed, nil)
				break
			}
		}
	}
	return finish(ctx, run, firstErr)
}

// rejectedAncestor returns the name of a rejected evaluate step among the
// ancestors of step name, or "".
func rejectedAncestor(run *RunStatus, spec *pipelines.Spec, name string) string {
	for _, anc := range spec.Ancestors(name) {
		if run.Step(anc).Status == StatusRejected {
			return anc
		}
	}
	return ""
}

// step returns the resumed run's output of a step, if it has one.
func (r *ResumeFrom) step(name string) (activities.StepOutput, bool) {
	if r == nil {
		return activities.StepOutput{}, false
	}
	out, ok := r.Steps[name]
	return out, ok
}

// finish records the run's end state. A run that fails or is canceled
// has no result in its history, so its final status also goes into the
// run's memo (MemoStatus): kiln runs show reads a closed run from history,
// without asking a worker.
func finish(ctx workflow.Context, run *RunStatus, err error) (RunStatus, error) {
	run.Ended = workflow.Now(ctx)
	switch {
	case err == nil:
		run.Status = StatusCompleted
	case temporal.IsCanceledError(err):
		run.Status, run.Error = StatusCanceled, "canceled"
	default:
		run.Status, run.Error = StatusFailed, errorMessage(err)
	}
	if err != nil {
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		if workflow.GetVersion(dctx, statusMemoVersion, workflow.DefaultVersion, 1) == 1 {
			// Bounded, so a huge status cannot fail the workflow task on
			// the server's memo size limit; runs show then asks a worker.
			// json.Marshal's output is deterministic (map keys sorted); what
			// workflowcheck sees is its type cache.
			b, jerr := json.Marshal(run) //workflowcheck:ignore
			if jerr == nil && len(b) <= maxStatusMemo {
				if merr := workflow.UpsertMemo(dctx, map[string]any{MemoStatus: run}); merr != nil {
					workflow.GetLogger(ctx).Warn("recording the final status in the memo", "error", merr)
				}
			}
		}
	}
	return *run, err
}

// MemoStatus is the memo field holding a failed or canceled run's final
// RunStatus.
const MemoStatus = "kiln.status"

// statusMemoVersion gates the final-status memo (runs recorded before it
// replay without it).
const statusMemoVersion = "final-status-memo"

// maxStatusMemo bounds the final status kept in the memo, in JSON bytes.
const maxStatusMemo = 256 << 10

// needsDone reports whether every need of step completed or was skipped (a
// skipped step's dependents run, as in Argo).
func needsDone(run *RunStatus, step *pipelines.Step) bool {
	for _, n := range step.Needs {
		if s := run.Step(n).Status; s != StatusCompleted && s != StatusSkipped && s != StatusRejected {
			return false
		}
	}
	return true
}

// deployStep runs the canary rollout as a child workflow canary/<model> and
// turns its result into a StepOutput. A rollback fails the step.
func deployStep(ctx workflow.Context, input activities.StepInput, summary string) workflow.Future {
	f, set := workflow.NewFuture(ctx)
	model := input.Inputs.Model
	if model == nil {
		set.Set(nil, temporal.NewNonRetryableApplicationError("deploy needs a registered model upstream", ErrTypeInvalidInput, nil))
		return f
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            CanaryID(model.Name),
		StaticSummary:         fmt.Sprintf("canary %s v%d (%s)", model.Name, model.Version, summary),
		ParentClosePolicy:     enums.PARENT_CLOSE_POLICY_REQUEST_CANCEL,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(AttrModel.ValueSet(model.Name), AttrModelVersion.ValueSet(model.Version)),
	})
	cfg := *input.Step.Deploy
	in := CanaryInput{
		Model:   model.Name,
		Version: activities.VersionRef{Version: model.Version, BundleURI: model.BundleURI},
		Config:  cfg,
		RunID:   input.Run.WorkflowID,
		Actor:   input.Run.CreatedBy,
		Step:    input.Step.Name,
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		var res CanaryStatus
		// One canary per model at a time: when another run's rollout is in
		// progress, wait for it to end, then roll out this version.
		for waited := time.Duration(0); ; waited += canaryWait {
			err := workflow.ExecuteChildWorkflow(cctx, CanaryWorkflow, in).Get(ctx, &res)
			var started *temporal.ChildWorkflowExecutionAlreadyStartedError
			if err != nil && errors.As(err, &started) && waited < maxCanaryWait {
				workflow.GetLogger(ctx).Info("another canary of the model is running; waiting", "model", model.Name)
				if err := workflow.Sleep(ctx, canaryWait); err != nil {
					set.Set(nil, err)
					return
				}
				continue
			}
			if err != nil {
				set.Set(nil, err)
				return
			}
			break
		}
		dep := res.Deployment
		out := activities.StepOutput{Artifacts: activities.Artifacts{Deployment: &dep}}
		if !dep.Promoted {
			set.Set(nil, temporal.NewNonRetryableApplicationError(fmt.Sprintf("canary of %s v%d rolled back: %s", dep.Model, dep.Version, dep.Reason), "RolledBack", nil))
			return
		}
		out.Summary = fmt.Sprintf("%s v%d %s: %s", dep.Model, dep.Version, dep.Outcome, dep.Reason)
		set.Set(out, nil)
	})
	return f
}

// monitorStep starts (or reconfigures) monitor/<model>, which outlives the run.
func monitorStep(ctx workflow.Context, in PipelineInput, input activities.StepInput) workflow.Future {
	f, set := workflow.NewFuture(ctx)
	dep := input.Inputs.Deployment
	if dep == nil {
		set.Set(nil, temporal.NewNonRetryableApplicationError("monitor needs a deploy step upstream", ErrTypeInvalidInput, nil))
		return f
	}
	alias := dep.Alias
	if alias == "" {
		alias = "production"
	}
	req := activities.StartMonitorInput{Monitor: activities.MonitorRequest{
		Model: dep.Model, Alias: alias, Config: *input.Step.Monitor, Pipeline: input.Run.Pipeline, Retrain: in.Spec,
	}}
	if len(dep.Servers) > 0 {
		req.Monitor.Servers = dep.Servers
	} else if dep.Server != "" {
		req.Monitor.Servers = []string{dep.Server}
	}
	workflow.Go(ctx, func(gctx workflow.Context) {
		var out activities.StartMonitorOutput
		if err := workflow.ExecuteActivity(ctx, a.StartMonitor, req).Get(gctx, &out); err != nil {
			set.Set(nil, err)
			return
		}
		set.Set(activities.StepOutput{Summary: fmt.Sprintf("monitoring %s@%s in %s", dep.Model, alias, out.WorkflowID)}, nil)
	})
	return f
}

// recordAttributes copies what a step produced into search attributes.
func recordAttributes(ctx workflow.Context, art activities.Artifacts) {
	if art.Dataset != nil {
		upsert(ctx, AttrDatasetHash.ValueSet(art.Dataset.SHA256))
	}
	if art.Model != nil {
		upsert(ctx, AttrModel.ValueSet(art.Model.Name), AttrModelVersion.ValueSet(art.Model.Version))
	}
}

func upsert(ctx workflow.Context, updates ...temporal.SearchAttributeUpdate) {
	if err := workflow.UpsertTypedSearchAttributes(ctx, updates...); err != nil {
		workflow.GetLogger(ctx).Warn("upserting search attributes", "error", err)
	}
}

func trigger(by string) string {
	if by == "" {
		return "cli"
	}
	return by
}

// errorMessage unwraps Temporal's activity and child workflow errors to the
// cause a person needs to read.
func errorMessage(err error) string {
	if temporal.IsCanceledError(err) {
		return "canceled"
	}
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	var timeoutErr *temporal.TimeoutError
	if errors.As(err, &timeoutErr) {
		return fmt.Sprintf("timed out (%s)", timeoutErr.TimeoutType())
	}
	return err.Error()
}
