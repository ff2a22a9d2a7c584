package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kiln-ml/kiln/internal/canary"
	"github.com/kiln-ml/kiln/internal/experiment"
	"github.com/kiln-ml/kiln/internal/labels"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
)

// CanaryOutcomesInput asks for the live metric of a canary's arms: the
// labels joined to the predictions each version served since Since.
type CanaryOutcomesInput struct {
	Model string    `json:"model"`
	Since time.Time `json:"since"`
	// Metric is canary.LiveAccuracy or canary.LiveAbsError.
	Metric   string  `json:"metric"`
	Versions []int64 `json:"versions"`
}

// VersionOutcomes are one version's labelled predictions.
type VersionOutcomes struct {
	Version  int64           `json:"version"`
	Outcomes canary.Outcomes `json:"outcomes"`
}

// CanaryOutcomesOutput holds the outcomes per asked version (in the order
// asked) and the label counts of the join.
type CanaryOutcomesOutput struct {
	ByVersion []VersionOutcomes `json:"by_version"`
	Labels    labels.Counts     `json:"labels"`
}

// CanaryOutcomes joins the labels pushed for a model (kiln labels push, or
// a polled source) to the predictions its servers logged since in.Since,
// by prediction ID, and sums each version's outcomes for the canary's live
// metric. Request logs are read from the worker's request log directory.
func (a *Activities) CanaryOutcomes(ctx context.Context, in CanaryOutcomesInput) (CanaryOutcomesOutput, error) {
	out := CanaryOutcomesOutput{}
	for _, v := range in.Versions {
		out.ByVersion = append(out.ByVersion, VersionOutcomes{Version: v})
	}
	if a.Registry == nil || a.RequestLogDir == "" {
		return out, invalid("the canary's live metric needs the registry and the request log directory (kiln worker --home)")
	}
	metric := experiment.MetricAccuracy
	if in.Metric == canary.LiveAbsError {
		metric = experiment.MetricAbsError
	}
	batches, err := a.Registry.LabelBatches(ctx, in.Model, in.Since)
	if errors.Is(err, registry.ErrNotFound) || (err == nil && len(batches) == 0) {
		return out, nil
	}
	if err != nil {
		return out, err
	}
	files, err := a.batchFiles(ctx, batches)
	if err != nil {
		return out, err
	}
	logs, err := a.requestLogFiles(ctx, in.Model, in.Since)
	if err != nil || len(logs) == 0 {
		return out, err
	}
	j, err := labels.Join(ctx, labels.JoinInput{RequestLogs: logs, LabelFiles: files, From: in.Since})
	if err != nil {
		return out, fmt.Errorf("joining labels for the canary of %s: %w", in.Model, err)
	}
	out.Labels = j.Counts
	class := false
	if len(in.Versions) > 0 {
		if class, err = a.multiclassVersion(ctx, in.Model, in.Versions[0]); err != nil {
			return out, err
		}
	}
	for _, p := range j.Pairs {
		for i := range out.ByVersion {
			if out.ByVersion[i].Version != p.Version {
				continue
			}
			y, ok := experiment.Outcome(metric, experiment.Observation{Prediction: p.Prediction, Label: p.Label, Class: class})
			if ok {
				o := &out.ByVersion[i].Outcomes
				o.N++
				o.Sum += y
				o.SumSq += y * y
			}
		}
	}
	return out, nil
}

// multiclassVersion reports whether version v of model is a multiclass
// model, whose logged predictions and labels are class indexes; false when
// its bundle's manifest cannot be read on this worker.
func (a *Activities) multiclassVersion(ctx context.Context, name string, v int64) (bool, error) {
	ver, err := a.Registry.Get(ctx, name, v)
	if err != nil {
		return false, fmt.Errorf("canary outcomes: %s:%d: %w", name, v, err)
	}
	dir, err := a.Store.Local(ctx, ver.BundleURI)
	if err != nil {
		return false, nil
	}
	classes, err := model.ReadClasses(dir)
	return err == nil && classes != nil, nil
}
