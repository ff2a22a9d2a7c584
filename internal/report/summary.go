// Package report builds Kiln's batch reports: the JSON summary of a scored
// output (rows, models, data quality against the training profile, input and
// prediction drift, performance where labels are present, the trend over
// earlier reports) and the self-contained HTML page that shows it.
//
// The summary's JSON form is versioned (SchemaVersion) and documented in
// docs/reports.md; the HTML page shows exactly the summary's figures.
package report

import "time"

// SchemaVersion names the JSON summary's schema. A change that removes or
// renames a field, or changes a field's meaning, gets a new version.
const SchemaVersion = "kiln.report/v1"

// Summary is a report's content: the JSON summary written beside the HTML
// page and what the page renders.
type Summary struct {
	// Schema is SchemaVersion.
	Schema string `json:"schema"`
	// Title is the page title, e.g. "nightly-churn-report — 2026-12-02".
	Title string `json:"title"`
	// Pipeline is the pipeline that produced the report.
	Pipeline string `json:"pipeline"`
	// Schedule names the schedule whose run produced it; empty for runs
	// started by hand.
	Schedule string `json:"schedule,omitempty"`
	// LogicalDate is the run's logical date ("2026-12-02"), or its logical
	// time for schedules that fire more often than daily
	// ("2026-12-02T14:30"): what the report is about, never the wall clock.
	LogicalDate string `json:"logical_date"`
	// Interval is the run's data interval, when the run has one.
	Interval *Interval `json:"interval,omitempty"`
	// Trigger says why the run started: "schedule", "backfill", "trigger"
	// (kiln schedules trigger) or "cli".
	Trigger string `json:"trigger"`
	// WorkflowID and RunID identify the Temporal run that made the report.
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id,omitempty"`
	// Generated is when the report was computed (wall clock, for the record).
	Generated time.Time `json:"generated"`
	// Input is the scored output the report reads (a directory of parts or
	// a Parquet file).
	Input string `json:"input"`
	// Rows is the number of scored rows read.
	Rows int64 `json:"rows"`
	// Models lists the model versions that scored the rows, by rows
	// descending (normally one).
	Models []ModelRows `json:"models"`
	// Reference says what the current data is compared with.
	Reference Reference `json:"reference"`
	// Quality is the data quality of each input feature against the
	// training profile, in the model's input order.
	Quality []ColumnQuality `json:"quality"`
	// Prediction compares the prediction distribution with the training
	// holdout's.
	Prediction PredictionDrift `json:"prediction"`
	// Drift is the per-feature drift of the inputs and the dataset verdict.
	Drift DatasetDrift `json:"drift"`
	// Performance is set when labels were present for some rows.
	Performance *Performance `json:"performance,omitempty"`
	// Trend holds the previous reports of the same pipeline (or schedule),
	// oldest first, followed by this one; at most the configured number.
	Trend []TrendPoint `json:"trend"`
	// Warnings are things a reader should know (a model version mix, a
	// reference that is only a profile, too few labels for a metric, ...).
	Warnings []string `json:"warnings,omitempty"`
	// Links point to the run in the Temporal UI and to the model's lineage;
	// filled by whoever renders the page, may be empty.
	Links Links `json:"links"`
}

// Interval is a data interval [Start, End).
type Interval struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// ModelRows counts the rows one model version scored.
type ModelRows struct {
	Name    string `json:"name"`
	Version int64  `json:"version"`
	Rows    int64  `json:"rows"`
}

// Reference describes the data the current rows are compared with.
type Reference struct {
	// Model is the version whose training data is the reference, "name:version".
	Model string `json:"model"`
	// FeatureRows is the number of reference rows for the features (the
	// training dataset); 0 when only the bundle's binned profile was
	// available.
	FeatureRows int64 `json:"feature_rows"`
	// FeatureSource says where they came from, e.g. "training dataset
	// sha256:ab12… (5000 rows)" or "bundle profile (binned)".
	FeatureSource string `json:"feature_source"`
	// PredictionRows is the number of holdout rows whose predictions are
	// the reference prediction distribution.
	PredictionRows int64 `json:"prediction_rows"`
	// PredictionSource says where they came from, e.g. "holdout of run
	// pipeline/churn/20261203-… scored by churn:3".
	PredictionSource string `json:"prediction_source"`
}

// ColumnQuality is one input feature's data quality in the current rows.
type ColumnQuality struct {
	Column string `json:"column"`
	// Type is the feature's type in the model's input schema.
	Type string `json:"type"`
	// Rows is the number of current rows; Nulls how many are null (or NaN).
	Rows  int64 `json:"rows"`
	Nulls int64 `json:"nulls"`
	// NullRate is Nulls / Rows; ReferenceNullRate the training data's.
	NullRate          float64 `json:"null_rate"`
	ReferenceNullRate float64 `json:"reference_null_rate"`
	// OutOfRange counts numeric values below the training minimum or
	// above the training maximum; OutOfRangeRate is per non-null value.
	OutOfRange     int64   `json:"out_of_range,omitempty"`
	OutOfRangeRate float64 `json:"out_of_range_rate,omitempty"`
	// Min and Max are the training range (numeric features).
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Unseen counts categorical values the model never saw in training;
	// UnseenRate is per non-null value; UnseenExamples lists a few of them
	// (at most 10, most frequent first).
	Unseen         int64    `json:"unseen,omitempty"`
	UnseenRate     float64  `json:"unseen_rate,omitempty"`
	UnseenExamples []string `json:"unseen_examples,omitempty"`
	// Missing is true when the column is absent from the scored output
	// (it was not passed through), so nothing else was measured.
	Missing bool `json:"missing,omitempty"`
}

