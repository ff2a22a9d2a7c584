package containers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

const (
	// outputGrace bounds how long Run waits for the rest of the output once
	// the container has exited (or been killed).
	outputGrace = 5 * time.Second
	// killGrace bounds the output drain after a kill.
	killGrace = 2 * time.Second
	// cleanupTimeout bounds kill, inspect and removal calls made with a
	// context detached from the caller's.
	cleanupTimeout = 30 * time.Second
)

// DockerOptions configures NewDocker.
type DockerOptions struct {
	// Host overrides DOCKER_HOST, e.g. "unix:///var/run/docker.sock".
	Host string
	// PingTimeout bounds the reachability check (0 = 3s).
	PingTimeout time.Duration
	// Images maps image references that steps name to the images run in
	// their place, e.g. "kiln/trainer:dev" to the content-addressed tag
	// `make images` built, so that another checkout rebuilding the shared
	// tag on the same engine cannot change what this worker runs.
	Images map[string]string
}

// Docker is the Docker-engine Runtime. It is safe for concurrent use.
type Docker struct {
	cli    *client.Client
	images map[string]string
}

// image returns the image run for the reference ref (DockerOptions.Images).
func (d *Docker) image(ref string) string {
	if to, ok := d.images[ref]; ok {
		return to
	}
	return ref
}

var _ Runtime = (*Docker)(nil)

// NewDocker connects to the Docker engine configured by the environment
// (DOCKER_HOST and friends) or opts.Host, negotiates the API version and
// pings the engine, returning a clear error when it is unreachable.
func NewDocker(ctx context.Context, opts DockerOptions) (*Docker, error) {
	clientOpts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if opts.Host != "" {
		clientOpts = append(clientOpts, client.WithHost(opts.Host))
	}
	cli, err := client.NewClientWithOpts(clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	timeout := opts.PingTimeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	pingCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ping, err := cli.Ping(pingCtx)
	if err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("docker engine unreachable at %s: %w", cli.DaemonHost(), err)
	}
	cli.NegotiateAPIVersionPing(ping)
	return &Docker{cli: cli, images: opts.Images}, nil
}

// Client returns the underlying Docker client.
func (d *Docker) Client() *client.Client { return d.cli }

// Close closes the Docker client.
func (d *Docker) Close() error {
	if err := d.cli.Close(); err != nil {
		return fmt.Errorf("close docker client: %w", err)
	}
	return nil
}

// Name returns RuntimeDocker.
func (d *Docker) Name() string { return RuntimeDocker }

// Identify returns the ID ("sha256:…") of the local image, as Run reports
// it in Result.ImageID.
func (d *Docker) Identify(ctx context.Context, image string) (string, error) {
	return ImageID(ctx, d.cli, d.image(image))
}

// Labels returns the labels of the local image (its LABEL instructions).
func (d *Docker) Labels(ctx context.Context, image string) (map[string]string, error) {
	image = d.image(image)
	img, err := d.cli.ImageInspect(ctx, image)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("image %s not found: run `make images`", image)
		}
		return nil, fmt.Errorf("inspect image %s: %w", image, err)
	}
	if img.Config == nil {
		return nil, nil
	}
	return img.Config.Labels, nil
}

// containerConfig builds the sandboxed container configuration for a
// normalized spec.
func containerConfig(spec RunSpec, imageID string) (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image:        imageID,
		Env:          sandboxEnv(spec.Env),
		User:         SandboxUser,
		Labels:       runLabels(spec),
		AttachStdout: true,
		AttachStderr: true,
	}
	if len(spec.Command) > 0 {
		cfg.Cmd = spec.Command
	}
	pids := spec.PidsLimit
	host := &container.HostConfig{
		NetworkMode:    container.NetworkMode(spec.Network),
		ReadonlyRootfs: true,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		Resources: container.Resources{
			Memory:     spec.MemoryBytes,
			MemorySwap: spec.MemoryBytes,
			NanoCPUs:   int64(spec.CPUs * 1e9),
			PidsLimit:  &pids,
		},
		Mounts: []mount.Mount{
			{Type: mount.TypeBind, Source: spec.InputDir, Target: InDir, ReadOnly: true},
			{Type: mount.TypeBind, Source: spec.OutputDir, Target: OutDir},
		},
	}
	host.DeviceRequests = gpuRequests(spec.GPUs)
	return cfg, host
}

