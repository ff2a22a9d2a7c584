package activities

import (
	"github.com/kiln-ml/kiln/internal/canary"
	"time"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/drift"
	"github.com/kiln-ml/kiln/internal/gate"
	"github.com/kiln-ml/kiln/internal/metrics"
	"github.com/kiln-ml/kiln/internal/monitor"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/pipelines"
)

// RunInfo identifies the pipeline run a step belongs to.
type RunInfo struct {
	// Pipeline is the spec's name.
	Pipeline string `json:"pipeline"`
	// WorkflowID is the run's Temporal workflow ID, pipeline/<name>/<run>.
	WorkflowID string `json:"workflow_id"`
	// SpecHash is the hex SHA-256 of the spec text.
	SpecHash string `json:"spec_hash"`
	// SpecDir resolves relative paths in the spec.
	SpecDir string `json:"spec_dir"`
	// CreatedBy is who started the run (user name, or the monitor for retrains).
	CreatedBy string `json:"created_by"`
	// TriggeredBy says why the run started: "cli", "drift", ...
	TriggeredBy string `json:"triggered_by"`
	// Git is the git work tree holding the spec, when kiln run found one.
	Git *GitInfo `json:"git,omitempty"`
	// SpecText is the spec, set only in register steps' input (it goes
	// into the registry's lineage; other steps need only SpecHash).
	SpecText string `json:"spec_text,omitempty"`
	// Logical is the run's logical date and data interval (nil in runs
	// recorded before Kiln had logical dates).
	Logical *LogicalRun `json:"logical,omitempty"`
	// AppendData are Parquet datasets (URIs) whose rows ingest steps append
	// to their source: a monitor's retrain trains on the served rows whose
	// labels arrived.
	AppendData []string `json:"append_data,omitempty"`
	// Trigger says which decision started the run (e.g. a monitor
	// decision); it goes into registered versions' lineage.
	Trigger string `json:"trigger,omitempty"`
}

// GitInfo is the state of the git work tree holding a spec.
type GitInfo struct {
	// Commit is the HEAD commit.
	Commit string `json:"commit"`
	// Dirty reports uncommitted changes in the work tree.
	Dirty bool `json:"dirty,omitempty"`
}

// StepInput is the input of every pipeline step activity.
type StepInput struct {
	Run  RunInfo        `json:"run"`
	Step pipelines.Step `json:"step"`
	// Inputs merges the artifacts of the step's ancestors, nearest first.
	Inputs Artifacts `json:"inputs"`
	// Item is set when the step runs once per item of a foreach.
	Item *Item `json:"item,omitempty"`
	// NoCache skips the step cache (kiln run --no-cache): the step runs, and
	// its result is stored for later runs.
	NoCache bool `json:"no_cache,omitempty"`
	// Reuse is this step's result in the run being resumed (kiln run
	// --resume); it is used when its cache key still matches and its
	// outputs still exist.
	Reuse *StepOutput `json:"reuse,omitempty"`
}

// Item is one item of a foreach step.
type Item struct {
	Index int    `json:"index"`
	Value string `json:"value"`
}

// StepOutput is the result of every pipeline step activity.
type StepOutput struct {
	Artifacts Artifacts `json:"artifacts"`
	// Summary is one line for `kiln runs show`.
	Summary string `json:"summary"`
	// CacheKey identifies the step's work: step type and implementation
	// version, resolved configuration, input content hashes, item, and the
	// container image. Empty for steps that are never reused.
	CacheKey string `json:"cache_key,omitempty"`
	// Cached is true when the result came from the step cache, Reused when
	// it came from the resumed run; the work did not run again.
	Cached bool `json:"cached,omitempty"`
	Reused bool `json:"reused,omitempty"`
}