// Test is the outcome of one drift test on one column.
type Test struct {
	// Method is "ks", "chisquare", "wasserstein", "jensenshannon" or "psi".
	Method string `json:"method"`
	// Statistic is the test's statistic: the KS distance, the chi-square
	// statistic, the Wasserstein distance divided by the reference's
	// standard deviation, the Jensen-Shannon distance, or the PSI.
	Statistic float64 `json:"statistic"`
	// PValue is set for the tests that have one (ks, chisquare).
	PValue *float64 `json:"p_value,omitempty"`
	// Threshold is the p-value below which (ks, chisquare) or the
	// statistic at or above which (the others) the column drifted.
	Threshold float64 `json:"threshold"`
	// Drifted is the verdict.
	Drifted bool `json:"drifted"`
}

// ColumnDrift is one feature's drift.
type ColumnDrift struct {
	Column string `json:"column"`
	// Kind is "numeric" or "categorical".
	Kind string `json:"kind"`
	// Test is the column's drift test (Evidently's default for the kind and
	// the reference size, unless the spec chose another).
	Test
	// PSI is the population stability index beside the test.
	PSI float64 `json:"psi"`
	// ReferenceRows and Rows are the non-null values compared.
	ReferenceRows int64 `json:"reference_rows"`
	Rows          int64 `json:"rows"`
	// Histogram compares the distributions for the page.
	Histogram Histogram `json:"histogram"`
}

// Histogram is a binned comparison of a reference and a current
// distribution. Numeric histograms have len(Edges) == len(Reference)+1;
// categorical ones have Labels instead of Edges.
type Histogram struct {
	Edges  []float64 `json:"edges,omitempty"`
	Labels []string  `json:"labels,omitempty"`
	// Reference and Current are the shares of values per bin (each sums
	// to 1, or to 0 when there were no values).
	Reference []float64 `json:"reference"`
	Current   []float64 `json:"current"`
}

// DatasetDrift is the per-feature drift and the dataset verdict.
type DatasetDrift struct {
	// Columns are in the model's input order.
	Columns []ColumnDrift `json:"columns"`
	// DriftedColumns counts the drifted columns; Share is
	// DriftedColumns / len(Columns).
	DriftedColumns int     `json:"drifted_columns"`
	Share          float64 `json:"share"`
	// ShareThreshold is the share at or above which the dataset drifted
	// (Evidently's default 0.5).
	ShareThreshold float64 `json:"share_threshold"`
	// Drifted is the dataset verdict.
	Drifted bool `json:"drifted"`
}

// PredictionDrift compares the current predictions with the reference's.
type PredictionDrift struct {
	// Column is the prediction column read ("prediction").
	Column string `json:"column"`
	// Output is the model's output: "probability" or "value".
	Output string `json:"output"`
	// Mean and ReferenceMean are the average predictions.
	Mean          float64 `json:"mean"`
	ReferenceMean float64 `json:"reference_mean"`
	// Test is the drift test of the predictions.
	Test
	// PSI is the population stability index beside the test.
	PSI float64 `json:"psi"`
	// ReferenceRows and Rows are the predictions compared.
	ReferenceRows int64 `json:"reference_rows"`
	Rows          int64 `json:"rows"`
	// Histogram compares the two distributions (the page's main chart).
	Histogram Histogram `json:"histogram"`
}

// Performance is the model's performance on the current rows whose labels
// are known.
type Performance struct {
	// LabelSource is where the labels came from, e.g. "column churned" or
	// "file labels.parquet joined on customer_id".
	LabelSource string `json:"label_source"`
	// LabeledRows is how many rows had a label; Coverage is LabeledRows / Rows.
	LabeledRows int64   `json:"labeled_rows"`
	Coverage    float64 `json:"coverage"`
	// Task is "binary" or "regression".
	Task string `json:"task"`
	// Metrics are computed over the labeled rows (e.g. auc, logloss,
	// accuracy, f1 for binary; rmse, mae, r2 for regression).
	Metrics map[string]float64 `json:"metrics"`
	// ReferenceMetrics are the model's holdout metrics from evaluation.
	ReferenceMetrics map[string]float64 `json:"reference_metrics,omitempty"`
	// Threshold turns probabilities into labels for accuracy and F1.
	Threshold float64 `json:"threshold,omitempty"`
}

// TrendPoint is one report in the trend.
type TrendPoint struct {
	LogicalDate string `json:"logical_date"`
	Rows        int64  `json:"rows"`
	// DriftShare is the share of drifted features; DatasetDrift the verdict.
	DriftShare   float64 `json:"drift_share"`
	DatasetDrift bool    `json:"dataset_drift"`
	// PredictionMean and PredictionStatistic follow the predictions.
	PredictionMean      float64 `json:"prediction_mean"`
	PredictionStatistic float64 `json:"prediction_statistic"`
	// Metrics are the performance metrics, when labels were present.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Current marks this report's own point.
	Current bool `json:"current,omitempty"`
}

// Links point to where a reader goes next.
type Links struct {
	// Run is the run's page in the Temporal web UI.
	Run string `json:"run,omitempty"`
	// Lineage is the model version's lineage page.
	Lineage string `json:"lineage,omitempty"`
	// Index is the reports index page.
	Index string `json:"index,omitempty"`
}
