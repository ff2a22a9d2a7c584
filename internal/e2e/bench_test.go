package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/temporaltest"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/workflows"
)

// BenchmarkPipelineSteps measures the wall time per step of a pipeline of 9
// sequential no-op steps on the embedded Temporal server: the engine's
// overhead per step (scheduling, the activity round trip, persistence in
// SQLite, the workflow task that starts the next step), plus the run's one
// validation activity spread over its 9 steps.
func BenchmarkPipelineSteps(b *testing.B) {
	const steps = 9
	var spec strings.Builder
	spec.WriteString("apiVersion: kiln/v1\nkind: Pipeline\nname: bench\nsteps:\n")
	for i := 0; i < steps; i++ {
		fmt.Fprintf(&spec, "  - {name: s%d, uses: noop", i)
		if i > 0 {
			fmt.Fprintf(&spec, ", needs: [s%d]", i-1)
		}
		spec.WriteString("}\n")
	}
	st := benchStack(b)
	in := workflows.PipelineInput{Spec: activities.ValidateInput{SpecText: spec.String(), SpecFile: "bench.yaml", SpecDir: b.TempDir()}}
	execPipeline(b, st, in) // warm up
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		execPipeline(b, st, in)
	}
	b.StopTimer()
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N)/steps, "ms/step")
}

// BenchmarkForeach measures a foreach fan-out of no-op items (parallelism
// 64) on the embedded server: the time for the whole step, and per item.
func BenchmarkForeach(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			st := benchStack(b)
			var total time.Duration
			for i := 0; i < b.N; i++ {
				rs, d := runForeach(b, st, n, 64)
				if ref := rs.Step("each").Artifacts.Foreach; ref == nil || ref.Succeeded != n {
					b.Fatalf("foreach: %+v", ref)
				}
				total += d
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/run")
			b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N)/float64(n), "ms/item")
		})
	}
}

// execPipeline runs a pipeline workflow on the stack and waits for it.
func execPipeline(tb testing.TB, st *devstack.Stack, in workflows.PipelineInput) workflows.RunStatus {
	tb.Helper()
	wr, err := st.Client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
		ID: fmt.Sprintf("pipeline/bench/%d", time.Now().UnixNano()), TaskQueue: "kiln",
	}, activities.WorkflowPipeline, in)
	if err != nil {
		tb.Fatal(err)
	}
	var rs workflows.RunStatus
	if err := wr.Get(context.Background(), &rs); err != nil {
		tb.Fatal(err)
	}
	return rs
}

// Go calls a benchmark function once per b.N round; the rounds share one
// stack, since two embedded Temporal servers in one process slow each other.
var (
	benchOnce sync.Once
	bench     *devstack.Stack
	benchErr  error
)

func benchStack(b *testing.B) *devstack.Stack {
	benchOnce.Do(func() {
		home, err := os.MkdirTemp("", "kiln-bench-")
		if err != nil {
			benchErr = err
			return
		}
		bench, benchErr = devstack.Start(context.Background(), devstack.Options{Home: home, Ephemeral: true, NoServer: true})
	})
	if benchErr != nil {
		b.Fatal(benchErr)
	}
	return bench
}

func noopActivity(context.Context) error { return nil }

// nineNoops is the baseline: nine sequential no-op activities, no Kiln.
func nineNoops(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	for i := 0; i < 9; i++ {
		if err := workflow.ExecuteActivity(ctx, noopActivity).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkTemporalBaseline runs nineNoops, a plain Temporal workflow, on
// the embedded server as Kiln configures it ("kiln") and on the Temporal
// server's stock test configuration ("stock"), to compare with
// BenchmarkPipelineSteps in the same run.
func BenchmarkTemporalBaseline(b *testing.B) {
	b.Run("kiln", func(b *testing.B) {
		st := benchStack(b)
		w := sdkworker.New(st.Client, "baseline", sdkworker.Options{})
		w.RegisterWorkflow(nineNoops)
		w.RegisterActivity(noopActivity)
		if err := w.Start(); err != nil {
			b.Fatal(err)
		}
		defer w.Stop()
		baseline(b, st.Client, "baseline")
	})
	b.Run("stock", func(b *testing.B) {
		ts := temporaltest.NewServer()
		defer ts.Stop()
		ts.NewWorker("baseline", func(r sdkworker.Registry) {
			r.RegisterWorkflow(nineNoops)
			r.RegisterActivity(noopActivity)
		})
		baseline(b, ts.GetDefaultClient(), "baseline")
	})
}

func baseline(b *testing.B, c client.Client, queue string) {
	run := func() time.Duration {
		start := time.Now()
		wr, err := c.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{ID: fmt.Sprintf("baseline-%d", time.Now().UnixNano()), TaskQueue: queue}, nineNoops)
		if err != nil {
			b.Fatal(err)
		}
		if err := wr.Get(context.Background(), nil); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	run()
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		total += run()
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N)/9, "ms/step")
}

// BenchmarkConcurrentRuns starts 200 small pipelines (3 sequential noop
// steps) at once on the embedded server and waits for all: the load of
// issue 16 on one machine. It reports runs per second over the whole burst
// and the p50 and p99 of each run's time from its start to its end.
func BenchmarkConcurrentRuns(b *testing.B) {
	const runs = 200
	spec := "apiVersion: kiln/v1\nkind: Pipeline\nname: load\nsteps:\n" +
		"  - {name: a, uses: noop}\n  - {name: b, uses: noop, needs: [a]}\n  - {name: c, uses: noop, needs: [b]}\n"
	st := benchStack(b)
	in := workflows.PipelineInput{Spec: activities.ValidateInput{SpecText: spec, SpecFile: "load.yaml", SpecDir: b.TempDir()}}
	execPipeline(b, st, in) // warm up
	var all []time.Duration
	var wall time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		durs := make([]time.Duration, runs)
		errs := make(chan error, runs)
		var wg sync.WaitGroup
		start := time.Now()
		for r := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				wr, err := st.Client.ExecuteWorkflow(context.Background(), client.StartWorkflowOptions{
					ID: fmt.Sprintf("pipeline/load/%d-%d-%d", time.Now().UnixNano(), i, r), TaskQueue: "kiln",
				}, activities.WorkflowPipeline, in)
				if err == nil {
					var rs workflows.RunStatus
					if err = wr.Get(context.Background(), &rs); err == nil && rs.Status != workflows.StatusCompleted {
						err = fmt.Errorf("run %s: %s", rs.WorkflowID, rs.Status)
					}
				}
				durs[r] = time.Since(t0)
				errs <- err
			}()
		}
		wg.Wait()
		wall += time.Since(start)
		close(errs)
		for err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		all = append(all, durs...)
	}
	b.StopTimer()
	slices.Sort(all)
	b.ReportMetric(float64(runs*b.N)/wall.Seconds(), "runs/s")
	b.ReportMetric(all[len(all)/2].Seconds(), "p50-s")
	b.ReportMetric(all[len(all)*99/100].Seconds(), "p99-s")
}
