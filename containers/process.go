package containers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// ProcessOptions configures NewProcess.
type ProcessOptions struct {
	// Binaries maps image references (as in RunSpec.Image) to local
	// executables built from the same source, e.g.
	// "kiln/trainer:dev" → "bin/trainer".
	Binaries map[string]string
	// Labels gives the image labels (see Runtime.Labels) of the images in
	// Binaries, e.g. {"kiln/xgboost:dev": {"io.kiln.inputs": "csv"}}.
	Labels map[string]map[string]string
}

// Process is the fallback Runtime used when no Docker engine is available:
// it runs the trainer binary registered for the image as a child process,
// with KILN_IN and KILN_OUT set to the host input and output directories.
//
// It is not a sandbox. The trainer runs as the worker's user with network
// access and a writable file system; memory, CPU and pids limits are not
// enforced, so OOMKilled is never reported and RunSpec.Network is ignored.
// The environment is not inherited from the worker: the trainer gets PATH,
// HOME and TMPDIR (a per-run temporary directory, also its working
// directory), RunSpec.Env, and KILN_IN/KILN_OUT. The process runs in its own
// process group, which is killed on cancellation, timeout and exit; it
// receives SIGKILL if the worker dies (Linux parent-death signal, which
// does not reach its own children).
// It is safe for concurrent use.
type Process struct {
	binaries map[string]string
	labels   map[string]map[string]string

	mu     sync.Mutex
	hashes map[string]binaryHash // by absolute path
}

// binaryHash caches a binary's digest, keyed by its size and mtime.
type binaryHash struct {
	size   int64
	mtime  time.Time
	digest string
}

var _ Runtime = (*Process)(nil)

// NewProcess returns a process runtime for the binaries in opts.
func NewProcess(opts ProcessOptions) *Process {
	binaries := make(map[string]string, len(opts.Binaries))
	for ref, path := range opts.Binaries {
		binaries[ref] = path
	}
	labels := make(map[string]map[string]string, len(opts.Labels))
	for ref, l := range opts.Labels {
		labels[ref] = maps.Clone(l)
	}
	return &Process{binaries: binaries, labels: labels, hashes: make(map[string]binaryHash)}
}

// Labels returns the labels ProcessOptions.Labels gave image (none when it
// gave none), after checking that a binary is registered for image.
func (p *Process) Labels(ctx context.Context, image string) (map[string]string, error) {
	if _, err := p.binary(image); err != nil {
		return nil, err
	}
	return maps.Clone(p.labels[image]), nil
}

// Name returns RuntimeProcess.
func (p *Process) Name() string { return RuntimeProcess }

// Cleanup returns 0: trainer processes die with the worker (parent-death
// signal) and are killed with their process group when Run returns, so
// nothing is left to find by label.
func (p *Process) Cleanup(ctx context.Context, labels map[string]string) (int, error) {
	return 0, nil
}

// Identify returns "sha256:<hex>" of the binary registered for image, as
// Run reports it in Result.ImageID.
func (p *Process) Identify(ctx context.Context, image string) (string, error) {
	bin, err := p.binary(image)
	if err != nil {
		return "", err
	}
	return p.imageID(bin)
}

// binary resolves the executable registered for image.
func (p *Process) binary(image string) (string, error) {
	path, ok := p.binaries[image]
	if !ok {
		known := make([]string, 0, len(p.binaries))
		for ref := range p.binaries {
			known = append(known, ref)
		}
		slices.Sort(known)
		return "", fmt.Errorf("process runtime: no local binary for image %s (known: %v)", image, known)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("process runtime: binary for image %s: %w", image, err)
	}
	return abs, nil
}

// imageID returns "sha256:<hex>" of the binary at path, cached while its
// size and modification time are unchanged.
func (p *Process) imageID(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("process runtime: binary: %w", err)
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 == 0 {
		return "", fmt.Errorf("process runtime: binary %s is not an executable file", path)
	}
	p.mu.Lock()
	h, ok := p.hashes[path]
	p.mu.Unlock()
	if ok && h.size == st.Size() && h.mtime.Equal(st.ModTime()) {
		return h.digest, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("process runtime: hash binary: %w", err)
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return "", fmt.Errorf("process runtime: hash binary %s: %w", path, err)
	}
	digest := "sha256:" + hex.EncodeToString(sum.Sum(nil))
	p.mu.Lock()
	p.hashes[path] = binaryHash{size: st.Size(), mtime: st.ModTime(), digest: digest}
	p.mu.Unlock()
	return digest, nil
}

