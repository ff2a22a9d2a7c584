package devserver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func noopWorkflow(ctx workflow.Context) (string, error) { return "done", nil }

// TestRestartRunsPromptly: a server restarted on its database file runs a
// workflow at once. It used to wait about 50 s: each start picks new
// membership ports while the saved cluster membership still named the old
// ones, and ringpop could not bootstrap until those rows expired.
func TestRestartRunsPromptly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "temporal.db")
	for i := range 2 {
		s, err := Start(ctx, Options{DatabaseFile: db, IP: "127.0.0.1", Namespace: "default"})
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		c, err := client.Dial(client.Options{HostPort: s.Address(), Namespace: "default", Logger: quietLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		w := worker.New(c, "restart-test", worker.Options{})
		w.RegisterWorkflow(noopWorkflow)
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		// Bounded well below the old 50 s wait, well above a slow machine's
		// normal start; the elapsed time is logged, not asserted.
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		start := time.Now()
		run, err := c.ExecuteWorkflow(rctx, client.StartWorkflowOptions{TaskQueue: "restart-test"}, noopWorkflow)
		var out string
		if err == nil {
			err = run.Get(rctx, &out)
		}
		cancel()
		if err != nil || out != "done" {
			t.Fatalf("start %d: workflow: %q, %v (after %s)", i, out, err, time.Since(start).Round(time.Millisecond))
		}
		t.Logf("start %d: a workflow ran in %s", i, time.Since(start).Round(time.Millisecond))
		w.Stop()
		c.Close()
		if err := s.Stop(); err != nil {
			t.Errorf("stop %d: %v", i, err)
		}
	}
}
