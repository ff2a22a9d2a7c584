// Package pipelines defines Kiln's pipeline spec (apiVersion kiln/v1): its Go
// types, the YAML decoder that reports every problem with file:line:col, the
// validator shared by `kiln validate` and the worker, and the step graph.
//
// A spec is decoded with Parse. The result is a *Spec whose steps carry typed,
// fully resolved configuration (parameters substituted, defaults applied), so
// workflows and activities never see YAML.
package pipelines

import (
	"encoding/json"
	"fmt"
	"github.com/kiln-ml/kiln/internal/canary"
	"github.com/kiln-ml/kiln/internal/transform"
	"time"
)

// APIVersion is the only spec version this package reads.
const APIVersion = "kiln/v1"

// Spec is a decoded, validated and resolved pipeline spec.
type Spec struct {
	// APIVersion is always "kiln/v1".
	APIVersion string `json:"apiVersion"`
	// Kind is always "Pipeline".
	Kind string `json:"kind"`
	// Name names the pipeline: lowercase letters, digits and dashes.
	Name string `json:"name"`
	// Description is free text shown by `kiln runs show`.
	Description string `json:"description,omitempty"`
	// Params are the typed pipeline parameters after CLI overrides, in spec order.
	Params []Param `json:"params,omitempty"`
	// Schedule, when set, is how `kiln schedules create` runs the pipeline
	// on a Temporal Schedule.
	Schedule *Schedule `json:"schedule,omitempty"`
	// Steps are in spec order; Order gives a topological order.
	Steps []Step `json:"steps"`
	// File is the path the spec was read from (for messages only).
	File string `json:"file,omitempty"`
	// Dir is the directory relative paths in the spec are resolved against.
	Dir string `json:"dir,omitempty"`
	// Hash is the hex SHA-256 of the spec text as submitted (before overrides).
	Hash string `json:"hash"`
}

// ParamType is the type of a pipeline parameter, taken from its default value.
type ParamType string

// Parameter types.
const (
	ParamInt    ParamType = "int"
	ParamFloat  ParamType = "float"
	ParamString ParamType = "string"
	ParamBool   ParamType = "bool"
)

// Param is one pipeline parameter with its resolved value.
type Param struct {
	Name string    `json:"name"`
	Type ParamType `json:"type"`
	// Value is int64, float64, string or bool according to Type.
	Value any `json:"value"`
	// Overridden is true when the value came from the command line.
	Overridden bool `json:"overridden,omitempty"`
}

// StepType names what a step does (the `uses` field).
type StepType string

// The step types.
const (
	StepIngest     StepType = "ingest"
	StepPreprocess StepType = "preprocess"
	StepTrain      StepType = "train"
	StepEvaluate   StepType = "evaluate"
	StepRegister   StepType = "register"
	StepScore      StepType = "score"
	// StepReport writes a batch report (data quality, drift, performance,
	// trend) of a scored output.
	StepReport  StepType = "report"
	StepDeploy  StepType = "deploy"
	StepMonitor StepType = "monitor"
	// StepApproval waits for a person: `kiln approve RUN STEP --reason ...`.
	StepApproval StepType = "approval"
	// StepNoop does nothing (optionally sleeps): for structure, tests and benchmarks.
	StepNoop StepType = "noop"
)

// StepTypes lists every known step type in pipeline order.
var StepTypes = []StepType{StepIngest, StepPreprocess, StepTrain, StepEvaluate, StepRegister, StepScore, StepReport, StepDeploy, StepMonitor, StepApproval, StepNoop}