// Run runs the binary registered for spec.Image under the training
// contract. Resource limits in spec are validated but not enforced.
func (p *Process) Run(ctx context.Context, spec RunSpec) (res Result, err error) {
	start := time.Now()
	res = Result{Runtime: RuntimeProcess, ExitCode: -1}
	defer func() { res.Duration = time.Since(start) }()

	spec, err = spec.normalize()
	if err != nil {
		return res, err
	}
	bin, err := p.binary(spec.Image)
	if err != nil {
		return res, err
	}
	if res.ImageID, err = p.imageID(bin); err != nil {
		return res, err
	}
	if err := prepareDirs(spec); err != nil {
		return res, fmt.Errorf("run %s: %w", spec.Image, err)
	}
	tmp, err := os.MkdirTemp("", "kiln-process-*")
	if err != nil {
		return res, fmt.Errorf("run %s: temp dir: %w", spec.Image, err)
	}
	defer os.RemoveAll(tmp)

	var runCtx context.Context
	var cancel context.CancelFunc
	if spec.Timeout > 0 {
		runCtx, cancel = context.WithTimeoutCause(ctx, spec.Timeout, errTimedOut)
	} else {
		runCtx, cancel = context.WithCancel(ctx)
	}
	defer cancel()

	sink := newOutputSink(spec)
	cmd := exec.CommandContext(runCtx, bin, spec.Command...)
	cmd.Dir = tmp
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + tmp, "TMPDIR=" + tmp}, spec.Env...)
	cmd.Env = append(cmd.Env, EnvIn+"="+spec.InputDir, EnvOut+"="+spec.OutputDir) // Last wins.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }

	// Own pipes rather than exec's copying goroutines: Wait then returns as
	// soon as the trainer exits, and the group is killed before the output
	// is drained, so leftover descendants cannot hold the run open.
	streams, err := startStreams(cmd, sink)
	if err != nil {
		return res, fmt.Errorf("run %s: %w", spec.Image, err)
	}
	if err := cmd.Start(); err != nil {
		streams.closeWriters()
		streams.stop(0)
		return res, fmt.Errorf("run %s: start %s: %w", spec.Image, bin, err)
	}
	streams.closeWriters()
	pid := cmd.Process.Pid
	waitErr := cmd.Wait()
	// Kill whatever the trainer left behind in its group. The group ID
	// cannot have been reused: the leader was reaped only just now.
	_ = killGroup(pid)
	streams.stop(killGrace)

	if runCtx.Err() != nil {
		if ctx.Err() != nil {
			return res, canceledError(ctx, spec.Image)
		}
		return res, &RunError{
			Runtime:     RuntimeProcess,
			ExitCode:    -1,
			TimedOut:    true,
			Timeout:     spec.Timeout,
			MemoryLimit: spec.MemoryBytes,
			LogTail:     sink.logTail(),
		}
	}
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return res, fmt.Errorf("run %s: wait: %w", spec.Image, waitErr)
	}
	res.ExitCode = exitCode(cmd.ProcessState)
	if res.ExitCode != 0 {
		return res, &RunError{
			Runtime:     RuntimeProcess,
			ExitCode:    res.ExitCode,
			MemoryLimit: spec.MemoryBytes,
			LogTail:     sink.logTail(),
		}
	}
	return res, nil
}

// killGroup sends SIGKILL to the process group led by pid.
func killGroup(pid int) error {
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// exitCode returns the exit code, or 128+signal for a process killed by a
// signal, like a shell.
func exitCode(state *os.ProcessState) int {
	if state == nil {
		return -1
	}
	if ws, ok := state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return state.ExitCode()
}

// processStreams reads a child's stdout and stderr through pipes into a sink.
type processStreams struct {
	readers, writers []*os.File
	done             chan struct{}
}

// startStreams creates the pipes, sets them as cmd's stdout and stderr and
// starts reading them.
func startStreams(cmd *exec.Cmd, sink *outputSink) (*processStreams, error) {
	s := &processStreams{done: make(chan struct{})}
	for range 2 {
		r, w, err := os.Pipe()
		if err != nil {
			s.closeWriters()
			for _, r := range s.readers {
				_ = r.Close()
			}
			return nil, fmt.Errorf("output pipe: %w", err)
		}
		s.readers, s.writers = append(s.readers, r), append(s.writers, w)
	}
	cmd.Stdout, cmd.Stderr = s.writers[0], s.writers[1]
	var wg sync.WaitGroup
	for i, r := range s.readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &lineWriter{sink: sink, stderr: i == 1}
			// Ends at EOF or when stop closes the pipe; neither is an error.
			_, _ = io.Copy(w, r)
			w.flush()
		}()
	}
	go func() {
		wg.Wait()
		close(s.done)
	}()
	return s, nil
}

// closeWriters closes the parent's copies of the pipes' write ends.
func (s *processStreams) closeWriters() {
	for _, w := range s.writers {
		_ = w.Close()
	}
}

// stop waits up to grace for the output to end, then closes the pipes and
// waits for the readers to finish.
func (s *processStreams) stop(grace time.Duration) {
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-s.done:
	case <-timer.C:
	}
	for _, r := range s.readers {
		_ = r.Close()
	}
	<-s.done
}
