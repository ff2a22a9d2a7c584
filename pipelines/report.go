package pipelines

import (
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Decoding of report steps.

var (
	reportLabelKeys    = []string{"column", "file", "id", "label"}
	reportDriftKeys    = []string{"method", "thresholds", "small_reference", "dataset_share"}
	driftThresholdKeys = []string{"ks", "chisquare", "wasserstein", "jensenshannon", "psi"}
	driftKinds         = []string{"numeric", "categorical"}
)

// Report defaults; see ReportConfig.
const (
	DefaultReportThreshold = 0.5
	DefaultReportTrend     = 14
	MaxReportTrend         = 365
	DefaultSmallReference  = 1000
	DefaultDatasetShare    = 0.5
	// DefaultMinLabels is the fewest labelled rows a monitor window shows
	// live metrics for: with 500 rows the standard error of an accuracy
	// near 0.8 is about 0.018, of an AUC near 0.8 about 0.02.
	DefaultMinLabels = 500
	// DefaultMonitorWindows is how many bad windows in a row start a
	// retrain on a live metric.
	DefaultMonitorWindows = 3
	// DefaultLabelWindow is how long after a prediction its label may
	// arrive and still join (Arize's 14 days).
	DefaultLabelWindow = Duration(14 * 24 * time.Hour)
)

// MonitorMetrics are the live metrics a monitor rule may name.
var MonitorMetrics = []string{"auc", "pr_auc", "logloss", "accuracy", "precision", "recall", "f1", "ece", "rmse", "mae", "r2"}

func (d *decoder) decodeReport(o *object, info *stepInfo) *ReportConfig {
	c := &ReportConfig{
		Threshold: DefaultReportThreshold,
		Trend:     DefaultReportTrend,
		Drift:     ReportDrift{SmallReference: DefaultSmallReference, DatasetShare: DefaultDatasetShare},
	}
	info.ownInput = o.has("input")
	if o.str("input", &c.Input) {
		n, p := o.where("input")
		if strings.TrimSpace(c.Input) == "" {
			d.errorf(n, p, "must not be empty; leave input out to read the upstream score step's output")
		} else {
			d.checkLocation(o, "input", c.Input, outputLocation)
			info.ownInputAt, info.ownInputPath = n, p
		}
	}
	if o.str("output", &c.Output) {
		if strings.TrimSpace(c.Output) == "" {
			n, p := o.where("output")
			d.errorf(n, p, "must not be empty; leave output out to write under the artifact store")
		} else {
			d.checkLocation(o, "output", c.Output, outputLocation)
		}
	}
	if o.str("model", &c.Model) && !modelRefRE.MatchString(c.Model) {
		n, p := o.where("model")
		d.errorf(n, p, "invalid model %q: use a registry reference such as churn@production, churn:3 or churn (the latest version), or leave model out for the model that scored the rows", c.Model)
	}
	if o.has("labels") {
		c.Labels = d.decodeReportLabels(d.object(o.vals["labels"], o.keys["labels"], joinPath(o.path, "labels"), reportLabelKeys))
	}
	if o.float("threshold", &c.Threshold) && (c.Threshold <= 0 || c.Threshold >= 1) {
		n, p := o.where("threshold")
		d.errorf(n, p, "threshold must be between 0 and 1 (exclusive), found %g", c.Threshold)
	}
	if o.int("trend", &c.Trend) && (c.Trend < 0 || c.Trend > MaxReportTrend) {
		n, p := o.where("trend")
		d.errorf(n, p, "trend is how many earlier reports the trend shows, from 0 to %d, found %d", MaxReportTrend, c.Trend)
	}
	at := o.at
	if k, ok := o.keys["drift"]; ok {
		at = k
	}
	d.decodeReportDrift(d.object(o.vals["drift"], at, joinPath(o.path, "drift"), reportDriftKeys), &c.Drift)
	if o.strings("columns", &c.Columns) {
		n, p := o.where("columns")
		seen := map[string]bool{}
		switch {
		case len(c.Columns) == 0:
			d.errorf(n, p, "list at least one column, or leave columns out to compare every model input")
		default:
			for _, col := range c.Columns {
				if strings.TrimSpace(col) == "" {
					d.errorf(n, p, "column names must not be empty")
					break
				}
				if seen[col] {
					d.errorf(n, p, "column %q is listed twice", col)
					break
				}
				seen[col] = true
			}
		}
	}
	o.str("title", &c.Title)
	return c
}

// decodeReportLabels reads labels: {column} or {file, id, label}.
func (d *decoder) decodeReportLabels(o *object) *ReportLabels {
	l := &ReportLabels{}
	if !o.ok {
		return l
	}
	for _, key := range reportLabelKeys {
		var dst *string
		switch key {
		case "column":
			dst = &l.Column
		case "file":
			dst = &l.File
		case "id":
			dst = &l.ID
		case "label":
			dst = &l.Label
		}
		if o.str(key, dst) && strings.TrimSpace(*dst) == "" {
			n, p := o.where(key)
			d.errorf(n, p, "must not be empty")
		}
	}
	switch {
	case o.has("column") && o.has("file"):
		d.errorf(o.keys["file"], joinPath(o.path, "file"), "give labels.column (a label column of the scored output) or labels.file (labels joined to the rows by id), not both")
	case o.has("column"):
		for _, key := range []string{"id", "label"} {
			if k, ok := o.keys[key]; ok {
				d.errorf(k, joinPath(o.path, key), "%s goes with labels.file (labels joined by an ID column); with labels.column the label is in the scored output", key)
			}
		}
	case o.has("file"):
		if l.File != "" {
			d.checkLocation(o, "file", l.File, outputLocation)
		}
		if !o.has("id") {
			d.errorf(o.keys["file"], joinPath(o.path, "file"), "labels.file needs id: the ID column the scored output (pass it through in the score step) and the file share")
		}
	case o.unknown == 0 && !o.has("id") && !o.has("label"):
		d.errorf(o.at, o.path, "labels needs column (a label column of the scored output) or file and id (a file of labels joined to the rows by an ID column)")
	default:
		if o.unknown == 0 {
			d.errorf(o.at, o.path, "labels.id and labels.label go with labels.file; add file: <labels file>")
		}
	}
	return l
}

// decodeReportDrift reads drift: {method, thresholds, small_reference, dataset_share}.
func (d *decoder) decodeReportDrift(o *object, c *ReportDrift) {
	if !o.ok {
		return
	}
	if n, p, ok := o.get("method"); ok {
		if n.Kind != yaml.MappingNode {
			d.errorf(n, p, "expected a mapping of feature kinds (numeric, categorical) to drift methods, found %s", describeNode(n))
		} else {
			m := d.object(n, o.keys["method"], p, driftKinds)
			for _, kind := range driftKinds {
				var method string
				if !m.str(kind, &method) {
					continue
				}
				allowed := NumericDriftMethods
				if kind == "categorical" {
					allowed = CategoricalDriftMethods
				}
				if m.oneOf(kind, method, kind+" drift method", allowed) {
					if c.Method == nil {
						c.Method = map[string]string{}
					}
					c.Method[kind] = method
				}
			}
		}
	}
	at := o.at
	if k, ok := o.keys["thresholds"]; ok {
		at = k
	}
	t := d.object(o.vals["thresholds"], at, joinPath(o.path, "thresholds"), driftThresholdKeys)
	pvalue := func(key string, dst *float64) {
		if t.float(key, dst) && (*dst <= 0 || *dst >= 1) {
			n, p := t.where(key)
			d.errorf(n, p, "%s is a p-value threshold (a column drifted when the test's p-value is below it), between 0 and 1 (exclusive), found %g", key, *dst)
		}
	}
	pvalue("ks", &c.Thresholds.KS)
	pvalue("chisquare", &c.Thresholds.ChiSquare)
	if t.float("wasserstein", &c.Thresholds.Wasserstein) && c.Thresholds.Wasserstein <= 0 {
		n, p := t.where("wasserstein")
		d.errorf(n, p, "wasserstein is a distance threshold (in standard deviations of the reference) and must be greater than 0, found %g", c.Thresholds.Wasserstein)
	}
	if t.float("jensenshannon", &c.Thresholds.JensenShannon) && (c.Thresholds.JensenShannon <= 0 || c.Thresholds.JensenShannon > 1) {
		n, p := t.where("jensenshannon")
		d.errorf(n, p, "jensenshannon is a distance threshold in (0, 1], found %g", c.Thresholds.JensenShannon)
	}
	if t.float("psi", &c.Thresholds.PSI) && c.Thresholds.PSI <= 0 {
		n, p := t.where("psi")
		d.errorf(n, p, "psi threshold must be greater than 0, found %g", c.Thresholds.PSI)
	}
	if o.int("small_reference", &c.SmallReference) && c.SmallReference < 1 {
		n, p := o.where("small_reference")
		d.errorf(n, p, "small_reference must be at least 1 (rows), found %d", c.SmallReference)
	}
	if o.float("dataset_share", &c.DatasetShare) && (c.DatasetShare <= 0 || c.DatasetShare > 1) {
		n, p := o.where("dataset_share")
		d.errorf(n, p, "dataset_share is the share of drifted features at or above which the dataset drifted, in (0, 1], found %g", c.DatasetShare)
	}
}