// Artifacts are what steps hand to each other: URIs and small summaries,
// never row data. Each step type fills one field.
type Artifacts struct {
	Dataset    *DatasetRef    `json:"dataset,omitempty"`
	Prepared   *PreparedRef   `json:"prepared,omitempty"`
	Bundle     *BundleRef     `json:"bundle,omitempty"`
	Evaluation *EvaluationRef `json:"evaluation,omitempty"`
	Model      *ModelRef      `json:"model,omitempty"`
	Scored     *ScoredRef     `json:"scored,omitempty"`
	Deployment *DeploymentRef `json:"deployment,omitempty"`
	Foreach    *ForeachRef    `json:"foreach,omitempty"`
	Approval   *ApprovalRef   `json:"approval,omitempty"`
	Report     *ReportRef     `json:"report,omitempty"`
}

// Merge fills the fields of a that are nil with those of b.
func (a *Artifacts) Merge(b Artifacts) {
	if a.Dataset == nil {
		a.Dataset = b.Dataset
	}
	if a.Prepared == nil {
		a.Prepared = b.Prepared
	}
	if a.Bundle == nil {
		a.Bundle = b.Bundle
	}
	if a.Evaluation == nil {
		a.Evaluation = b.Evaluation
	}
	if a.Model == nil {
		a.Model = b.Model
	}
	if a.Scored == nil {
		a.Scored = b.Scored
	}
	if a.Deployment == nil {
		a.Deployment = b.Deployment
	}
	if a.Foreach == nil {
		a.Foreach = b.Foreach
	}
	if a.Approval == nil {
		a.Approval = b.Approval
	}
	if a.Report == nil {
		a.Report = b.Report
	}
}

// DatasetRef is an ingested, content-addressed Parquet dataset.
type DatasetRef struct {
	URI    string         `json:"uri"`
	SHA256 string         `json:"sha256"`
	Rows   int64          `json:"rows"`
	Schema dataset.Schema `json:"schema"`
	Source string         `json:"source"`
	// ExpectationsURI is the expectations report of the ingest step, if it
	// had expectations.
	ExpectationsURI string `json:"expectations_uri,omitempty"`
}

// PreparedRef is the output of preprocess: the split, the fitted transforms
// and the training profile.
type PreparedRef struct {
	// TrainURI and ValidURI hold transformed features plus the target (all
	// float64), the trainer's inputs.
	TrainURI string `json:"train_uri"`
	ValidURI string `json:"valid_uri"`
	// TestURI holds the raw holdout rows, scored through the bundle by evaluate.
	TestURI string `json:"test_uri"`
	// TransformsURI is the fitted transforms (JSON); ProfileURI the training profile (JSON).
	TransformsURI string `json:"transforms_uri"`
	ProfileURI    string `json:"profile_uri"`
	Target        string `json:"target"`
	Task          string `json:"task"`
	// Classes names a multiclass task's classes in the order of their
	// indexes: train and valid hold the target as a class index (0 is
	// Classes[0]); the raw holdout keeps the target's own values.
	Classes []string `json:"classes,omitempty"`
	// Features are the transformed feature names, in order.
	Features      []string `json:"features"`
	TrainRows     int64    `json:"train_rows"`
	ValidRows     int64    `json:"valid_rows"`
	TestRows      int64    `json:"test_rows"`
	DatasetSHA256 string   `json:"dataset_sha256"`
}

// BundleRef is a model bundle written by train.
type BundleRef struct {
	URI string `json:"uri"`
	// SHA256 addresses the bundle (hash of its manifest and files).
	SHA256 string `json:"sha256"`
	// Runtime is "docker" or "process"; Image the image ID (or binary hash).
	Runtime        string             `json:"runtime"`
	Image          string             `json:"image"`
	TrainerVersion string             `json:"trainer_version,omitempty"`
	Params         map[string]any     `json:"params,omitempty"`
	TrainMetrics   map[string]float64 `json:"train_metrics,omitempty"`
}

// GateCheck is one comparison of an evaluation gate.
type GateCheck = gate.Check

