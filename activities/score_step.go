package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"go.temporal.io/sdk/activity"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/pipelines"
)

// The fanned-out score step: scorer.Plan → ScoreShard (one activity per shard,
// run by workflows.ScoreWorkflow in chunks of child workflows) →
// ScoreCommit, or ScoreAbort when a shard fails. See score_shard.go for the
// exactly-once design.

// scoreFanoutImplVersion is the score step's implementation version on the
// fan-out path (a directory output, not a file): part of its cache key.
const scoreFanoutImplVersion = 2

// ScorePlanOutput is the plan of a score step, or its cached result.
type ScorePlanOutput struct {
	// Cached is the step's result when the cache (or the resumed run) has
	// it; nothing else is set then.
	Cached *StepOutput `json:"cached,omitempty"`
	// Staging is the plan's staging directory; Key the step's cache key.
	Staging string `json:"staging,omitempty"`
	Key     string `json:"key,omitempty"`
	Shards  int    `json:"shards,omitempty"`
	Parts   int    `json:"parts,omitempty"`
	Files   int    `json:"files,omitempty"`
	Rows    int64  `json:"rows,omitempty"`
	// Queue, when set, is the task queue of the one worker whose disk
	// holds the staging directory (Activities.HostQueue): with an object
	// store as the artifact store, workers share no directory, so the
	// shards, the commit and the abort run where the plan was made.
	Queue string `json:"queue,omitempty"`
}

// scorer.Plan plans a score step: it resolves the input (the spec's input — a
// file, a directory, a glob or a prefix — or the ingested dataset), computes
// the cache key (returning the cached result when there is one), checks
// every file against the model and writes the plan of shards into the
// staging directory of the output.
func (a *Activities) ScorePlan(ctx context.Context, in StepInput) (ScorePlanOutput, error) {
	cfg := in.Step.Score
	if cfg == nil {
		return ScorePlanOutput{}, invalid("step %q has no score config", in.Step.Name)
	}
	mref, err := a.scoreModel(ctx, in)
	if err != nil {
		return ScorePlanOutput{}, err
	}
	inputs := map[string]string{"model": fmt.Sprintf("%s:%d", mref.Name, mref.Version)}
	pl := startPulse(ctx, Progress{Msg: "resolving the input"})
	defer pl.stop()
	var files []string
	switch {
	case cfg.Input == "":
		if in.Inputs.Dataset == nil {
			return ScorePlanOutput{}, invalid("step %q: no input given and no ingested dataset upstream", in.Step.Name)
		}
		p, err := a.Store.Local(ctx, in.Inputs.Dataset.URI)
		if err != nil {
			return ScorePlanOutput{}, invalid("score input: %v", err)
		}
		files = []string{p}
		inputs["input_sha256"] = in.Inputs.Dataset.SHA256
	case artifact.Remote(cfg.Input):
		var err error
		if files, err = a.stageRemoteInput(ctx, pl, cfg.Input); err != nil {
			return ScorePlanOutput{}, err
		}
	default:
		input := cfg.Input
		if strings.HasPrefix(input, "file://") {
			p, err := a.specPath(input, in.Run.SpecDir)
			if err != nil {
				return ScorePlanOutput{}, invalid("score input: %v", err)
			}
			input = p
		}
		var err error
		if files, err = scorer.ResolveInputs(input, in.Run.SpecDir); err != nil {
			return ScorePlanOutput{}, invalid("step %q: input: %v", in.Step.Name, err)
		}
		if err := a.confineAll(files); err != nil {
			return ScorePlanOutput{}, err
		}
	}
	pl.set(Progress{Msg: fmt.Sprintf("hashing %d input file(s)", len(files))})
	if inputs["input_sha256"] == "" {
		h := sha256.New()
		for _, f := range files {
			sum, err := dataset.HashFile(f)
			if err != nil {
				return ScorePlanOutput{}, badInput(ctx, err)
			}
			fmt.Fprintf(h, "%s %s\n", sum, filepath.Base(f))
		}
		inputs["input_sha256"] = hex.EncodeToString(h.Sum(nil))
	}
	key, err := stepKey(pipelines.StepScore, scoreFanoutImplVersion, cfg, inputs, in)
	if err != nil {
		return ScorePlanOutput{}, err
	}
	if out, ok := a.reuse(ctx, in, key); ok {
		return ScorePlanOutput{Cached: &out}, nil
	}
	if !in.NoCache {
		if out, err := a.lookup(ctx, key); err == nil {
			a.logger(ctx).Info("step cache hit", "step", in.Step.Name, "key", key)
			out.CacheKey, out.Cached, out.Reused = key, true, false
			return ScorePlanOutput{Cached: &out}, nil
		}
	}
	m, err := a.loadBundle(ctx, mref.BundleURI)
	if err != nil {
		return ScorePlanOutput{}, err
	}
	out, err := a.scoreOutputDir(in)
	if err != nil {
		return ScorePlanOutput{}, err
	}
	bundle, err := a.Store.Local(ctx, mref.BundleURI)
	if err != nil {
		return ScorePlanOutput{}, invalid("model bundle: %v", err)
	}
	pl.set(Progress{Msg: fmt.Sprintf("planning %d input file(s)", len(files))})
	p, err := scorer.NewPlan(m, files, out, scorer.PlanOptions{
		Model: mref.Name, Version: mref.Version, BundleDir: bundle, Passthrough: cfg.Passthrough,
		ShardRows: cfg.ShardRows, MaxShards: cfg.MaxShards, KeyExtra: key,
	})
	if err != nil {
		return ScorePlanOutput{}, scoreError(ctx, err)
	}
	po := ScorePlanOutput{Staging: p.Staging, Key: key, Shards: len(p.Shards), Parts: p.Parts, Files: len(p.Files), Rows: p.Rows}
	if a.Store.RemoteURL() != "" {
		po.Queue = a.HostQueue
	}
	return po, nil
}

