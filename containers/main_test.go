package containers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
)

// Shared fixtures, set up once by TestMain.
var (
	// testRunID makes this test run's labels and tags unique on a shared
	// engine.
	testRunID string
	// probeBin is a static build of testdata/probe.
	probeBin string
	// probeErr explains why probeBin is missing.
	probeErr error
	// testDocker is connected to the engine, or nil (see dockerErr).
	testDocker *Docker
	dockerErr  error
	// probeImage is the probe image's tag and probeImageID its ID.
	probeImage   string
	probeImageID string
)

// labelTest carries testRunID plus the test name on every container a test
// creates, so that tests can count their own containers.
const labelTest = "kiln.test"

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	testRunID = hex.EncodeToString(id)

	tmp, err := os.MkdirTemp("", "kiln-containers-test-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	probeBin, probeErr = buildProbe(tmp)

	ctx := context.Background()
	testDocker, dockerErr = NewDocker(ctx, DockerOptions{})
	if dockerErr == nil && probeErr == nil {
		probeImage = "kiln-test/probe:" + testRunID
		probeImageID, dockerErr = buildProbeImage(ctx, tmp, probeBin, probeImage)
		if dockerErr != nil {
			fmt.Fprintln(os.Stderr, "build probe image:", dockerErr)
			return 1
		}
		defer func() {
			_, err := testDocker.Client().ImageRemove(context.Background(), probeImageID, image.RemoveOptions{Force: true, PruneChildren: true})
			if err != nil {
				fmt.Fprintln(os.Stderr, "remove probe image:", err)
			}
			_ = testDocker.Close()
		}()
	}
	return m.Run()
}

// buildProbe compiles testdata/probe statically into dir.
func buildProbe(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("go toolchain not found: %w", err)
	}
	out := filepath.Join(dir, "probe")
	cmd := exec.Command(goBin, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./testdata/probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build probe: %w\n%s", err, msg)
	}
	return out, nil
}

// buildProbeImage builds the FROM scratch probe image from a temporary
// context holding the probe binary and testdata/probe/Dockerfile.
func buildProbeImage(ctx context.Context, dir, bin, tag string) (string, error) {
	buildCtx := filepath.Join(dir, "context")
	if err := os.Mkdir(buildCtx, 0o755); err != nil {
		return "", err
	}
	for src, dst := range map[string]string{bin: "probe", "testdata/probe/Dockerfile": "Dockerfile"} {
		data, err := os.ReadFile(src)
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(buildCtx, dst), data, 0o755); err != nil {
			return "", err
		}
	}
	var log bytes.Buffer
	id, err := BuildImage(ctx, testDocker.Client(), BuildOptions{ContextDir: buildCtx, Tag: tag, Log: &log})
	if err != nil {
		return "", fmt.Errorf("%w\n%s", err, log.String())
	}
	return id, nil
}

// needProbe skips t when the probe could not be built.
func needProbe(t testing.TB) {
	t.Helper()
	if probeErr != nil {
		t.Skipf("probe binary unavailable: %v", probeErr)
	}
}

// needDocker skips t when no Docker engine is reachable.
func needDocker(t testing.TB) *Docker {
	t.Helper()
	needProbe(t)
	if testDocker == nil {
		t.Skipf("no Docker engine reachable, skipping Docker test: %v", dockerErr)
	}
	return testDocker
}

// testLabels returns labels unique to t.
func testLabels(t testing.TB) map[string]string {
	return map[string]string{labelTest: testRunID + "." + strings.ReplaceAll(t.Name(), "/", ".")}
}

// countContainers counts Kiln's containers (kiln.managed=true, stopped ones
// too) carrying labels.
func countContainers(t testing.TB, d *Docker, labels map[string]string) int {
	t.Helper()
	n, err := listContainers(d, labels)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// listContainers is countContainers for goroutines other than the test's.
func listContainers(d *Docker, labels map[string]string) (int, error) {
	args := filters.NewArgs(filters.Arg("label", LabelManaged+"=true"))
	for k, v := range labels {
		args.Add("label", k+"="+v)
	}
	list, err := d.Client().ContainerList(context.Background(), container.ListOptions{All: true, Filters: args})
	if err != nil {
		return 0, fmt.Errorf("list containers: %w", err)
	}
	return len(list), nil
}

// newDirs returns an input directory holding input.txt (mode 0700, as
// t.TempDir makes it) and a not yet existing output directory.
func newDirs(t testing.TB, input string) (in, out string) {
	t.Helper()
	root := t.TempDir()
	in = filepath.Join(root, "in")
	if err := os.Mkdir(in, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(in, "input.txt"), []byte(input), 0o644); err != nil {
		t.Fatal(err)
	}
	return in, filepath.Join(root, "out")
}

// recorder collects a run's progress reports and log.
type recorder struct {
	progress []Progress
	log      bytes.Buffer
}

// attach wires r into spec.
func (r *recorder) attach(spec *RunSpec) {
	spec.Progress = func(p Progress) { r.progress = append(r.progress, p) }
	spec.Log = &r.log
}

// cancelOnProgress returns a Progress callback that cancels on the first
// report (the trainer is then running) and records when.
func cancelOnProgress(cancel context.CancelFunc, at *time.Time) func(Progress) {
	return func(Progress) {
		if at.IsZero() {
			*at = time.Now()
			cancel()
		}
	}
}