// sandboxEnv returns env plus HOME and TMPDIR pointing at [ScratchDir]
// unless env sets them: the root file system, /tmp included, is read-only.
func sandboxEnv(env []string) []string {
	out := slices.Clone(env)
	for _, key := range []string{"HOME", "TMPDIR"} {
		if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, key+"=") }) {
			out = append(out, key+"="+ScratchDir)
		}
	}
	return out
}

// gpuRequests returns the device requests for gpus GPUs (GPUsAll for all of
// them), as `docker run --gpus` makes them: any driver that provides the
// "gpu" capability, which with the NVIDIA Container Toolkit is nvidia.
func gpuRequests(gpus int) []container.DeviceRequest {
	if gpus == 0 {
		return nil
	}
	return []container.DeviceRequest{{Count: gpus, Capabilities: [][]string{{"gpu"}}}}
}

// Run runs spec in a sandboxed container, streaming its output, and removes
// the container whatever happens. On cancellation of ctx or expiry of
// spec.Timeout the container is killed before Run returns.
func (d *Docker) Run(ctx context.Context, spec RunSpec) (res Result, err error) {
	start := time.Now()
	res = Result{Runtime: RuntimeDocker, ExitCode: -1}
	defer func() { res.Duration = time.Since(start) }()

	spec, err = spec.normalize()
	if err != nil {
		return res, err
	}
	res.ImageID, err = ImageID(ctx, d.cli, d.image(spec.Image))
	if err != nil {
		return res, err
	}
	if err := prepareDirs(spec); err != nil {
		return res, fmt.Errorf("run %s: %w", spec.Image, err)
	}
	if err := prepareScratch(spec.OutputDir); err != nil {
		return res, fmt.Errorf("run %s: %w", spec.Image, err)
	}

	// Create with a detached context: a request canceled in flight could
	// leave a container that Run does not know about.
	cfg, hostCfg := containerConfig(spec, res.ImageID)
	createCtx, createCancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	created, err := d.cli.ContainerCreate(createCtx, cfg, hostCfg, nil, nil, spec.Name)
	createCancel()
	if err != nil {
		return res, fmt.Errorf("create container for %s: %w", spec.Image, err)
	}
	id := created.ID
	// Registered before the stream cleanup, so it runs after it.
	defer d.remove(ctx, id)
	if ctx.Err() != nil {
		return res, canceledError(ctx, spec.Image)
	}

	var runCtx context.Context
	var cancel context.CancelFunc
	if spec.Timeout > 0 {
		runCtx, cancel = context.WithTimeoutCause(ctx, spec.Timeout, errTimedOut)
	} else {
		runCtx, cancel = context.WithCancel(ctx)
	}
	defer cancel()

	// Attach before starting so that no output is lost.
	sink := newOutputSink(spec)
	hijack, err := d.cli.ContainerAttach(runCtx, id, container.AttachOptions{Stream: true, Stdout: true, Stderr: true})
	if err != nil {
		if runCtx.Err() != nil {
			return res, d.interrupted(ctx, spec, sink, "", nil)
		}
		return res, fmt.Errorf("attach to container %s: %w", shortID(id), err)
	}
	copyDone := make(chan struct{})
	go func() {
		defer close(copyDone)
		stdout := &lineWriter{sink: sink}
		stderr := &lineWriter{sink: sink, stderr: true}
		// The copy ends when the container exits or the connection is
		// closed; either way the error carries no information we need.
		_, _ = stdcopy.StdCopy(stdout, stderr, hijack.Reader)
		stdout.flush()
		stderr.flush()
	}()
	// stopStream drains the output for up to grace, then closes the stream
	// and waits for the copier, so that the log tail is final and spec.Log
	// is never written after Run returns.
	streamStopped := false
	stopStream := func(grace time.Duration) {
		if streamStopped {
			return
		}
		streamStopped = true
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-copyDone:
		case <-timer.C:
			slog.WarnContext(ctx, "containers: output stream still open, closing it", "container", shortID(id))
		}
		hijack.Close()
		<-copyDone
	}
	defer stopStream(outputGrace)

	waitC, waitErrC := d.cli.ContainerWait(runCtx, id, container.WaitConditionNextExit)
	if err := d.cli.ContainerStart(runCtx, id, container.StartOptions{}); err != nil {
		if runCtx.Err() != nil {
			return res, d.interrupted(ctx, spec, sink, id, stopStream)
		}
		return res, fmt.Errorf("start container for %s: %w", spec.Image, err)
	}

	select {
	case w := <-waitC:
		if w.Error != nil && w.Error.Message != "" {
			return res, fmt.Errorf("wait for container %s: %s", shortID(id), w.Error.Message)
		}
		res.ExitCode = int(w.StatusCode)
	case err := <-waitErrC:
		if runCtx.Err() != nil {
			return res, d.interrupted(ctx, spec, sink, id, stopStream)
		}
		return res, fmt.Errorf("wait for container %s: %w", shortID(id), err)
	}

	// The output ends right after the exit.
	stopStream(outputGrace)

	inspectCtx, inspectCancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer inspectCancel()
	info, err := d.cli.ContainerInspect(inspectCtx, id)
	if err != nil {
		return res, fmt.Errorf("inspect container %s: %w", shortID(id), err)
	}
	if info.State != nil {
		res.OOMKilled = info.State.OOMKilled
	}
	if res.ExitCode != 0 || res.OOMKilled {
		return res, &RunError{
			Runtime:     RuntimeDocker,
			ExitCode:    res.ExitCode,
			OOMKilled:   res.OOMKilled,
			MemoryLimit: spec.MemoryBytes,
			LogTail:     sink.logTail(),
		}
	}
	return res, nil
}