// scoreModel is the model a score step scores with: the registry reference
// of its with.model, or the version an upstream register step registered.
func (a *Activities) scoreModel(ctx context.Context, in StepInput) (*ModelRef, error) {
	ref := in.Step.Score.Model
	if ref == "" {
		if in.Inputs.Model == nil {
			return nil, invalid("step %q: no model: set with.model (e.g. churn@production) or add a register step upstream", in.Step.Name)
		}
		return in.Inputs.Model, nil
	}
	v, err := a.Registry.Resolve(ctx, ref)
	if errors.Is(err, registry.ErrNotFound) || errors.Is(err, registry.ErrInvalid) || errors.Is(err, registry.ErrRejected) {
		return nil, invalid("step %q: model %s: %v", in.Step.Name, ref, err)
	}
	if err != nil {
		return nil, err
	}
	return &ModelRef{Name: v.Model, Version: v.Version, BundleURI: v.BundleURI}, nil
}

// scoreOutputDir is the output directory of a fanned-out score step: the
// configured output, or scores/<run>/<step> in the artifact store.
func (a *Activities) scoreOutputDir(in StepInput) (string, error) {
	if o := in.Step.Score.Output; o != "" {
		p, err := a.specPath(o, in.Run.SpecDir)
		if err != nil {
			return "", invalid("score output: %v", err)
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
			return "", fmt.Errorf("creating the parent of %s: %w", abs, err)
		}
		return abs, nil
	}
	p := a.Store.LocalPath(scoreOutputRel(in))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("creating the parent of %s: %w", p, err)
	}
	return p, nil
}

// shownURI is an artifact URI as summaries show it: a local path, or an
// object URL without its options.
func shownURI(uri string) string {
	if artifact.Remote(uri) {
		return artifact.Redact(uri)
	}
	if p, err := artifact.Path(uri, ""); err == nil {
		return p
	}
	return uri
}

// scoreOutputRel is where a fanned-out score step without an output
// writes in the artifact store.
func scoreOutputRel(in StepInput) string {
	return fmt.Sprintf("scores/%s/%s", sanitize(in.Run.WorkflowID), sanitize(in.Step.Name))
}

// ScoreShardInput names one shard of a planned score step.
type ScoreShardInput struct {
	// Step names the step (for logs and errors).
	Step    string `json:"step"`
	Staging string `json:"staging"`
	Shard   int    `json:"shard"`
}

