package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"log/slog"
	"os"
	"path/filepath"

	"go.temporal.io/sdk/client"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/containers"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/artifact/localfs"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/pipelines"
)

// Config says where a worker's activities keep their state and which
// services they talk to.
type Config struct {
	// Home is Kiln's state directory: artifacts in Home/artifacts, the
	// registry in Home/registry.db, model server request logs in Home/requests.
	Home string
	// Registry is the model registry: a SQLite path or a postgres:// DSN
	// (see registry.Open); empty means Home/registry.db.
	Registry string
	// Artifacts, when set, is the object store the activities publish
	// artifacts to (see artifact.Options.Remote); Home/artifacts is then
	// only their local cache, so workers need share no directory.
	Artifacts string
	// TaskQueue is where the workflows the activities start are scheduled.
	TaskQueue string
	// ModelServer is the default model server for deploy steps.
	ModelServer string
	// AdminToken authenticates against model servers' admin routes.
	AdminToken string
	// TrainerBinary is the local trainer used by the process runtime; empty
	// looks for kiln-trainer next to the running executable.
	TrainerBinary string
	// NoDocker skips the Docker engine even when one is reachable.
	NoDocker bool
	// TrainerImage, when set, is the Docker image run for steps that name
	// TrainerImage (kiln/trainer:dev): a content-addressed tag, so that a
	// checkout sharing the Docker engine cannot change the trainer under
	// this worker by rebuilding the shared tag.
	TrainerImage string
	// Logger receives the activities' log.
	Logger *slog.Logger
	// UIURL and Namespace locate runs in the Temporal web UI; ReportsURL
	// is Kiln's local page. Reports link to them when set.
	UIURL, Namespace, ReportsURL string
	// AllowPaths confines the files specs name to these directories (and
	// the artifact store); empty allows any path. See activities.AllowPaths.
	AllowPaths []string
}

// TrainerImage is the reference trainer's image; the process runtime maps it
// to the local trainer binary.
const TrainerImage = pipelines.DefaultTrainerImage

// OpenActivities opens the registry, the artifact store and the container
// runtimes described by cfg. Close releases them.
func OpenActivities(ctx context.Context, c client.Client, cfg Config) (acts *activities.Activities, closeFn func() error, err error) {
	for _, p := range cfg.AllowPaths {
		if st, err := os.Stat(p); err != nil || !st.IsDir() {
			return nil, nil, fmt.Errorf("--allow-path %s: not a directory", p)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.TaskQueue == "" {
		cfg.TaskQueue = DefaultTaskQueue
	}
	store, err := artifact.Open(ctx, artifact.Options{Dir: filepath.Join(cfg.Home, "artifacts"), Remote: cfg.Artifacts})
	if err != nil {
		return nil, nil, err
	}
	target := cfg.Registry
	if target == "" {
		target = filepath.Join(cfg.Home, "registry.db")
	}
	reg, err := registry.Open(ctx, target)
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	acts = &activities.Activities{
		Store: store, Registry: reg, Temporal: c, TaskQueue: cfg.TaskQueue,
		ModelServer: cfg.ModelServer, AdminToken: cfg.AdminToken,
		RequestLogDir: filepath.Join(cfg.Home, "requests"), Logger: log,
		UIURL: cfg.UIURL, Namespace: cfg.Namespace, ReportsURL: cfg.ReportsURL,
		AllowPaths: cfg.AllowPaths,
	}
	if cfg.Artifacts != "" {
		id, err := HomeID(cfg.Home)
		if err != nil {
			store.Close()
			reg.Close()
			return nil, nil, err
		}
		acts.HostQueue = "kiln-host-" + id
	}
	trainer := cfg.TrainerBinary
	if trainer == "" {
		if exe, err := os.Executable(); err == nil {
			trainer = filepath.Join(filepath.Dir(exe), "kiln-trainer")
		}
	}
	if _, err := os.Stat(trainer); err == nil {
		acts.Process = containers.NewProcess(containers.ProcessOptions{Binaries: map[string]string{TrainerImage: trainer}})
	}
	if !cfg.NoDocker {
		dopts := containers.DockerOptions{}
		if cfg.TrainerImage != "" {
			dopts.Images = map[string]string{TrainerImage: cfg.TrainerImage}
		}
		d, err := containers.NewDocker(ctx, dopts)
		if err != nil {
			log.Warn("no Docker engine: training runs as local processes", "error", err)
		} else {
			acts.Docker = d
		}
	}
	if acts.Docker == nil && acts.Process == nil {
		log.Warn("no container runtime: train steps will fail", "trainer", trainer)
	}
	closeFn = func() error {
		var errs []error
		if d, ok := acts.Docker.(interface{ Close() error }); ok {
			errs = append(errs, d.Close())
		}
		errs = append(errs, reg.Close(), store.Close())
		return errors.Join(errs...)
	}
	return acts, closeFn, nil
}

// HomeID is the identity of a Kiln home: a random ID kept in
// home/worker-id. A worker restarted on the same home polls the same host
// queue (and finds the work its disk holds); a model server's request logs
// in the object store carry it, to tell replicas apart.
func HomeID(home string) (string, error) {
	p := filepath.Join(home, "worker-id")
	if b, err := os.ReadFile(p); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(r[:])
	if err := os.MkdirAll(home, 0o755); err != nil {
		return "", err
	}
	if err := localfs.WriteFileAtomic(p, []byte(id+"\n")); err != nil {
		return "", fmt.Errorf("writing the worker's ID: %w", err)
	}
	return id, nil
}

// Describe says which runtimes a worker found, for start-up banners.
func Describe(acts *activities.Activities) string {
	switch {
	case acts.Docker != nil && acts.Process != nil:
		return "docker (process fallback available)"
	case acts.Docker != nil:
		return "docker"
	case acts.Process != nil:
		return "process (no Docker engine)"
	}
	return "none"
}
