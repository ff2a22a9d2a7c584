package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Contract constants shared by the runtimes and the trainers.
const (
	// InDir is where a container sees its read-only inputs.
	InDir = "/kiln/in"
	// OutDir is where a container writes its outputs.
	OutDir = "/kiln/out"
	// EnvIn names the environment variable holding the input directory; the
	// process runtime sets it to the host input directory.
	EnvIn = "KILN_IN"
	// EnvOut names the environment variable holding the output directory; the
	// process runtime sets it to the host output directory.
	EnvOut = "KILN_OUT"
	// ProgressPrefix starts a progress line on a trainer's stdout; the rest
	// of the line is a JSON [Progress].
	ProgressPrefix = "KILN_PROGRESS"
	// SandboxUser is the uid:gid trainers run as inside Docker.
	SandboxUser = "65534:65534"
	// ScratchDir is the sandbox's scratch directory, a subdirectory of
	// OutDir: the Docker runtime sets HOME and TMPDIR to it (unless
	// RunSpec.Env does), since the root file system, /tmp included, is
	// read-only. It is created empty and writable before the trainer starts.
	ScratchDir = OutDir + "/.tmp"
	// LabelInputs is the image label through which a trainer asks for
	// extra input formats: "csv" means it wants train.csv and valid.csv
	// next to the Parquet files (for images without a Parquet reader).
	LabelInputs = "io.kiln.inputs"
	// LabelManaged is the label set on every container Kiln creates, with
	// the value "true".
	LabelManaged = "kiln.managed"
)

// Runtime names recorded in [Result.Runtime].
const (
	RuntimeDocker  = "docker"
	RuntimeProcess = "process"
)

// GPUsAll in RunSpec.GPUs requests every GPU, like `docker run --gpus all`.
const GPUsAll = -1

// Resource defaults applied when the corresponding [RunSpec] field is 0.
const (
	DefaultCPUs        = 1.0
	DefaultMemoryBytes = 1 << 30
	DefaultPidsLimit   = 256
)

// RunSpec describes one training-container run.
type RunSpec struct {
	// Image is a local image reference such as "kiln/trainer:dev". The
	// process runtime maps it to a local executable.
	Image string
	// Command, when non-empty, overrides the image's CMD. Kiln images use an
	// ENTRYPOINT, so Command is the argument list; the process runtime passes
	// it as the binary's arguments.
	Command []string
	// InputDir is the host directory mounted read-only at /kiln/in. It must
	// exist; Run adds o+rx to its mode so that uid 65534 can enter it (the
	// files inside must already be world-readable).
	InputDir string
	// OutputDir is the host directory mounted read-write at /kiln/out. Run
	// creates it if needed and makes it writable for uid 65534 (mode 0777).
	OutputDir string
	// CPUs limits CPU time in cores (0 = DefaultCPUs). It must not exceed
	// the engine's CPU count.
	CPUs float64
	// MemoryBytes limits memory, swap included (0 = DefaultMemoryBytes).
	MemoryBytes int64
	// PidsLimit limits the number of processes and threads
	// (0 = DefaultPidsLimit).
	PidsLimit int64
	// GPUs requests GPUs from the Docker engine: 0 none, n > 0 that many,
	// GPUsAll every GPU. The engine needs a GPU runtime (the NVIDIA
	// Container Toolkit). The process runtime ignores it.
	GPUs int
	// Timeout bounds the run (0 = no limit beyond ctx).
	Timeout time.Duration
	// Env holds KEY=VALUE pairs added to the trainer's environment.
	Env []string
	// Labels are added to the runtime's own labels (kiln.managed=true),
	// which take precedence.
	Labels map[string]string
	// Name is an optional container name. Names are unique on an engine:
	// after a worker crash, Cleanup the old container before reusing one.
	Name string
	// Network is the Docker network mode. Empty means "none" (no network at
	// all); anything else weakens the sandbox and should be an explicit
	// decision. The process runtime ignores it.
	Network string
	// Progress is called for each KILN_PROGRESS line, in order, from the
	// goroutine reading the output: it should not block. May be nil.
	Progress func(Progress)
	// Log receives stderr and non-progress stdout lines, one Write per line
	// (newline included); write errors are ignored. May be nil.
	Log io.Writer
}