// Step is one node of the pipeline graph. Exactly one of the typed config
// pointers is set, matching Uses.
type Step struct {
	Name  string   `json:"name"`
	Uses  StepType `json:"uses"`
	Needs []string `json:"needs,omitempty"`
	// Retry is the activity retry policy; defaults apply when omitted.
	Retry Retry `json:"retry"`
	// Timeout bounds one attempt of the step; 0 means the step type's default.
	Timeout Duration `json:"timeout,omitempty"`
	// Queue is the task queue the step's activities run on (score shards
	// and foreach items included): only workers polling it (kiln worker
	// --queues train,gpu) run them. Empty means the run's own queue. The
	// step's workflow logic stays on the run's queue.
	Queue string `json:"queue,omitempty"`
	// Container is set for container steps (train).
	Container *Container `json:"container,omitempty"`
	// When is a condition evaluated when the step's needs are done; false
	// skips the step (its dependents still run). Empty means always. It
	// reads params.<name> and steps.<step>.<output path>, e.g.
	// "steps.evaluate.evaluation.metrics.auc > 0.9 && params.deploy".
	When string `json:"when,omitempty"`
	// Foreach runs the step once per item (fan-out); nil runs it once.
	Foreach *Foreach `json:"foreach,omitempty"`

	Ingest     *IngestConfig     `json:"ingest,omitempty"`
	Preprocess *PreprocessConfig `json:"preprocess,omitempty"`
	Train      *TrainConfig      `json:"train,omitempty"`
	Evaluate   *EvaluateConfig   `json:"evaluate,omitempty"`
	Register   *RegisterConfig   `json:"register,omitempty"`
	Score      *ScoreConfig      `json:"score,omitempty"`
	Report     *ReportConfig     `json:"report,omitempty"`
	Deploy     *DeployConfig     `json:"deploy,omitempty"`
	Monitor    *MonitorConfig    `json:"monitor,omitempty"`
	Approval   *ApprovalConfig   `json:"approval,omitempty"`
	Noop       *NoopConfig       `json:"noop,omitempty"`

	// Line and Column locate the step in the spec file.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

// Foreach fans a step out over items. Exactly one source is set. Each item
// runs the step with ${item} (the item's value) and ${item.index} replaced
// in the string fields of its `with`. YAML:
// foreach: {items: [a, b], parallelism: 8} or {files: "shards/*.parquet"} or {row_groups: true}.
type Foreach struct {
	// Items is a literal list (params may be substituted into it).
	Items []string `json:"items,omitempty" yaml:"items"`
	// Files is a glob relative to the spec's directory: one item per
	// matching file (its absolute path), in lexical order.
	Files string `json:"files,omitempty" yaml:"files"`
	// RowGroups makes one item per row group of the upstream dataset; the
	// item is the row group's index ("0", "1", ...).
	RowGroups bool `json:"row_groups,omitempty" yaml:"row_groups"`
	// Parallelism bounds the items running at once. Default 16.
	Parallelism int `json:"parallelism" yaml:"parallelism"`
	// ContinueOnError runs every item even after one fails; the step still
	// fails at the end, naming the failed items. Default false (stop at the
	// first failure).
	ContinueOnError bool `json:"continue_on_error,omitempty" yaml:"continue_on_error"`
}

// Retry is a step's retry policy. YAML: retry: {max_attempts: 3, backoff: 2s}.
type Retry struct {
	// MaxAttempts counts the first attempt; 1 means no retries. Default 3.
	MaxAttempts int `json:"max_attempts" yaml:"max_attempts"`
	// Backoff is the first retry's delay; it doubles up to 1 minute. Default 1s.
	Backoff Duration `json:"backoff,omitempty" yaml:"backoff"`
}

// Container says how a container step runs. YAML:
// container: {image: kiln/trainer:dev, cpus: 1, memory: 1GiB, timeout: 30m, runtime: auto}.
type Container struct {
	// Image is a local image reference. Default "kiln/trainer:dev".
	Image string `json:"image" yaml:"image"`
	// CPUs is the CPU limit (fractions allowed). Default 1.
	CPUs float64 `json:"cpus" yaml:"cpus"`
	// Memory is the memory limit in bytes. YAML accepts "512MiB", "1GiB", "2G" or a byte count. Default 1GiB.
	Memory ByteSize `json:"memory" yaml:"memory"`
	// Timeout bounds the container's run. Default 30m.
	Timeout Duration `json:"timeout" yaml:"timeout"`
	// Runtime is "auto" (Docker when reachable, else a local process),
	// "docker" or "process". Default "auto".
	Runtime string `json:"runtime" yaml:"runtime"`
	// GPUs asks the Docker engine for GPUs: YAML "all" (GPUsAll here) or a
	// count. Default 0 (none). The engine needs a GPU runtime such as the
	// NVIDIA Container Toolkit; the process runtime ignores it.
	GPUs int `json:"gpus,omitempty" yaml:"gpus"`
}

// GPUsAll in Container.GPUs requests every GPU (YAML gpus: all).
const GPUsAll = -1

// IngestConfig: read a CSV, JSON Lines or Parquet file into a
// content-addressed dataset. YAML:
// with: {source: data/churn.csv, format: csv, schema: {tenure: int64}, expect: {min_rows: 1000}}.
type IngestConfig struct {
	// Source is a path (relative to the spec's directory), a file:// URL,
	// an http(s):// URL, or an object URL s3://bucket/key or gs://bucket/key
	// (with the driver's options as a query, e.g. ?region=eu-west-1);
	// remote sources are fetched by the worker. Required.
	Source string `json:"source" yaml:"source"`
	// Format is "csv", "jsonl" or "parquet"; default from Source's
	// extension: .csv, .jsonl, .ndjson (each optionally followed by .gz),
	// .parquet or .pq.
	Format string `json:"format" yaml:"format"`
	// Schema forces the type of the named columns (int64, float64, string
	// or bool) instead of inferring it (CSV and JSON Lines).
	Schema map[string]string `json:"schema,omitempty" yaml:"schema"`
	// Expect holds expectations checked in one pass after reading.
	Expect Expectations `json:"expect" yaml:"expect"`
}

// Expectations are checked by ingest in one streaming pass over the dataset;
// every failure is collected into a report and any failure fails the step.
type Expectations struct {
	// MinRows is the fewest rows accepted. 0 means no check.
	MinRows int64 `json:"min_rows,omitempty" yaml:"min_rows"`
	// Columns must all be present.
	Columns []string `json:"columns,omitempty" yaml:"columns"`
	// NotNull columns must have no null (or NaN) values.
	NotNull []string `json:"not_null,omitempty" yaml:"not_null"`
	// Ranges bound numeric columns; nulls are not checked (see NotNull).
	Ranges map[string]Range `json:"ranges,omitempty" yaml:"ranges"`
	// Allowed lists the only values a string column may hold; nulls are not
	// checked.
	Allowed map[string][]string `json:"allowed,omitempty" yaml:"allowed"`
	// Unique columns must not repeat a non-null value. Memory grows with
	// the number of distinct values (a 64-bit hash each, ~20 bytes in a map).
	Unique []string `json:"unique,omitempty" yaml:"unique"`
}

// Range bounds a numeric column, inclusively. A nil bound is not checked.
type Range struct {
	Min *float64 `json:"min,omitempty" yaml:"min"`
	Max *float64 `json:"max,omitempty" yaml:"max"`
}

// PreprocessConfig: split the dataset and fit transforms on the training part.
type PreprocessConfig struct {
	// Target is the label column. Required.
	Target string `json:"target" yaml:"target"`
	// Task is "binary" (a 0/1 or true/false target; the model outputs a
	// probability), "multiclass" (a target of three or more values, strings
	// or numbers; the model outputs one probability per class and the most
	// probable class) or "regression" (a numeric target; the model outputs a
	// value). It decides the metrics evaluate computes and a gate may use.
	// Default "binary".
	Task string `json:"task" yaml:"task"`
	// Exclude lists columns that are neither features nor target (IDs).
	Exclude []string `json:"exclude,omitempty" yaml:"exclude"`
	// Split is the deterministic train/valid/test split.
	Split Split `json:"split" yaml:"split"`
	// Transforms run in order, fitted on the training rows only.
	Transforms []Transform `json:"transforms,omitempty" yaml:"transforms"`
}

// Split fractions: Test is taken from all rows, Valid from the rest.
type Split struct {
	// Test is the holdout fraction used by evaluate. Default 0.2.
	Test float64 `json:"test" yaml:"test"`
	// Valid is the validation fraction given to the trainer. Default 0.1.
	Valid float64 `json:"valid" yaml:"valid"`
	// Seed makes the split reproducible. Default 42.
	Seed int64 `json:"seed" yaml:"seed"`
}

// Transform is one preprocessing step. YAML is a one-key mapping, e.g.
// `- impute: {columns: [tenure], strategy: median}`. Kind is that key.
// docs/spec.md documents every kind and option. It is transform.Spec, so
// the recipe a spec declares is what internal/transform fits, and the
// transform package (which exported predictors link) does not depend on
// the spec package.
type Transform = transform.Spec

// TrainConfig: train an estimator in a container.
type TrainConfig struct {
	// Algorithm is "logistic" (binary task: Kiln logistic JSON; multiclass:
	// multinomial logistic regression, Kiln multinomial JSON), "gbdt"
	// (histogram gradient-boosted trees, binary, multiclass or regression
	// task; XGBoost JSON model) or "ridge" (regression task; Kiln linear
	// JSON). Required.
	Algorithm string `json:"algorithm" yaml:"algorithm"`
	// Params are passed to the trainer in params.json; the decoder rejects
	// unknown names and out-of-range values as the reference trainer would.
	//
	// "logistic": l2 (>= 0, default 1e-4), max_iter (a whole number from 1
	// to 1000000, default 100) and tol (>= 0, default 1e-8), e.g.
	// {l2: 0.001, max_iter: 200}.
	//
	// "gbdt" (XGBoost's names and defaults): objective ("binary:logistic",
	// "multi:softprob" or "reg:squarederror"; default from the task),
	// n_estimators (alias
	// num_round or trees; 1 to 100000, default 100), learning_rate (alias
	// eta; in (0, 1], default 0.3), max_depth (1 to 31, default 6), lambda
	// (alias reg_lambda; >= 0, default 1), gamma (alias min_split_loss; >= 0,
	// default 0), min_child_weight (>= 0, default 1), subsample and
	// colsample_bytree (in (0, 1], default 1; sampling follows the seed),
	// max_bin (2 to 65535, default 256), base_score (default 0.5 for binary,
	// the mean target for regression) and early_stopping_rounds (default 0,
	// off; stops when the validation logloss or rmse has not improved for
	// that many rounds and keeps the best round's trees). Missing feature
	// values are allowed: each split learns where they go.
	//
	// "ridge": l2 (>= 0, default 1), the penalty on the coefficients of the
	// standardized features (scikit-learn's Ridge(alpha=l2) after a
	// StandardScaler).
	Params map[string]any `json:"params,omitempty" yaml:"params"`
}

// EvaluateConfig: score the holdout with the bundle and check the gate.
type EvaluateConfig struct {
	// Gate is a boolean expression over metrics, e.g. "auc >= 0.8 && logloss < 0.5".
	// Empty means no gate.
	Gate string `json:"gate,omitempty" yaml:"gate"`
	// Threshold turns probabilities into labels for accuracy and F1. Default 0.5.
	Threshold float64 `json:"threshold" yaml:"threshold"`
	// Champion is the registry reference the gate's champion.* metrics come
	// from, scored on the same holdout. Default: "<model>@production", where
	// <model> is the downstream register step's model (or the pipeline name).
	Champion string `json:"champion,omitempty" yaml:"champion"`
	// Significance, if set, also requires the challenger to be significantly
	// better than the champion on the holdout (when there is a champion).
	Significance *Significance `json:"significance,omitempty" yaml:"significance"`
	// Holdout is "all" (the default: every test-split row) or "recent":
	// only the test-split rows that a monitor's retrain appended to the
	// training data (the served rows whose labels arrived), so a retrained
	// model and its champion are compared on the population that changed;
	// without appended rows it is the whole holdout.
	Holdout string `json:"holdout,omitempty" yaml:"holdout"`
}

// Holdouts of an evaluate step.
const (
	HoldoutAll    = "all"
	HoldoutRecent = "recent"
)

// SourceColumn marks, in a dataset a retrain appended rows to, where each
// row came from: SourceTraining or SourceAppended. Columns named _kiln_...
// are never features.
const (
	SourceColumn   = "_kiln_source"
	SourceTraining = "training"
	SourceAppended = "appended"
)

// Significance tests: the challenger must beat the champion with a one-sided
// p-value below Alpha. YAML:
// significance: {test: delong, metric: auc, alpha: 0.05} or
// significance: {test: bootstrap, metric: rmse, resamples: 2000, seed: 7}.
type Significance struct {
	// Test is "delong" (DeLong's test for correlated AUCs; binary task, metric
	// auc) or "bootstrap" (paired bootstrap, any metric). Required.
	Test string `json:"test" yaml:"test"`
	// Metric is compared; for lower-is-better metrics (logloss, ece, rmse,
	// mae) better means lower. Default "auc" for delong; required for bootstrap.
	Metric string `json:"metric" yaml:"metric"`
	// Alpha is the significance level, in (0, 0.5]. Default 0.05.
	Alpha float64 `json:"alpha" yaml:"alpha"`
	// Resamples is the bootstrap's number of resamples, 100 to 100000. Default 1000.
	Resamples int `json:"resamples,omitempty" yaml:"resamples"`
	// Seed seeds the bootstrap's resampling. Default 42.
	Seed int64 `json:"seed,omitempty" yaml:"seed"`
}

// RegisterConfig: add the bundle to the registry as a new model version.
type RegisterConfig struct {
	// Model names the registered model. Default: the pipeline name.
	Model string `json:"model" yaml:"model"`
	// Alias, if set, is moved to the new version (e.g. "staging").
	Alias string `json:"alias,omitempty" yaml:"alias"`
	// RequireApproval lists aliases (e.g. [production]) that may point at
	// the new version only after an approval (kiln approve) in the promote
	// workflow. It is stored with the version.
	RequireApproval []string `json:"require_approval,omitempty" yaml:"require_approval"`
}

// ScoreConfig: batch-score a Parquet file with the registered model.
type ScoreConfig struct {
	// Model is a registry reference, "name:version", "name@alias" or
	// "name" (the latest version), to score with instead of the version an
	// upstream register step registered (e.g. nightly scoring with
	// churn@production). A score step has either Model or an upstream
	// register step, not both.
	Model string `json:"model,omitempty" yaml:"model"`
	// Input is a Parquet file, a directory of .parquet files, a glob or a
	// path prefix (relative to the spec), or a file:// URL. Default: the
	// ingested dataset. It may embed ${run.*} references
	// ("landing/${run.logical_date}/").
	Input string `json:"input,omitempty" yaml:"input"`
	// Output is the directory the scored parts and their _SUCCESS manifest
	// go to (a file for the single-activity path: row_groups or foreach).
	// Default: under the artifact store.
	Output string `json:"output,omitempty" yaml:"output"`
	// Passthrough columns are copied from input to output. Default: none.
	Passthrough []string `json:"passthrough,omitempty" yaml:"passthrough"`
	// RowGroups limits scoring to some of the input's row groups: "" (all),
	// "3" or "2-5" (inclusive). A string, so that foreach can set it to
	// ${item}.
	RowGroups string `json:"row_groups,omitempty" yaml:"row_groups"`
	// ShardRows is the target rows per shard when the input is fanned out
	// (one activity per shard: a file, or consecutive row groups of one).
	// Default 4194304. Ignored with row_groups and in a foreach.
	ShardRows int64 `json:"shard_rows,omitempty" yaml:"shard_rows"`
	// MaxShards caps the shards; past it shards grow. Default 10000.
	MaxShards int `json:"max_shards,omitempty" yaml:"max_shards"`
	// Parallelism is how many shards are scored at once. Default 4.
	Parallelism int `json:"parallelism,omitempty" yaml:"parallelism"`
}

// ReportConfig: a batch report of a scored output: rows and models, data
// quality against the training profile, input and prediction drift,
// performance where labels are known, and the trend over earlier reports.
// YAML: with: {labels: {column: churned}, trend: 30, drift: {method: {numeric: psi}}}.
type ReportConfig struct {
	// Input is the scored output to report on: a directory of parts (with
	// _SUCCESS), a Parquet file or a glob, relative to the spec, or a
	// file:// URL; it may embed ${run.*} references. Default: the output
	// of the upstream score step (required when Input is not given).
	Input string `json:"input,omitempty" yaml:"input"`
	// Output is the directory reports go to, one subdirectory per run key.
	// Default: reports/<pipeline>/<step> in the artifact store.
	Output string `json:"output,omitempty" yaml:"output"`
	// Model is the registry reference of the model the rows are compared
	// with ("name:version", "name@alias", "name"). Default: the model that
	// scored the rows (the scored output's model and model_version).
	Model string `json:"model,omitempty" yaml:"model"`
	// Labels, when set, say where the true labels are, for performance
	// metrics.
	Labels *ReportLabels `json:"labels,omitempty" yaml:"labels"`
	// Threshold turns probabilities into labels for accuracy and F1, in
	// (0, 1). Default 0.5.
	Threshold float64 `json:"threshold" yaml:"threshold"`
	// Trend is how many earlier reports the trend shows, 0 to 365. Default 14.
	Trend int `json:"trend" yaml:"trend"`
	// Drift configures the drift tests.
	Drift ReportDrift `json:"drift" yaml:"drift"`
	// Columns restricts the features compared. Default: every model input.
	Columns []string `json:"columns,omitempty" yaml:"columns"`
	// Title is the page title. Default: "<pipeline> — <run key>".
	Title string `json:"title,omitempty" yaml:"title"`
}

// ReportLabels locate the true labels: a column of the scored output
// (passed through by the score step), or a file joined to the scored rows
// by an ID column. Exactly one of Column and File is set.
type ReportLabels struct {
	// Column is a label column of the scored output.
	Column string `json:"column,omitempty" yaml:"column"`
	// File is a labels file (Parquet, CSV or JSON Lines, by extension),
	// relative to the spec or a file:// URL; it may embed ${run.*}
	// references.
	File string `json:"file,omitempty" yaml:"file"`
	// ID is the column both the scored output and File hold, to join on.
	// Required with File.
	ID string `json:"id,omitempty" yaml:"id"`
	// Label is File's label column. Default: the model's target.
	Label string `json:"label,omitempty" yaml:"label"`
}

// Drift methods, by feature kind (the keys of ReportDrift.Method).
var (
	NumericDriftMethods     = []string{"ks", "wasserstein", "psi"}
	CategoricalDriftMethods = []string{"chisquare", "jensenshannon", "psi"}
)

// ReportDrift configures a report's drift tests. The defaults are
// Evidently's: Kolmogorov-Smirnov (numeric) and chi-square (categorical)
// for references of at most SmallReference rows, Wasserstein distance and
// Jensen-Shannon distance for larger ones.
type ReportDrift struct {
	// Method overrides the test per feature kind: "numeric" (ks,
	// wasserstein or psi) and "categorical" (chisquare, jensenshannon or
	// psi). Nil: the defaults above.
	Method map[string]string `json:"method,omitempty" yaml:"method"`
	// Thresholds override the tests' thresholds; 0 means the test's
	// default.
	Thresholds DriftThresholds `json:"thresholds" yaml:"thresholds"`
	// SmallReference is the reference size (rows) up to which the
	// default tests are ks and chisquare. Default 1000.
	SmallReference int `json:"small_reference" yaml:"small_reference"`
	// DatasetShare is the share of drifted features, in (0, 1], at or
	// above which the dataset drifted. Default 0.5.
	DatasetShare float64 `json:"dataset_share" yaml:"dataset_share"`
}

// DriftThresholds are the drift tests' thresholds: p-values below which a
// feature drifted (KS, ChiSquare; in (0, 1), default 0.05) and distances at
// or above which it did (Wasserstein, in standard deviations of the
// reference, default 0.1; JensenShannon, in (0, 1], default 0.1; PSI,
// default 0.1). 0 means the default.
type DriftThresholds struct {
	KS            float64 `json:"ks,omitempty" yaml:"ks"`
	ChiSquare     float64 `json:"chisquare,omitempty" yaml:"chisquare"`
	Wasserstein   float64 `json:"wasserstein,omitempty" yaml:"wasserstein"`
	JensenShannon float64 `json:"jensenshannon,omitempty" yaml:"jensenshannon"`
	PSI           float64 `json:"psi,omitempty" yaml:"psi"`
}

// DeployConfig: roll the registered version out to a model server as a canary.
type DeployConfig struct {
	// Server is the model server's base URL. Default: the worker's --model-server.
	Server string `json:"server,omitempty" yaml:"server"`
	// Servers are several model servers (replicas) that all get the same
	// traffic split; the analysis sums their traffic. Default: every
	// server of the worker's --model-server list. At most one of Server
	// and Servers is set in a spec.
	Servers []string `json:"servers,omitempty" yaml:"servers"`
	// Alias is moved to the version when it is promoted. Default "production".
	Alias string `json:"alias" yaml:"alias"`
	// Steps are the canary traffic percentages, increasing, ending at 100. Default [5, 25, 50, 100].
	Steps []int `json:"steps" yaml:"steps"`
	// Interval is how often the canary is analysed. Default 30s.
	Interval Duration `json:"interval" yaml:"interval"`
	// MinRequests is the fewest canary requests a step needs before it can
	// pass (a floor under the sample the analysis derives). Default 50.
	MinRequests int `json:"min_requests" yaml:"min_requests"`
	// MaxErrorRateIncrease is the error-rate increase tolerated: the
	// analysis's error_rate margin when the spec declares no analysis.
	// Default 0.01.
	MaxErrorRateIncrease float64 `json:"max_error_rate_increase" yaml:"max_error_rate_increase"`
	// MaxWaits is how many analysis intervals in a row may bring no new
	// canary traffic before the rollout pauses and alerts. Default 10.
	MaxWaits int `json:"max_waits" yaml:"max_waits"`
	// MaxIntervals is how many intervals one step may stay undecided
	// (data arriving, interval not yet narrow enough) before the rollout
	// pauses and alerts. Default 120.
	MaxIntervals int `json:"max_intervals,omitempty" yaml:"max_intervals"`
	// Analysis declares what the canary is judged on and the margins
	// (internal/canary). Default: error_rate with min_effect
	// max(0.02, 2·max_error_rate_increase) and margin max_error_rate_increase,
	// and latency with min_effect 0.1.
	Analysis *canary.Config `json:"analysis,omitempty" yaml:"analysis"`
	// NoAnalysis (analysis: none) deploys the version to all traffic at
	// once and moves the alias, with no canary: for a first deployment
	// with no live users to compare on.
	NoAnalysis bool `json:"no_analysis,omitempty" yaml:"-"`
	// RequireApproval makes the rollout wait, after the last step passes,
	// for a person to approve the promotion (kiln approve).
	RequireApproval bool `json:"require_approval,omitempty" yaml:"require_approval"`
	// Shadow, when set, runs a shadow phase before the canary: the
	// candidate gets a copy of the live requests (never answering them)
	// and must agree with the live version and match its prediction
	// distribution and latency before it gets real traffic
	// (canary.ShadowConfig). A shadow that fails refuses the candidate.
	Shadow *canary.ShadowConfig `json:"shadow,omitempty" yaml:"shadow"`
}

// AllServers returns the model servers the step deploys to.
func (c DeployConfig) AllServers() []string {
	if len(c.Servers) > 0 {
		return c.Servers
	}
	if c.Server != "" {
		return []string{c.Server}
	}
	return nil
}

// CanaryConfig returns the analysis the step declares, or the default one
// derived from MaxErrorRateIncrease.
func (c DeployConfig) CanaryConfig() canary.Config {
	if c.Analysis != nil {
		return *c.Analysis
	}
	cfg := canary.DefaultConfig()
	cfg.ErrorRate = &canary.Threshold{MinEffect: max(0.02, 2*c.MaxErrorRateIncrease), Margin: c.MaxErrorRateIncrease}
	return cfg
}

// MonitorConfig: watch served traffic and retrain when the model degrades.
// Every Interval the monitor measures the last Window of served rows against
// the training data (drift per feature and of the predictions, Evidently's
// tests as in reports), joins the labels that have arrived to compute live
// metrics, reads the model servers' health, records it all, and decides
// (internal/monitor): a live metric beyond its threshold for Metric.Windows
// windows in a row, or — when labels are too few to judge performance — a
// share of drifted features of at least DriftShare, or a drifted feature
// named in Features, starts a retrain (one at a time, Cooldown apart).
type MonitorConfig struct {
	// Interval between checks. Default 1m.
	Interval Duration `json:"interval" yaml:"interval"`
	// PSIThreshold is the PSI at or above which a feature drifted when the
	// drift method is psi (drift.method). Default 0.2.
	PSIThreshold float64 `json:"psi_threshold" yaml:"psi_threshold"`
	// MinRows: fewer served rows in a window than this are not judged for
	// drift. Default 200.
	MinRows int `json:"min_rows" yaml:"min_rows"`
	// Window is how far back each check looks at served requests. Default 10m.
	Window Duration `json:"window" yaml:"window"`
	// Retrain starts a new run of this pipeline when a rule triggers;
	// false only records alerts. Default true.
	Retrain *bool `json:"retrain,omitempty" yaml:"retrain"`
	// Cooldown is the least time between two retrains. Default 1h.
	Cooldown Duration `json:"cooldown" yaml:"cooldown"`
	// DriftShare is the share of drifted features at or above which a
	// retrain starts (Evidently's dataset-drift rule). Default 0.5.
	DriftShare float64 `json:"drift_share" yaml:"drift_share"`
	// Features are features whose drift alone starts a retrain.
	Features []string `json:"features,omitempty" yaml:"features"`
	// Metric is the live-metric rule, over the rows whose labels joined.
	Metric *MonitorMetric `json:"metric,omitempty" yaml:"metric"`
	// MinLabels: fewer labelled rows than this show no live metric and
	// decide nothing on performance. Default 500.
	MinLabels int `json:"min_labels" yaml:"min_labels"`
	// Labels says where late labels arrive (besides kiln labels push).
	Labels *MonitorLabels `json:"labels,omitempty" yaml:"labels"`
	// Drift overrides the drift tests (methods and thresholds), as in a
	// report step.
	Drift ReportDrift `json:"drift" yaml:"drift"`
}

// MonitorMetric is a live-metric rule. YAML: metric: {name: auc, threshold:
// 0.75, windows: 3}.
type MonitorMetric struct {
	// Name is a metric of the model's task (auc, logloss, accuracy, f1, ...
	// or rmse, mae, r2). Required.
	Name string `json:"name" yaml:"name"`
	// Threshold: a window is bad when the metric is below it (metrics where
	// higher is better) or above it (logloss, ece, rmse, mae). Required.
	Threshold float64 `json:"threshold" yaml:"threshold"`
	// Windows is how many bad windows in a row start a retrain. Default 3.
	Windows int `json:"windows" yaml:"windows"`
}

// MonitorLabels configure late labels. YAML: labels: {source: ../labels/,
// window: 336h, delay: 1h}.
type MonitorLabels struct {
	// Source is a file, directory or glob (relative to the spec) polled
	// every interval: new label files are pushed as with kiln labels push.
	Source string `json:"source,omitempty" yaml:"source"`
	// Window is how long after a prediction its label may arrive and still
	// join. Default 336h (14 days).
	Window Duration `json:"window" yaml:"window"`
	// Delay shifts the performance window back from the drift window, to
	// let labels arrive: performance is measured over the predictions of
	// [end-delay-window, end-delay). Default 0.
	Delay Duration `json:"delay,omitempty" yaml:"delay"`
}

// ApprovalConfig: wait for a person to approve or reject. YAML:
// with: {message: "Promote to production?", approvers: [ana], timeout: 24h, on_timeout: fail}.
type ApprovalConfig struct {
	// Message tells the approver what they decide.
	Message string `json:"message,omitempty" yaml:"message"`
	// Approvers who may decide; empty means anyone.
	Approvers []string `json:"approvers,omitempty" yaml:"approvers"`
	// Timeout bounds the wait; 0 waits forever.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout"`
	// OnTimeout is "fail" (the step fails) or "skip" (the step is skipped
	// and its dependents run). Default "fail".
	OnTimeout string `json:"on_timeout" yaml:"on_timeout"`
}

// NoopConfig: do nothing, optionally for a while. YAML: with: {sleep: 100ms}.
type NoopConfig struct {
	// Sleep is how long the step waits (in its activity). Default 0.
	Sleep Duration `json:"sleep,omitempty" yaml:"sleep"`
}

// Duration is a time.Duration that reads and writes Go duration strings ("30s", "1h30m").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration: %w", err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ByteSize is a size in bytes; YAML accepts "512MiB", "1GiB", "1.5G", "100k" or a plain number.
type ByteSize int64

// Recipe is what internal/transform fits for this preprocess step.
func (c PreprocessConfig) Recipe() transform.Recipe {
	return transform.Recipe{Target: c.Target, Exclude: c.Exclude, Transforms: c.Transforms}
}