// prepareScratch creates the scratch directory (ScratchDir in the
// container) inside outDir, writable for the sandbox user.
func prepareScratch(outDir string) error {
	dir := filepath.Join(outDir, filepath.Base(ScratchDir))
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return fmt.Errorf("create scratch dir: %w", err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		return fmt.Errorf("make scratch dir writable: %w", err)
	}
	return nil
}

// interrupted kills the container (unless id is empty: not started) after
// ctx was canceled or the run timed out, stops the output stream (if
// stopStream is not nil) and returns the matching error. The deferred
// removal in Run finishes the job.
func (d *Docker) interrupted(ctx context.Context, spec RunSpec, sink *outputSink, id string, stopStream func(time.Duration)) error {
	if id != "" {
		killCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		err := d.cli.ContainerKill(killCtx, id, "KILL")
		cancel()
		if err != nil && !cerrdefs.IsNotFound(err) && !cerrdefs.IsConflict(err) {
			// Removal below uses force and kills it anyway.
			slog.DebugContext(ctx, "containers: kill failed", "container", shortID(id), "err", err)
		}
	}
	if stopStream != nil {
		stopStream(killGrace)
	}
	if ctx.Err() != nil {
		return canceledError(ctx, spec.Image)
	}
	return &RunError{
		Runtime:     RuntimeDocker,
		ExitCode:    -1,
		TimedOut:    true,
		Timeout:     spec.Timeout,
		MemoryLimit: spec.MemoryBytes,
		LogTail:     sink.logTail(),
	}
}

// remove force-removes a container with a context detached from the
// caller's, retrying once, and logs a failure (Cleanup can catch it later).
func (d *Docker) remove(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		err = d.cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
		if err == nil || cerrdefs.IsNotFound(err) {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	slog.WarnContext(ctx, "containers: remove container failed", "container", shortID(id), "err", err)
}

// Cleanup force-removes every container, running or not, that carries
// kiln.managed=true and all of labels. With no labels it removes all
// Kiln-managed containers on the engine, including other workers' running
// ones; pass a label that identifies the attempt.
func (d *Docker) Cleanup(ctx context.Context, labels map[string]string) (int, error) {
	args := filters.NewArgs(filters.Arg("label", LabelManaged+"=true"))
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	list, err := d.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: args})
	if err != nil {
		return 0, fmt.Errorf("list containers for cleanup: %w", err)
	}
	var errs []error
	removed := 0
	for _, c := range list {
		err := d.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		switch {
		case err == nil:
			removed++
		case cerrdefs.IsNotFound(err):
			// Already gone, e.g. removed by its own Run.
		default:
			errs = append(errs, fmt.Errorf("remove container %s: %w", shortID(c.ID), err))
		}
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("cleanup: %w", errors.Join(errs...))
	}
	return removed, nil
}

// shortID abbreviates a container or image ID for messages.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