// Progress is one progress report from a trainer.
type Progress struct {
	// Pct is the completion percentage, 0–100.
	Pct float64 `json:"pct"`
	// Msg is a short human-readable status.
	Msg string `json:"msg"`
}

// Result describes a finished run. Run returns it, filled as far as known,
// together with any error.
type Result struct {
	// Runtime is RuntimeDocker or RuntimeProcess.
	Runtime string
	// ImageID is the Docker image ID ("sha256:…") or, for the process
	// runtime, "sha256:" followed by the hex SHA-256 of the binary.
	ImageID string
	// ExitCode is the trainer's exit code (-1 when it was killed before it
	// could be observed, 128+signal when a process died of a signal).
	ExitCode int
	// OOMKilled reports that the kernel killed the trainer for exceeding
	// its memory limit.
	OOMKilled bool
	// Duration is the wall time of the whole run, setup and removal
	// included.
	Duration time.Duration
}

// Runtime runs training containers.
type Runtime interface {
	// Name returns RuntimeDocker or RuntimeProcess.
	Name() string
	// Run runs spec to completion. A trainer failure (non-zero exit, OOM
	// kill or timeout) is reported as a *RunError; cancellation of ctx
	// returns an error wrapping ctx.Err().
	Run(ctx context.Context, spec RunSpec) (Result, error)
	// Cleanup removes leftover containers that carry all of labels (and
	// kiln.managed=true), such as those of an attempt whose worker was
	// SIGKILLed, and returns how many it removed.
	Cleanup(ctx context.Context, labels map[string]string) (int, error)
	// Identify returns the identity of what Run would run for image, the
	// same string Run reports as [Result.ImageID]: the Docker image ID
	// ("sha256:…"), or for the process runtime "sha256:" followed by the
	// hex SHA-256 of the binary registered for image. It changes whenever
	// the trainer does, so it can key caches of training results.
	Identify(ctx context.Context, image string) (string, error)
	// Labels returns the labels of image, such as LabelInputs: the Docker
	// image's labels, or for the process runtime those configured with its
	// binary. The result may be nil.
	Labels(ctx context.Context, image string) (map[string]string, error)
}

// ExitBadInput is the trainer contract's exit code for bad input (NaN
// features, unknown parameters, a target the algorithm cannot fit): a retry
// would fail the same way (docs/containers.md).
const ExitBadInput = 2

// RunError reports a trainer that failed: non-zero exit, OOM kill or timeout.
type RunError struct {
	// Runtime is the runtime that ran the trainer.
	Runtime string
	// ExitCode is the exit code, or -1 if unknown.
	ExitCode int
	// OOMKilled reports an out-of-memory kill.
	OOMKilled bool
	// MemoryLimit is the memory limit in bytes that was in force.
	MemoryLimit int64
	// TimedOut reports that the run exceeded Timeout and was killed.
	TimedOut bool
	// Timeout is the limit that was exceeded when TimedOut is set.
	Timeout time.Duration
	// LogTail holds the last stderr lines, newline-separated.
	LogTail string
}

// Sentinel errors matched by errors.Is on a *RunError.
var (
	// ErrOutOfMemory matches a trainer killed for exceeding its memory limit.
	ErrOutOfMemory = errors.New("trainer killed: out of memory")
	// ErrTimedOut matches a trainer killed for exceeding RunSpec.Timeout.
	ErrTimedOut = errors.New("trainer timed out")
)

// Is reports whether e is an out-of-memory kill (ErrOutOfMemory) or a
// timeout (ErrTimedOut).
func (e *RunError) Is(target error) bool {
	switch target {
	case ErrOutOfMemory:
		return e.OOMKilled
	case ErrTimedOut:
		return e.TimedOut
	}
	return false
}