// ScoreShard scores one shard of a plan (see ScorePlan.RunShard): parts
// already complete are skipped, so a retry after a killed worker resumes
// from the last completed part. It heartbeats the parts and rows done.
func (a *Activities) ScoreShard(ctx context.Context, in ScoreShardInput) (scorer.ShardResult, error) {
	p, err := scorer.LoadPlan(in.Staging)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return scorer.ShardResult{}, invalid("step %q: no score plan in %s (was the job committed or abandoned?)", in.Step, in.Staging)
		}
		return scorer.ShardResult{}, err
	}
	m, err := a.loadBundle(ctx, artifact.FileURI(p.BundleDir))
	if err != nil {
		return scorer.ShardResult{}, err
	}
	pl := startPulse(ctx, Progress{Msg: fmt.Sprintf("shard %d: starting", in.Shard)})
	defer pl.stop()
	if activity.IsActivity(ctx) {
		if info := activity.GetInfo(ctx); info.Attempt > 1 {
			a.logger(ctx).Info("score shard retried: resuming from its completed parts", "step", in.Step, "shard", in.Shard, "attempt", info.Attempt)
		}
	}
	res, err := p.RunShard(ctx, m, in.Shard, func(sp scorer.ShardProgress) {
		pl.set(Progress{
			Pct: 100 * float64(sp.RowsDone) / float64(max(sp.Rows, 1)),
			Msg: fmt.Sprintf("shard %d: %d/%d parts, %d/%d rows (%d parts already done)", in.Shard, sp.PartsDone, sp.Parts, sp.RowsDone, sp.Rows, sp.Skipped),
		})
	})
	if err != nil {
		return res, scoreError(ctx, err)
	}
	return res, nil
}

// ScoreCommitInput commits a planned score step.
type ScoreCommitInput struct {
	Step    StepInput `json:"step"`
	Staging string    `json:"staging"`
	Key     string    `json:"key"`
}

// ScoreCommit publishes a score step's output (ScorePlan.Commit), stores
// the result in the step cache and returns it. A retried commit returns the
// committed output.
func (a *Activities) ScoreCommit(ctx context.Context, in ScoreCommitInput) (StepOutput, error) {
	p, err := scorer.LoadPlan(in.Staging)
	var man scorer.SuccessManifest
	var outDir string
	switch {
	case err == nil:
		outDir = p.Output
		if man, err = p.Commit(); err != nil {
			return StepOutput{}, err
		}
	case errors.Is(err, os.ErrNotExist):
		// Committed by an earlier attempt: the staging directory is now
		// the output.
		outDir = filepath.Join(filepath.Dir(in.Staging), strings.TrimSuffix(strings.TrimPrefix(filepath.Base(in.Staging), "."), ".staging"))
		if man, err = scorer.ReadSuccess(outDir); err != nil {
			return StepOutput{}, fmt.Errorf("committing step %q: no plan in %s and no committed output: %w", in.Step.Step.Name, in.Staging, err)
		}
	default:
		return StepOutput{}, err
	}
	sum, err := dataset.HashFile(filepath.Join(outDir, scorer.SuccessFile))
	if err != nil {
		return StepOutput{}, err
	}
	uri := artifact.FileURI(outDir)
	if in.Step.Step.Score != nil && in.Step.Step.Score.Output == "" {
		// In the artifact store: an object store uploads it now.
		if uri, err = a.Store.Publish(ctx, outDir, scoreOutputRel(in.Step)); err != nil {
			return StepOutput{}, err
		}
	}
	out := StepOutput{
		Artifacts: Artifacts{Scored: &ScoredRef{URI: uri, Rows: man.Rows, SHA256: sum, Model: man.Model, Version: man.Version}},
		Summary:   fmt.Sprintf("%d rows scored with %s:%d into %d part(s) from %d file(s) → %s", man.Rows, man.Model, man.Version, len(man.Parts), len(man.Inputs), shownURI(uri)),
		CacheKey:  in.Key,
	}
	if err := a.storeEntry(in.Step, in.Key, out); err != nil {
		a.logger(ctx).Warn("storing the step's result in the step cache", "step", in.Step.Step.Name, "key", in.Key, "error", err)
	}
	return out, nil
}

// ScoreAbortInput names a failed score step's staging directory.
type ScoreAbortInput struct {
	Staging string `json:"staging"`
}

// ScoreAbort removes a failed score step's staging directory, so that no
// partial output is left behind.
func (a *Activities) ScoreAbort(ctx context.Context, in ScoreAbortInput) error {
	if in.Staging == "" || !strings.HasSuffix(in.Staging, ".staging") {
		return invalid("not a staging directory: %q", in.Staging)
	}
	if err := os.RemoveAll(in.Staging); err != nil {
		return fmt.Errorf("removing %s: %w", in.Staging, err)
	}
	return nil
}
