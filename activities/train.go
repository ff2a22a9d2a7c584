package activities

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ml/kiln/containers"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/pipelines"
)

// Container labels that tie a training container to its step.
const (
	labelWorkflow = "kiln.workflow"
	labelStep     = "kiln.step"
	labelAttempt  = "kiln.attempt"
)

// trainerMetrics is the trainer's metrics.json.
type trainerMetrics struct {
	Train          map[string]float64 `json:"train"`
	Valid          map[string]float64 `json:"valid"`
	Iterations     int                `json:"iterations"`
	TrainerVersion string             `json:"trainer_version"`
}

// Train runs the trainer image under Kiln's container contract (inputs in
// /kiln/in, outputs in /kiln/out, progress lines become heartbeats), then
// assembles the model bundle: the trainer's model file plus the fitted
// transforms, the input schema, the training profile and the lineage. Leftover
// containers of earlier attempts of the same step (a worker killed mid-run)
// are removed first. The step is cached (see cache.go) by its configuration,
// the prepared artifacts' address and the trainer image's identity.
func (a *Activities) Train(ctx context.Context, in StepInput) (StepOutput, error) {
	cfg, prep := in.Step.Train, in.Inputs.Prepared
	if cfg == nil || prep == nil {
		return StepOutput{}, invalid("step %q needs a train config and an upstream preprocess step", in.Step.Name)
	}
	ctr := in.Step.Container
	if ctr == nil {
		def := pipelines.DefaultContainer()
		ctr = &def
	}
	rt, err := a.runtime(ctr.Runtime)
	if err != nil {
		return StepOutput{}, err
	}
	image, err := rt.Identify(ctx, ctr.Image)
	if err != nil {
		return StepOutput{}, fmt.Errorf("identifying the trainer image %s (%s runtime): %w", ctr.Image, rt.Name(), err)
	}
	address, err := preparedAddress(prep)
	if err != nil {
		return StepOutput{}, err
	}
	key, err := stepKey(pipelines.StepTrain, trainImplVersion, cfg, map[string]string{
		"prepared": address, "image_id": image, "runtime": rt.Name(),
	}, in)
	if err != nil {
		return StepOutput{}, err
	}
	return a.cached(ctx, in, key, func() (StepOutput, error) { return a.train(ctx, in, cfg, prep, ctr, rt) })
}

