// Package e2e holds Kiln's end-to-end tests: real Temporal (the embedded
// server), real Docker containers, real Parquet files, a real model server
// over HTTP and a real SQLite registry. They are skipped with -short.
package e2e

import (
	"context"
	"fmt"
	"github.com/kiln-ml/kiln/internal/scorer"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/cli"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/worker"
)

// Environment of a worker subprocess (see runWorkerProcess).
const (
	envWorker  = "KILN_E2E_WORKER"
	envAddress = "KILN_E2E_ADDRESS"
	envHome    = "KILN_E2E_HOME"
	// envBlockShard, when set, makes the worker's ScoreShard activity stop
	// inside its shard, after the shard's first new part, write this file
	// and wait there to be killed (blockingScoreShard).
	envBlockShard = "KILN_E2E_BLOCK_SHARD"
	// envCLI, when set, makes the child process run the kiln command
	// line with these arguments (separated by \x1f) instead: a real
	// `kiln worker` or `kiln serve` a test can kill (startKilnProcess).
	envCLI = "KILN_E2E_CLI"
)

// repoRoot is the repository's root directory.
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}()

func TestMain(m *testing.M) {
	if args := os.Getenv(envCLI); args != "" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := cli.Run(ctx, strings.Split(args, "\x1f"), os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "kiln:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if os.Getenv(envWorker) != "" {
		if err := runWorkerProcess(); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	if bench != nil {
		bench.Stop()
		os.RemoveAll(bench.Home)
	}
	os.Exit(code)
}

// runWorkerProcess is a Kiln worker in a child process, so a test can kill it
// with SIGKILL like a crashed machine.
func runWorkerProcess() error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	c, err := client.Dial(client.Options{HostPort: os.Getenv(envAddress), Namespace: "default"})
	if err != nil {
		return err
	}
	defer c.Close()
	acts, closeActs, err := worker.OpenActivities(ctx, c, worker.Config{Home: os.Getenv(envHome), TrainerImage: trainerImage()})
	if err != nil {
		return err
	}
	defer closeActs()
	w := worker.New(c, acts, worker.Options{})
	if marker := os.Getenv(envBlockShard); marker != "" {
		w.RegisterActivityWithOptions(blockingScoreShard(marker), activity.RegisterOptions{Name: "ScoreShard", DisableAlreadyRegisteredCheck: true})
	}
	if err := w.Start(); err != nil {
		return err
	}
	fmt.Println("worker started")
	<-ctx.Done()
	w.Stop()
	return nil
}

// blockingScoreShard is ScoreShard for a worker that a test kills inside a
// shard: it scores the shard's parts like ScoreShard, but once it has
// written one new part of a shard with more to do it writes marker and
// stops there, heartbeating, until the process is killed. The kill then
// always lands inside a shard, whose next attempt must resume it.
func blockingScoreShard(marker string) func(context.Context, activities.ScoreShardInput) (scorer.ShardResult, error) {
	return func(ctx context.Context, in activities.ScoreShardInput) (scorer.ShardResult, error) {
		p, err := scorer.LoadPlan(in.Staging)
		if err != nil {
			return scorer.ShardResult{}, err
		}
		m, err := model.Load(p.BundleDir)
		if err != nil {
			return scorer.ShardResult{}, err
		}
		return p.RunShard(ctx, m, in.Shard, func(sp scorer.ShardProgress) {
			if sp.PartsDone > sp.Skipped && sp.PartsDone < sp.Parts {
				_ = os.WriteFile(marker, fmt.Appendf(nil, "shard %d: %d of %d parts\n", in.Shard, sp.PartsDone, sp.Parts), 0o644)
				for {
					activity.RecordHeartbeat(ctx, sp)
					time.Sleep(time.Second)
				}
			}
		})
	}
}

// startKilnProcess runs the kiln command line with args in a child
// process (this test binary), with env added to the environment. Its
// output goes to the file log.
func startKilnProcess(t *testing.T, log string, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envCLI+"="+strings.Join(args, "\x1f")), env...)
	f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting kiln %s: %v", args[0], err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	return cmd
}

// startWorkerProcess starts this test binary as a worker process.
// env adds NAME=value settings (e.g. envBlockShard).
func startWorkerProcess(t *testing.T, address, home string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), envWorker+"=1", envAddress+"="+address, envHome+"="+home), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting worker process: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	return cmd
}
