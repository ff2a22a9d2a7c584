package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/drift"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/serving/logship"
)

// StartMonitor starts monitor/<model>, or hands the running monitor the new
// request (signal-with-start), so there is one monitor per model.
func (a *Activities) StartMonitor(ctx context.Context, in StartMonitorInput) (StartMonitorOutput, error) {
	req := in.Monitor
	id := MonitorID(req.Model)
	run, err := a.Temporal.SignalWithStartWorkflow(ctx, id, SignalMonitorConfig, req, client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             a.TaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(AttrModel.ValueSet(req.Model), AttrPipeline.ValueSet(req.Pipeline)),
		StaticSummary:         fmt.Sprintf("drift monitor of %s@%s", req.Model, req.Alias),
	}, WorkflowMonitor, req)
	if err != nil {
		return StartMonitorOutput{}, fmt.Errorf("starting %s: %w", id, err)
	}
	return StartMonitorOutput{WorkflowID: id, RunID: run.GetRunID()}, nil
}

// TriggerRetrain signals retrain/<model>, starting it if it is not running.
// Because it is one signal-with-start, two drift checks can never start two
// retrains at once.
func (a *Activities) TriggerRetrain(ctx context.Context, in TriggerRetrainInput) (TriggerRetrainOutput, error) {
	id := RetrainID(in.Model)
	kind := in.Kind
	if kind == "" {
		kind = TriggerDrift
	}
	run, err := a.Temporal.SignalWithStartWorkflow(ctx, id, SignalDrift, in.Reason, client.StartWorkflowOptions{
		ID:                    id,
		TaskQueue:             a.TaskQueue,
		WorkflowIDReusePolicy: enums.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(AttrModel.ValueSet(in.Model), AttrPipeline.ValueSet(in.Pipeline), AttrTrigger.ValueSet(kind)),
		StaticSummary:         "retrain " + in.Model + ": " + in.Reason,
	}, WorkflowRetrain, in)
	if err != nil {
		return TriggerRetrainOutput{}, fmt.Errorf("starting %s: %w", id, err)
	}
	if in.Decision > 0 && a.Registry != nil {
		if err := a.Registry.SetDecisionWorkflow(ctx, in.Decision, id+"/"+run.GetRunID()); err != nil {
			a.logger(ctx).Warn("recording the retrain of a decision", "decision", in.Decision, "error", err)
		}
	}
	return TriggerRetrainOutput{WorkflowID: id, RunID: run.GetRunID()}, nil
}

// CheckDrift compares the requests served for a model in the last window with
// the training profile of the version its alias points to: PSI per feature.
func (a *Activities) CheckDrift(ctx context.Context, in DriftInput) (DriftOutput, error) {
	v, err := a.Registry.Resolve(ctx, in.Model+"@"+in.Alias)
	if errors.Is(err, registry.ErrNotFound) {
		return DriftOutput{Note: fmt.Sprintf("%s@%s does not exist", in.Model, in.Alias)}, nil
	}
	if err != nil {
		return DriftOutput{}, err
	}
	m, err := a.loadBundle(ctx, v.BundleURI)
	if err != nil {
		return DriftOutput{}, err
	}
	prof := m.Manifest.Profile
	if prof == nil {
		return DriftOutput{Version: v.Version, Note: "the bundle has no training profile"}, nil
	}
	files, err := a.requestLogFiles(ctx, in.Model, time.Now().Add(-in.Window))
	if err != nil {
		return DriftOutput{}, err
	}
	cols := map[string]drift.Column{}
	rows := 0
	pl := startPulse(ctx, Progress{Msg: fmt.Sprintf("reading %d request logs", len(files))})
	defer pl.stop()
	for _, f := range files {
		n, err := appendServed(ctx, f, prof, cols)
		if err != nil {
			a.logger(ctx).Warn("skipping request log", "file", f, "error", err)
			continue
		}
		rows += n
		pl.set(Progress{Msg: fmt.Sprintf("read %d served rows", rows)})
	}
	rep := drift.Compare(*prof, cols, in.PSIThreshold, in.MinRows)
	out := DriftOutput{Version: v.Version, Rows: rows, Drifted: rep.Drifted, MaxPSI: rep.MaxPSI, Features: rep.Features}
	if rows < in.MinRows {
		out.Note = fmt.Sprintf("%d served rows in the last %s, need %d to judge drift", rows, in.Window, in.MinRows)
	}
	return out, nil
}

// appendServed adds one request log's input columns to cols.
func appendServed(ctx context.Context, path string, prof *dataset.Profile, cols map[string]drift.Column) (int, error) {
	r, err := dataset.OpenParquet(path)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	schema := r.Schema()
	var names []string
	for _, c := range prof.Columns {
		if schema.Index(c.Name) >= 0 {
			names = append(names, c.Name)
		}
	}
	rec, err := r.ReadAll(ctx, names)
	if err != nil {
		return 0, err
	}
	defer rec.Release()
	for _, c := range prof.Columns {
		if schema.Index(c.Name) < 0 {
			continue
		}
		col := cols[c.Name]
		switch c.Type {
		case dataset.Float64, dataset.Int64:
			vals, err := dataset.Float64s(rec, c.Name)
			if err != nil {
				return 0, err
			}
			col.Floats = append(col.Floats, vals...)
		default:
			vals, valid, err := dataset.Strings(rec, c.Name)
			if err != nil {
				return 0, err
			}
			col.Strings = append(col.Strings, vals...)
			col.Valid = append(col.Valid, valid...)
		}
		cols[c.Name] = col
	}
	return int(rec.NumRows()), nil
}

// requestLogFiles lists a model's request log files written at or after
// since, those the model servers shipped to an object store included
// (logship.Files).
func (a *Activities) requestLogFiles(ctx context.Context, model string, since time.Time) ([]string, error) {
	return logship.Files(ctx, a.Store, a.RequestLogDir, model, since)
}
