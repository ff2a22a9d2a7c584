// Package worker builds a Temporal worker that runs Kiln's workflows and
// activities on one task queue. `kiln dev` runs one in-process; `kiln worker`
// runs one against any Temporal cluster.
package worker

import (
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/workflows"
)

// DefaultTaskQueue is the task queue Kiln uses unless told otherwise.
const DefaultTaskQueue = "kiln"

// heartbeatThrottle bounds how long activity heartbeats (and so cancellation
// requests) wait to be exchanged with the server.
const heartbeatThrottle = 2 * time.Second

// Options configures a worker.
type Options struct {
	// TaskQueue to poll; default DefaultTaskQueue.
	TaskQueue string
	// MaxConcurrentActivities bounds activities running at once; 0 means 16.
	MaxConcurrentActivities int
	// Deployment and BuildID, when both set, register the worker as
	// version BuildID of the Temporal Worker Deployment Deployment (Worker
	// Versioning; deploy/README.md has the upgrade procedure). Kiln's
	// workflows are auto-upgrade: a new current version takes over open
	// runs at their next workflow task, which workflow.GetVersion patches
	// and the replay tests keep safe. Empty: an unversioned worker.
	Deployment, BuildID string
	// ActivitiesOnly registers the activities and no workflow: a worker on
	// a step queue (a spec step's `queue: train`) runs that queue's
	// activities while the run's workflows stay on the run's queue.
	ActivitiesOnly bool
}

// New returns a worker (not yet started) with every Kiln workflow registered
// under its stable name and every method of acts registered as an activity.
func New(c client.Client, acts *activities.Activities, opts Options) sdkworker.Worker {
	if opts.TaskQueue == "" {
		opts.TaskQueue = DefaultTaskQueue
	}
	if opts.MaxConcurrentActivities == 0 {
		opts.MaxConcurrentActivities = 16
	}
	var deployment sdkworker.DeploymentOptions
	if opts.Deployment != "" && opts.BuildID != "" {
		deployment = sdkworker.DeploymentOptions{
			UseVersioning:             true,
			Version:                   sdkworker.WorkerDeploymentVersion{DeploymentName: opts.Deployment, BuildID: opts.BuildID},
			DefaultVersioningBehavior: workflow.VersioningBehaviorAutoUpgrade,
		}
	}
	w := sdkworker.New(c, opts.TaskQueue, sdkworker.Options{
		DeploymentOptions:                  deployment,
		MaxConcurrentActivityExecutionSize: opts.MaxConcurrentActivities,
		// Cancellation reaches an activity only with a heartbeat's answer, and
		// the SDK otherwise sends heartbeats at most every 80% of the heartbeat
		// timeout: `kiln runs cancel` would wait up to 12 s to stop a training
		// container. Two seconds keeps cancellation prompt for little traffic.
		DefaultHeartbeatThrottleInterval: heartbeatThrottle,
		MaxHeartbeatThrottleInterval:     heartbeatThrottle,
	})
	if opts.ActivitiesOnly {
		w.RegisterActivityWithOptions(acts, activity.RegisterOptions{SkipInvalidStructFunctions: true})
		return w
	}
	Register(w, acts)
	return w
}

// Register registers Kiln's workflows and activities on any registry (a
// worker, or a test environment).
func Register(r sdkworker.Registry, acts *activities.Activities) {
	r.RegisterWorkflowWithOptions(workflows.PipelineWorkflow, workflow.RegisterOptions{Name: activities.WorkflowPipeline})
	r.RegisterWorkflowWithOptions(workflows.CanaryWorkflow, workflow.RegisterOptions{Name: activities.WorkflowCanary})
	r.RegisterWorkflowWithOptions(workflows.MonitorWorkflow, workflow.RegisterOptions{Name: activities.WorkflowMonitor})
	r.RegisterWorkflowWithOptions(workflows.RetrainWorkflow, workflow.RegisterOptions{Name: activities.WorkflowRetrain})
	r.RegisterWorkflowWithOptions(workflows.ForeachWorkflow, workflow.RegisterOptions{Name: activities.WorkflowForeach})
	r.RegisterWorkflowWithOptions(workflows.PromoteWorkflow, workflow.RegisterOptions{Name: activities.WorkflowPromote})
	r.RegisterWorkflowWithOptions(workflows.ScoreWorkflow, workflow.RegisterOptions{Name: activities.WorkflowScore})
	r.RegisterWorkflowWithOptions(workflows.ScoreShardsWorkflow, workflow.RegisterOptions{Name: activities.WorkflowScoreShards})
	r.RegisterWorkflowWithOptions(workflows.ScheduledRunWorkflow, workflow.RegisterOptions{Name: activities.WorkflowScheduledRun})
	r.RegisterWorkflowWithOptions(workflows.DeadlineWorkflow, workflow.RegisterOptions{Name: activities.WorkflowDeadline})
	r.RegisterActivityWithOptions(acts, activity.RegisterOptions{SkipInvalidStructFunctions: true})
}
