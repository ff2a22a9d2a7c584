// Package e2e holds Kiln's end-to-end tests: real Temporal (the embedded
// server), real Docker containers, real Parquet files, a real model server
// over HTTP and a real SQLite registry. They are skipped with -short.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"go.temporal.io/sdk/client"

	"github.com/kiln-ml/kiln/worker"
)

// Environment of a worker subprocess (see runWorkerProcess).
const (
	envWorker  = "KILN_E2E_WORKER"
	envAddress = "KILN_E2E_ADDRESS"
	envHome    = "KILN_E2E_HOME"
)

// repoRoot is the repository's root directory.
var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}()

func TestMain(m *testing.M) {
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
	if err := w.Start(); err != nil {
		return err
	}
	fmt.Println("worker started")
	<-ctx.Done()
	w.Stop()
	return nil
}

// startWorkerProcess starts this test binary as a worker process.
func startWorkerProcess(t *testing.T, address, home string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envWorker+"=1", envAddress+"="+address, envHome+"="+home)
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