// train does the work of Train with the runtime rt.
func (a *Activities) train(ctx context.Context, in StepInput, cfg *pipelines.TrainConfig, prep *PreparedRef, ctr *pipelines.Container, rt containers.Runtime) (StepOutput, error) {
	log := a.logger(ctx)
	labels := map[string]string{labelWorkflow: in.Run.WorkflowID, labelStep: in.Step.Name}
	if n, err := rt.Cleanup(ctx, labels); err != nil {
		log.Warn("removing leftover training containers", "error", err)
	} else if n > 0 {
		log.Info("removed leftover training containers of an earlier attempt", "count", n)
	}

	work, err := a.Store.TempDir("train")
	if err != nil {
		return StepOutput{}, err
	}
	defer os.RemoveAll(work)
	inDir, outDir := filepath.Join(work, "in"), filepath.Join(work, "out")
	for _, d := range []string{inDir, outDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return StepOutput{}, err
		}
	}
	for name, uri := range map[string]string{"train.parquet": prep.TrainURI, "valid.parquet": prep.ValidURI} {
		src, err := a.Store.Local(ctx, uri)
		if err != nil {
			return StepOutput{}, err
		}
		if err := linkOrCopy(src, filepath.Join(inDir, name)); err != nil {
			return StepOutput{}, fmt.Errorf("staging %s: %w", name, err)
		}
	}
	if err := a.stageCSV(ctx, rt, ctr.Image, prep, inDir); err != nil {
		return StepOutput{}, err
	}
	seed := int64(42)
	params := map[string]any{"algorithm": cfg.Algorithm, "seed": seed, "params": cfg.Params}
	if err := writeJSON(filepath.Join(inDir, "params.json"), params); err != nil {
		return StepOutput{}, err
	}
	if err := writeJSON(filepath.Join(inDir, "schema.json"), trainerSchema(prep)); err != nil {
		return StepOutput{}, err
	}

	logPath := filepath.Join(work, "train.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return StepOutput{}, err
	}
	defer logFile.Close()

	pl := startPulse(ctx, Progress{Msg: "starting " + ctr.Image})
	defer pl.stop()
	attempt := int32(1)
	if activity.IsActivity(ctx) {
		attempt = activity.GetInfo(ctx).Attempt
	}
	runLabels := map[string]string{labelWorkflow: in.Run.WorkflowID, labelStep: in.Step.Name, labelAttempt: strconv.Itoa(int(attempt))}
	res, err := rt.Run(ctx, containers.RunSpec{
		Image: ctr.Image, InputDir: inDir, OutputDir: outDir,
		CPUs: ctr.CPUs, MemoryBytes: int64(ctr.Memory), Timeout: ctr.Timeout.D(), GPUs: ctr.GPUs,
		Labels:   runLabels,
		Progress: func(p containers.Progress) { pl.set(Progress{Pct: p.Pct, Msg: p.Msg}) },
		Log:      io.MultiWriter(logFile, pl),
	})
	logURI, logErr := a.publishLog(ctx, logPath, in)
	if logErr != nil {
		log.Warn("keeping training log", "error", logErr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return StepOutput{}, ctx.Err()
		}
		err = fmt.Errorf("training in %s (%s runtime; log %s): %w", ctr.Image, rt.Name(), logURI, err)
		if errors.Is(err, containers.ErrOutOfMemory) {
			// The same limit would kill a retry again.
			return StepOutput{}, temporal.NewNonRetryableApplicationError(err.Error()+" (raise container.memory)", ErrTypeOutOfMemory, err)
		}
		if re := (*containers.RunError)(nil); errors.As(err, &re) && re.ExitCode == containers.ExitBadInput {
			// The contract's bad-input code: the same input fails again.
			return StepOutput{}, invalid("%v (exit code %d is the trainer contract's bad input: not retried)", err, containers.ExitBadInput)
		}
		return StepOutput{}, err
	}

	var tm trainerMetrics
	if err := readJSON(filepath.Join(outDir, "metrics.json"), &tm); err != nil {
		return StepOutput{}, fmt.Errorf("trainer output: %w", err)
	}
	modelJSON, err := os.ReadFile(filepath.Join(outDir, "model.json"))
	if err != nil {
		return StepOutput{}, fmt.Errorf("trainer output: %w", err)
	}
	var fitted transform.Fitted
	if err := a.readURIJSON(ctx, prep.TransformsURI, &fitted); err != nil {
		return StepOutput{}, err
	}
	var profile dataset.Profile
	if err := a.readURIJSON(ctx, prep.ProfileURI, &profile); err != nil {
		return StepOutput{}, err
	}
	man := model.Manifest{
		FormatVersion: 1,
		Task:          prep.Task,
		Target:        prep.Target,
		Classes:       prep.Classes,
		Inputs:        fitted.Inputs,
		Transforms:    &fitted,
		Estimator:     model.Estimator{Type: estimatorType(cfg.Algorithm, prep.Task), File: "model.json"},
		Output:        outputOf(prep.Task),
		Profile:       &profile,
		Metrics:       prefixed(tm.Valid, "valid_", prefixed(tm.Train, "train_", nil)),
		Lineage: model.Lineage{
			Pipeline: in.Run.Pipeline, RunID: in.Run.WorkflowID, SpecHash: in.Run.SpecHash,
			DatasetHash: prep.DatasetSHA256, Image: res.ImageID, Runtime: res.Runtime,
			TrainerVersion: tm.TrainerVersion, Params: params, CreatedBy: in.Run.CreatedBy,
			CreatedAt: time.Now().UTC(),
		},
	}
	bundleTmp := filepath.Join(work, "bundle")
	if err := model.WriteBundle(bundleTmp, man, map[string][]byte{"model.json": modelJSON}); err != nil {
		return StepOutput{}, err
	}
	if _, err := model.Load(bundleTmp); err != nil {
		return StepOutput{}, fmt.Errorf("the trainer's model does not load: %w", err)
	}
	sum, err := HashDir(bundleTmp)
	if err != nil {
		return StepOutput{}, err
	}
	uri, err := a.Store.Publish(ctx, bundleTmp, "bundles/"+sum)
	if err != nil {
		return StepOutput{}, err
	}
	ref := &BundleRef{
		URI: uri, SHA256: sum, Runtime: res.Runtime, Image: res.ImageID,
		TrainerVersion: tm.TrainerVersion, Params: params, TrainMetrics: man.Metrics,
	}
	summary := fmt.Sprintf("%s on %s (%s runtime) in %s", cfg.Algorithm, ctr.Image, res.Runtime, res.Duration.Round(time.Millisecond))
	if v, ok := tm.Valid["auc"]; ok {
		summary += fmt.Sprintf(", valid AUC %.4f", v)
	} else if v, ok := tm.Valid["accuracy"]; ok {
		summary += fmt.Sprintf(", valid accuracy %.4f", v)
	}
	return StepOutput{Artifacts: Artifacts{Bundle: ref}, Summary: summary}, nil
}

