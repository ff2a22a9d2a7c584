package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/workflows"
)

func TestDebugHist(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "tiny.csv"), []byte("x,y\n1,0\n2,1\n3,0\n"), 0o644)
	spec := "apiVersion: kiln/v1\nkind: Pipeline\nname: bench\nsteps:\n  - {name: s0, uses: ingest, with: {source: tiny.csv}}\n"
	for i := 1; i < 9; i++ {
		spec += fmt.Sprintf("  - {name: s%d, uses: ingest, with: {source: tiny.csv}, needs: [s%d]}\n", i, i-1)
	}
	st, err := devstack.Start(context.Background(), devstack.Options{Home: t.TempDir(), Ephemeral: false, NoServer: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Stop()
	in := workflows.PipelineInput{Spec: activities.ValidateInput{SpecText: spec, SpecFile: "bench.yaml", SpecDir: dir}}
	for i := 0; i < 8; i++ {
		id := fmt.Sprintf("pipeline/bench/%d", i)
		start := time.Now()
		wr, _ := st.Client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: id, TaskQueue: "kiln"}, activities.WorkflowPipeline, in)
		var rs workflows.RunStatus
		wr.Get(context.Background(), &rs)
		fmt.Println("run", i, time.Since(start))
		if i == 99 {
			iter := st.Client.GetWorkflowHistory(context.Background(), id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			var prev time.Time
			for iter.HasNext() {
				ev, _ := iter.Next()
				ts := ev.GetEventTime().AsTime()
				d := time.Duration(0)
				if !prev.IsZero() {
					d = ts.Sub(prev)
				}
				prev = ts
				fmt.Printf("  %3d %-40s +%s\n", ev.GetEventId(), ev.GetEventType(), d)
			}
		}
	}
}
