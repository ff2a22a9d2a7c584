// Package workflows holds Kiln's Temporal workflows:
//
//   - PipelineWorkflow (ID pipeline/<name>/<run>) interprets a pipeline spec's
//     step graph, running independent steps in parallel;
//   - CanaryWorkflow (ID canary/<model>) moves traffic from the stable to a new
//     model version in steps, analyses each step and promotes or rolls back;
//   - MonitorWorkflow (ID monitor/<model>) compares served traffic with the
//     training profile and starts a retrain on drift, with a cooldown;
//   - RetrainWorkflow (ID retrain/<model>) runs the pipeline again; it is
//     started with signal-with-start so drift can never start two at once.
//
// Workflow code is deterministic: it reads time only through workflow.Now,
// never iterates over maps and does no I/O; activities (package activities)
// do the work and exchange artifact URIs, never row data.
package workflows
