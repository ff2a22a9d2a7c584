package activities

import "strings"

// Workflow ID prefixes. IDs say what they are.
const (
	prefixPipeline = "pipeline/"
	prefixCanary   = "canary/"
	prefixMonitor  = "monitor/"
	prefixRetrain  = "retrain/"
	prefixSchedule = "schedule/"
	prefixDeadline = "deadline/"
)

// ScheduleActionID is the workflow ID a schedule's action starts runs with:
// schedule/<name>; Temporal appends "-<nominal time>" to each run's.
func ScheduleActionID(schedule string) string { return prefixSchedule + schedule }

// DeadlineID is the workflow ID of a schedule's deadline watcher: deadline/<name>.
func DeadlineID(schedule string) string { return prefixDeadline + schedule }

// PipelineID is the workflow ID of a pipeline run: pipeline/<name>/<run>.
func PipelineID(pipeline, run string) string { return prefixPipeline + pipeline + "/" + run }

// CanaryID is the workflow ID of a model's canary rollout: canary/<model>.
func CanaryID(model string) string { return prefixCanary + model }

// MonitorID is the workflow ID of a model's monitor: monitor/<model>.
func MonitorID(model string) string { return prefixMonitor + model }

// RetrainID is the workflow ID of a model's retrain: retrain/<model>.
func RetrainID(model string) string { return prefixRetrain + model }

// SplitPipelineID splits pipeline/<name>/<run> into name and run.
func SplitPipelineID(id string) (pipeline, run string, ok bool) {
	rest, ok := strings.CutPrefix(id, prefixPipeline)
	if !ok {
		return "", "", false
	}
	pipeline, run, ok = strings.Cut(rest, "/")
	return pipeline, run, ok && pipeline != "" && run != ""
}