// EvaluationRef is the holdout evaluation of a bundle.
type EvaluationRef struct {
	Metrics map[string]float64 `json:"metrics"`
	Gate    string             `json:"gate,omitempty"`
	Passed  bool               `json:"passed"`
	Checks  []GateCheck        `json:"checks,omitempty"`
	// Champion is the version the gate compared against (0 = none).
	Champion        int64              `json:"champion,omitempty"`
	ChampionMetrics map[string]float64 `json:"champion_metrics,omitempty"`
	// Task is the evaluated task: "binary", "multiclass" or "regression".
	Task string `json:"task,omitempty"`
	// ChampionRef names the champion, e.g. "churn:3" (empty without one).
	ChampionRef string `json:"champion_ref,omitempty"`
	// Significance is the significance test's result, when the step has one.
	Significance *SignificanceResult `json:"significance,omitempty"`
	// Report explains the verdict for people, one line per check (see
	// gate.Check.Report) plus the significance test; it is what a rejected
	// version keeps in the registry.
	Report string `json:"report,omitempty"`
}

// SignificanceResult is an evaluate step's significance test: the
// comparison with the champion and whether it is significant at Alpha.
type SignificanceResult struct {
	metrics.Comparison
	Alpha float64 `json:"alpha"`
	// Passed is true when the challenger is significantly better (PValue <
	// Alpha) or the test was skipped.
	Passed bool `json:"passed"`
	// Skipped says why the test did not run (no champion yet).
	Skipped string `json:"skipped,omitempty"`
}

// ModelRef is a registered model version.
type ModelRef struct {
	Name      string `json:"name"`
	Version   int64  `json:"version"`
	BundleURI string `json:"bundle_uri"`
	// Created is false when a retried step found its version already registered.
	Created bool `json:"created"`
	// Rejected is true for a version registered with status rejected (it
	// failed evaluation): it has no alias and nothing may deploy it.
	Rejected bool `json:"rejected,omitempty"`
}

// ScoredRef is a batch-scored Parquet file.
type ScoredRef struct {
	URI  string `json:"uri"`
	Rows int64  `json:"rows"`
	// SHA256 is the hex SHA-256 of the file as written: a scored file has
	// no content address, so a cached or resumed result checks it.
	SHA256 string `json:"sha256,omitempty"`
	// Model and Version name the model version that scored the rows.
	Model   string `json:"model,omitempty"`
	Version int64  `json:"version,omitempty"`
}

// DeploymentRef is the outcome of a canary rollout.
type DeploymentRef struct {
	Server string `json:"server"`
	// Servers are all the model servers the version was deployed to (set
	// by sequential rollouts; Server is the first).
	Servers []string `json:"servers,omitempty"`
	Model   string   `json:"model"`
	Version int64    `json:"version"`
	// Alias is the registry alias the rollout moves (e.g. production).
	Alias    string `json:"alias"`
	Promoted bool   `json:"promoted"`
	// Outcome is "promoted", "rolled back", "first deployment" or
	// "deployed without analysis" (analysis: none).
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	// Evidence is the canary analysis that decided: each metric's effect,
	// always-valid interval and samples.
	Evidence *canary.Analysis `json:"evidence,omitempty"`
	// Shadow is the shadow phase's last analysis, when the step ran one.
	Shadow *canary.ShadowAnalysis `json:"shadow,omitempty"`
}

// ForeachRef summarises a foreach step: its items' outputs are in
// ResultsURIs (JSON lines of ItemResult, one file per chunk of items), never
// in workflow payloads, so fan-outs of any size fit.
type ForeachRef struct {
	Items       int      `json:"items"`
	Succeeded   int      `json:"succeeded"`
	Failed      int      `json:"failed"`
	Cached      int      `json:"cached,omitempty"`
	ResultsURIs []string `json:"results_uris,omitempty"`
}

// ItemResult is one foreach item's outcome, a line of a results file.
type ItemResult struct {
	Item   Item        `json:"item"`
	Output *StepOutput `json:"output,omitempty"`
	Error  string      `json:"error,omitempty"`
}