// ErrTypeOutOfMemory is the Temporal application error type of a train
// step whose trainer was killed for exceeding its memory limit; such an
// error is not retried.
const ErrTypeOutOfMemory = "OutOfMemory"

// stageCSV writes train.csv and valid.csv next to the Parquet inputs in
// inDir when the trainer image asks for them (label io.kiln.inputs=csv).
func (a *Activities) stageCSV(ctx context.Context, rt containers.Runtime, image string, prep *PreparedRef, inDir string) error {
	labels, err := rt.Labels(ctx, image)
	if err != nil {
		return fmt.Errorf("reading the labels of the trainer image %s: %w", image, err)
	}
	if !wantsCSV(labels) {
		return nil
	}
	for _, name := range []string{"train", "valid"} {
		if err := writeInputCSV(ctx, filepath.Join(inDir, name+".parquet"), filepath.Join(inDir, name+".csv"), csvColumns(prep)); err != nil {
			return fmt.Errorf("staging %s.csv for %s: %w", name, image, err)
		}
	}
	return nil
}

// runtime picks the container runtime a step asked for.
func (a *Activities) runtime(name string) (containers.Runtime, error) {
	switch name {
	case "", "auto":
		if a.Docker != nil {
			return a.Docker, nil
		}
		if a.Process != nil {
			return a.Process, nil
		}
	case "docker":
		if a.Docker != nil {
			return a.Docker, nil
		}
		return nil, invalid("the step asks for runtime docker but this worker reaches no Docker engine")
	case "process":
		if a.Process != nil {
			return a.Process, nil
		}
	default:
		return nil, invalid("unknown container runtime %q (auto, docker or process)", name)
	}
	return nil, invalid("this worker has no container runtime for %q", name)
}

// publishLog stores a step's log as an artifact logs/<workflow>/<step>.log.
func (a *Activities) publishLog(ctx context.Context, path string, in StepInput) (string, error) {
	rel := fmt.Sprintf("logs/%s/%s-%d.log", sanitize(in.Run.WorkflowID), in.Step.Name, time.Now().UnixNano())
	tmp, err := a.Store.TempDir("log")
	if err != nil {
		return "", err
	}
	dst := filepath.Join(tmp, "log")
	if err := linkOrCopy(path, dst); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	uri, err := a.Store.Publish(ctx, dst, rel)
	os.RemoveAll(tmp)
	return uri, err
}

func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}

func prefixed(m map[string]float64, prefix string, into map[string]float64) map[string]float64 {
	if into == nil {
		into = map[string]float64{}
	}
	for k, v := range m {
		into[prefix+k] = v
	}
	return into
}

func (a *Activities) readURIJSON(ctx context.Context, uri string, v any) error {
	p, err := a.Store.Local(ctx, uri)
	if err != nil {
		return err
	}
	return readJSON(p, v)
}

// linkOrCopy hard-links src to dst, copying when a link is impossible.
func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// HashDir hashes a flat directory's file names and contents in name order:
// the content address of a model bundle (bundles/<hash>).
func HashDir(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	files := make(map[string][]byte, len(entries))
	for _, e := range entries {
		if e.Name() == artifact.CommitMarker {
			continue // an object store's commit of the directory, not content
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return "", err
		}
		files[e.Name()] = b
	}
	return model.HashFiles(files), nil
}

// estimatorType maps a train algorithm to the estimator type of the model
// file the reference trainer writes: gbdt writes XGBoost JSON, ridge Kiln's
// linear JSON, logistic Kiln's logistic JSON.
func estimatorType(algorithm, task string) string {
	switch algorithm {
	case "logistic":
		if task == model.TaskMulticlass {
			return model.EstimatorMultinomial
		}
	case "gbdt":
		return model.EstimatorXGBoost
	case "ridge":
		return model.EstimatorLinear
	}
	return algorithm
}

// outputOf is the bundle output of a task: a value for regression, a
// probability for binary classification, class probabilities for
// multiclass.
func outputOf(task string) string {
	switch task {
	case model.TaskRegression:
		return model.OutputValue
	case model.TaskMulticlass:
		return model.OutputProbabilities
	}
	return model.OutputProbability
}

// trainerSchema is the trainer's schema.json for prepared data: features,
// target and task, and a multiclass task's classes.
func trainerSchema(prep *PreparedRef) map[string]any {
	s := map[string]any{"features": prep.Features, "target": prep.Target, "task": prep.Task}
	if len(prep.Classes) > 0 {
		s["classes"] = prep.Classes
	}
	return s
}
