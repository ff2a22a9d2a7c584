package pipelines

import (
	"fmt"
	"strings"

	"github.com/kiln-ml/kiln/internal/gate"
	"github.com/kiln-ml/kiln/internal/metrics"
)

// Significance defaults (see Significance).
const (
	DefaultAlpha     = 0.05
	DefaultResamples = 1000
	DefaultSigSeed   = 42
)

var (
	significanceKeys  = []string{"test", "metric", "alpha", "resamples", "seed"}
	significanceTests = []string{metrics.TestDeLong, metrics.TestBootstrap}
)

// decodeSignificance reads evaluate's significance mapping. Whether the
// metric exists for the step's task is checked with the graph (checkTasks).
func (d *decoder) decodeSignificance(o *object, info *stepInfo) *Significance {
	c := &Significance{Alpha: DefaultAlpha, Resamples: DefaultResamples, Seed: DefaultSigSeed}
	o.require("test")
	if o.str("test", &c.Test) && !o.oneOf("test", c.Test, "significance test", significanceTests) {
		c.Test = ""
	}
	if o.str("metric", &c.Metric) {
		n, p := o.where("metric")
		switch {
		case !contains(gate.KnownMetrics, c.Metric) || c.Metric == "positive_rate":
			d.errorf(n, p, "unknown metric %q%s (known metrics: %s)", c.Metric, didYouMean(c.Metric, gate.KnownMetrics), quoteList(gate.KnownMetrics))
		case c.Test == metrics.TestDeLong && c.Metric != "auc":
			d.errorf(n, p, "DeLong's test compares AUCs, not %s; use metric: auc, or test: bootstrap for %s", c.Metric, c.Metric)
		default:
			info.sigMetricAt, info.sigMetricPath = n, p
		}
	} else if c.Test == metrics.TestDeLong {
		c.Metric = "auc"
		info.sigMetricAt, info.sigMetricPath = o.where("test")
	} else if c.Test == metrics.TestBootstrap {
		d.errorf(o.at, o.path, "missing required field %q: the bootstrap needs the metric to compare, e.g. metric: auc", "metric")
	}
	if o.float("alpha", &c.Alpha) && (c.Alpha <= 0 || c.Alpha > 0.5) {
		n, p := o.where("alpha")
		d.errorf(n, p, "alpha must be greater than 0 and at most 0.5, found %g (0.05 is usual)", c.Alpha)
	}
	if o.int("resamples", &c.Resamples) {
		n, p := o.where("resamples")
		switch {
		case c.Test == metrics.TestDeLong:
			d.errorf(n, p, "resamples only applies to test: bootstrap; DeLong's test does not resample")
		case c.Resamples < 100 || c.Resamples > 100_000:
			d.errorf(n, p, "resamples must be between 100 and 100000, found %d", c.Resamples)
		}
	}
	if o.int64("seed", &c.Seed) && c.Test == metrics.TestDeLong {
		n, p := o.where("seed")
		d.errorf(n, p, "seed only applies to test: bootstrap; DeLong's test is not random")
	}
	if c.Test == metrics.TestDeLong {
		c.Resamples, c.Seed = 0, 0
	}
	return c
}

// algorithmTasks are the tasks each algorithm can do.
var algorithmTasks = map[string][]string{
	"logistic": {"binary", "multiclass"},
	"ridge":    {"regression"},
	"gbdt":     {"binary", "multiclass", "regression"},
}

// upstreamPreprocess is the nearest preprocess step upstream of step i, and
// its name (nil when there is none).
func upstreamPreprocess(spec *Spec, i int, edges [][]int) (*PreprocessConfig, string) {
	for _, level := range levels(i, edges) {
		for _, j := range level {
			if p := spec.Steps[j].Preprocess; p != nil {
				return p, spec.Steps[j].Name
			}
		}
	}
	return nil, ""
}

// checkTasks checks each train step's algorithm, and each evaluate step's
// gate and significance metric, against the task of its nearest upstream
// preprocess step: logistic regression cannot fit a regression, a
// regression has no AUC, a classifier no RMSE.
func (d *decoder) checkTasks(spec *Spec, infos []*stepInfo, edges [][]int, badNeeds []bool) {
	for i, info := range infos {
		tr := spec.Steps[i].Train
		if tr == nil || badNeeds[i] || info.algorithmAt == nil {
			continue
		}
		prep, name := upstreamPreprocess(spec, i, edges)
		if prep == nil || !contains(tasks, prep.Task) {
			continue
		}
		if fit := algorithmTasks[tr.Algorithm]; !contains(fit, prep.Task) {
			var can []string
			for _, a := range algorithms {
				if contains(algorithmTasks[a], prep.Task) {
					can = append(can, a)
				}
			}
			d.errorf(info.algorithmAt, info.algorithmPath, "algorithm %q cannot do task %s (step %q sets task: %s): use %s, or task: %s",
				tr.Algorithm, prep.Task, name, prep.Task, strings.Join(can, " or "), strings.Join(fit, " or "))
		}
	}
	for i, info := range infos {
		ev := spec.Steps[i].Evaluate
		if ev == nil || badNeeds[i] || (info.gate == nil && info.sigMetricAt == nil) {
			continue
		}
		prep, _ := upstreamPreprocess(spec, i, edges)
		if prep == nil || !contains(tasks, prep.Task) {
			continue // reported elsewhere
		}
		names := metrics.Names(prep.Task)
		wrongTask := func(metric string) string {
			return fmt.Sprintf("metric %q is not computed for task %s (%s metrics: %s)", metric, prep.Task, prep.Task, quoteList(names))
		}
		if s := info.gate; s != nil {
			if expr, err := gate.Parse(s.str); err == nil {
				for _, r := range expr.Refs() {
					if !contains(names, r.Metric) {
						d.exprError(*s, info.gatePath, r.Pos, "invalid gate: "+wrongTask(r.Name))
					}
				}
			}
		}
		if sig := ev.Significance; sig != nil && info.sigMetricAt != nil && prep.Task == metrics.TaskMulticlass {
			d.errorf(info.sigMetricAt, info.sigMetricPath, "significance: no test compares multiclass models yet; compare with the champion in the gate instead (e.g. gate: accuracy >= champion.accuracy)")
		} else if sig != nil && info.sigMetricAt != nil && !contains(names, sig.Metric) {
			msg := "significance: " + wrongTask(sig.Metric)
			if sig.Test == metrics.TestDeLong {
				msg = fmt.Sprintf("significance: DeLong's test compares AUCs, which task %s does not have; use test: bootstrap with one of %s", prep.Task, quoteList(names))
			}
			d.errorf(info.sigMetricAt, info.sigMetricPath, "%s", msg)
		}
	}
}