// ApprovalRef records an approval step's decision.
type ApprovalRef struct {
	// Decision is "approved", "rejected" or "timed out".
	Decision string    `json:"decision"`
	Approved bool      `json:"approved"`
	By       string    `json:"by,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	At       time.Time `json:"at"`
}

// ExpandForeachInput asks for a foreach step's items (files, row groups).
type ExpandForeachInput struct {
	Run     RunInfo           `json:"run"`
	Step    string            `json:"step"`
	Foreach pipelines.Foreach `json:"foreach"`
	Inputs  Artifacts         `json:"inputs"`
}

// ExpandForeachOutput lists the items.
type ExpandForeachOutput struct {
	Items []string `json:"items"`
}

// WriteItemResultsInput stores a chunk of foreach results as an artifact.
type WriteItemResultsInput struct {
	Run     RunInfo      `json:"run"`
	Step    string       `json:"step"`
	Chunk   int          `json:"chunk"`
	Results []ItemResult `json:"results"`
}

// WriteItemResultsOutput is the results file.
type WriteItemResultsOutput struct {
	URI string `json:"uri"`
}

// ValidateInput asks the worker to decode and validate a spec.
type ValidateInput struct {
	SpecText  string            `json:"spec_text"`
	SpecFile  string            `json:"spec_file"`
	SpecDir   string            `json:"spec_dir"`
	Overrides map[string]string `json:"overrides,omitempty"`
}

// ValidateOutput is the resolved spec.
type ValidateOutput struct {
	Spec pipelines.Spec `json:"spec"`
}

// VersionRef names a model version and where its bundle lives; it is what a
// model server is told to load.
type VersionRef = serving.Target

// ResolveAliasInput asks which version an alias points to.
type ResolveAliasInput struct {
	Model string `json:"model"`
	Alias string `json:"alias"`
}

// ResolveAliasOutput is the alias's version, if any.
type ResolveAliasOutput struct {
	Found   bool       `json:"found"`
	Current VersionRef `json:"current"`
}

// TrafficInput sets a model's deployment on a model server.
type TrafficInput struct {
	Server string     `json:"server"`
	Model  string     `json:"model"`
	Stable VersionRef `json:"stable"`
	// Canary is nil when all traffic goes to Stable.
	Canary        *VersionRef `json:"canary,omitempty"`
	CanaryPercent int         `json:"canary_percent"`
	// Shadow, when set, receives a copy of the requests (never answering).
	Shadow *VersionRef `json:"shadow,omitempty"`
	// RunID is the workflow that sets the split (recorded with it).
	RunID string `json:"run_id,omitempty"`
}

// TrafficOutput acknowledges a deployment change.
type TrafficOutput struct {
	Applied bool `json:"applied"`
}

// StatsInput asks a model server for a model's counters.
type StatsInput struct {
	Server string `json:"server"`
	Model  string `json:"model"`
}

// VariantStats are cumulative counters of one served version.
type VariantStats = serving.VariantStats

// StatsOutput holds counters per served version, by ascending version.
type StatsOutput struct {
	Variants []VariantStats `json:"variants"`
	// Shadows are the counters of shadow versions (serving.ShadowStats).
	Shadows []serving.ShadowStats `json:"shadows,omitempty"`
}

// MoveAliasInput moves a registry alias by compare-and-swap.
type MoveAliasInput struct {
	Model string `json:"model"`
	Alias string `json:"alias"`
	To    int64  `json:"to"`
	// From is the version the alias must point to now (0 = no alias yet).
	From   int64  `json:"from"`
	Reason string `json:"reason"`
	RunID  string `json:"run_id"`
	Actor  string `json:"actor"`
}

// MoveAliasOutput reports the move.
type MoveAliasOutput struct {
	EventID int64 `json:"event_id"`
	Noop    bool  `json:"noop"`
}

// DriftInput asks for a drift check of a served model.
type DriftInput struct {
	Model        string        `json:"model"`
	Alias        string        `json:"alias"`
	Window       time.Duration `json:"window"`
	PSIThreshold float64       `json:"psi_threshold"`
	MinRows      int           `json:"min_rows"`
}

// FeatureDrift is one feature's drift.
type FeatureDrift = drift.FeatureDrift

// DriftOutput is a drift report over the window.
type DriftOutput struct {
	Version  int64          `json:"version"`
	Rows     int            `json:"rows"`
	Drifted  bool           `json:"drifted"`
	MaxPSI   float64        `json:"max_psi"`
	Features []FeatureDrift `json:"features"`
	// Note explains an inconclusive check (no model, no traffic, ...).
	Note string `json:"note,omitempty"`
}

// StartMonitorInput starts (or reconfigures) the monitor of a model.
type StartMonitorInput struct {
	Monitor MonitorRequest `json:"monitor"`
}

// MonitorRequest is what the monitor workflow needs to start.
type MonitorRequest struct {
	Model    string                  `json:"model"`
	Pipeline string                  `json:"pipeline"`
	Alias    string                  `json:"alias"`
	Config   pipelines.MonitorConfig `json:"config"`
	// Retrain re-runs this pipeline on drift.
	Retrain ValidateInput `json:"retrain"`
	// Servers are the model servers the model is deployed to (their
	// health is part of each window).
	Servers []string `json:"servers,omitempty"`
	// State is carried across continue-as-new; zero when first started.
	State MonitorState `json:"state"`
}

// MonitorState is the monitor workflow's memory between runs.
type MonitorState struct {
	Checks        int          `json:"checks"`
	LastRetrainAt time.Time    `json:"last_retrain_at"`
	Retrains      int          `json:"retrains"`
	LastReport    *DriftOutput `json:"last_report,omitempty"`
	// Judgement is what the rules remember between windows (consecutive
	// bad windows, the last retrain).
	Judgement monitor.State `json:"judgement"`
	// Health are the servers' last scrapes.
	Health []serving.Health `json:"health,omitempty"`
	// LabelsAccounted is the last label batch a window accounted for.
	LabelsAccounted int64 `json:"labels_accounted,omitempty"`
	// LastWindow and LastDecision are the latest window and decision.
	LastWindow   *monitor.Window           `json:"last_window,omitempty"`
	LastDecision *registry.MonitorDecision `json:"last_decision,omitempty"`
}

// Workflow type names, used where a workflow is started by name.
const (
	WorkflowPipeline = "PipelineWorkflow"
	WorkflowCanary   = "CanaryWorkflow"
	WorkflowMonitor  = "MonitorWorkflow"
	WorkflowRetrain  = "RetrainWorkflow"
	WorkflowForeach  = "ForeachWorkflow"
	// WorkflowScore runs a fanned-out score step; WorkflowScoreShards one
	// chunk of its shards.
	WorkflowScore       = "ScoreWorkflow"
	WorkflowScoreShards = "ScoreShardsWorkflow"
	// WorkflowScheduledRun is what a Kiln schedule starts at each firing;
	// WorkflowDeadline watches a schedule's report deadline.
	WorkflowScheduledRun = "ScheduledRunWorkflow"
	WorkflowDeadline     = "DeadlineWorkflow"
	// SignalMonitorConfig replaces a running monitor's request.
	SignalMonitorConfig = "config"
	// SignalDrift tells retrain/<model> that drift was seen.
	SignalDrift = "drift"
)

// StartMonitorOutput names the monitor workflow.
type StartMonitorOutput struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

// TriggerRetrainInput signals (starting if needed) retrain/<model>.
type TriggerRetrainInput struct {
	Model    string `json:"model"`
	Pipeline string `json:"pipeline"`
	Reason   string `json:"reason"`
	// Spec is the pipeline to run again.
	Spec ValidateInput `json:"spec"`
	// Kind is the retrain run's trigger: "drift" (the default) or
	// "performance".
	Kind string `json:"kind,omitempty"`
	// Decision is the monitor decision that asked for the retrain (0:
	// none); its record gets the retrain's workflow ID.
	Decision int64 `json:"decision,omitempty"`
	// Trigger describes the decision for the new version's lineage.
	Trigger string `json:"trigger,omitempty"`
	// AppendData are datasets the retrain's ingest appends (the served
	// rows whose labels joined).
	AppendData []string `json:"append_data,omitempty"`
}

// TriggerRetrainOutput names the retrain workflow run that received the signal.
type TriggerRetrainOutput struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}