// Error returns a message such as "trainer exited with code 2: <last stderr
// lines>", "killed: out of memory, limit 512 MiB" or "timed out after 30m0s".
func (e *RunError) Error() string {
	var msg string
	switch {
	case e.TimedOut:
		msg = "timed out after " + e.Timeout.String()
	case e.OOMKilled:
		msg = "killed: out of memory, limit " + formatMiB(e.MemoryLimit)
	default:
		msg = "trainer exited with code " + strconv.Itoa(e.ExitCode)
	}
	if e.LogTail != "" {
		msg += ": " + e.LogTail
	}
	return msg
}

// formatMiB formats n bytes in MiB, e.g. "64 MiB" or "1.5 MiB".
func formatMiB(n int64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + " MiB"
	}
	return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
}

// errTimedOut is the cancellation cause of a run whose Timeout expired.
var errTimedOut = errors.New("containers: run timed out")

// normalize validates spec, applies the resource defaults and makes the
// directories absolute.
func (spec RunSpec) normalize() (RunSpec, error) {
	if spec.Image == "" {
		return spec, errors.New("run spec: image is required")
	}
	if spec.InputDir == "" || spec.OutputDir == "" {
		return spec, errors.New("run spec: input and output directories are required")
	}
	if spec.GPUs < GPUsAll {
		return spec, fmt.Errorf("run spec: gpus must be a count >= 0 or GPUsAll (-1), got %d", spec.GPUs)
	}
	if spec.CPUs < 0 || spec.MemoryBytes < 0 || spec.PidsLimit < 0 || spec.Timeout < 0 {
		return spec, fmt.Errorf("run spec: negative limit (cpus %v, memory %d, pids %d, timeout %v)",
			spec.CPUs, spec.MemoryBytes, spec.PidsLimit, spec.Timeout)
	}
	if math.IsNaN(spec.CPUs) || math.IsInf(spec.CPUs, 1) {
		return spec, fmt.Errorf("run spec: cpus must be a finite number, got %v", spec.CPUs)
	}
	if spec.CPUs == 0 {
		spec.CPUs = DefaultCPUs
	}
	if spec.MemoryBytes == 0 {
		spec.MemoryBytes = DefaultMemoryBytes
	}
	if spec.PidsLimit == 0 {
		spec.PidsLimit = DefaultPidsLimit
	}
	if spec.Network == "" {
		spec.Network = "none"
	}
	var err error
	if spec.InputDir, err = filepath.Abs(spec.InputDir); err != nil {
		return spec, fmt.Errorf("run spec: input dir: %w", err)
	}
	if spec.OutputDir, err = filepath.Abs(spec.OutputDir); err != nil {
		return spec, fmt.Errorf("run spec: output dir: %w", err)
	}
	for _, kv := range spec.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return spec, fmt.Errorf("run spec: env entry %q is not KEY=VALUE", kv)
		}
	}
	return spec, nil
}

// prepareDirs checks the input directory and makes it enterable by uid
// 65534, then creates the output directory and makes it writable for it.
func prepareDirs(spec RunSpec) error {
	st, err := os.Stat(spec.InputDir)
	if err != nil {
		return fmt.Errorf("input dir: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("input dir %s is not a directory", spec.InputDir)
	}
	if mode := st.Mode().Perm(); mode&0o005 != 0o005 {
		if err := os.Chmod(spec.InputDir, mode|0o005); err != nil {
			return fmt.Errorf("make input dir readable: %w", err)
		}
	}
	if err := os.MkdirAll(spec.OutputDir, 0o777); err != nil {
		return fmt.Errorf("create output dir: %w", err)
	}
	// 0777 rather than chown: it works without root, and the host user
	// keeps full control of the directory.
	if err := os.Chmod(spec.OutputDir, 0o777); err != nil {
		return fmt.Errorf("make output dir writable: %w", err)
	}
	return nil
}

// runLabels returns spec's labels plus the runtime's own.
func runLabels(spec RunSpec) map[string]string {
	labels := make(map[string]string, len(spec.Labels)+1)
	for k, v := range spec.Labels {
		labels[k] = v
	}
	labels[LabelManaged] = "true"
	return labels
}

// canceledError wraps the cancellation of the caller's context.
func canceledError(ctx context.Context, image string) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, err) {
		return fmt.Errorf("run %s: %w (cause: %v)", image, err, cause)
	}
	return fmt.Errorf("run %s: %w", image, err)
}
