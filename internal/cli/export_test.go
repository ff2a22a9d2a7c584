package cli

import (
	"io"

	"github.com/spf13/cobra"
	historypb "go.temporal.io/api/history/v1"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/workflows"
)

// NewRootCommand builds the kiln command tree, for tests that walk it.
func NewRootCommand() *cobra.Command {
	return newRoot(&Config{stdout: io.Discard, stderr: io.Discard})
}

// StepCells returns the STATUS and OUTPUT cells of step s of run wid in
// kiln runs show.
func StepCells(wid string, s workflows.StepStatus) (status, output string) {
	return stepLabel(s), stepOutput(wid, s)
}

// ProgressLine is the line kiln run --wait prints for s.
func ProgressLine(wid string, s workflows.StepStatus) string { return progressLine(wid, s) }

// ResumeFrom lists what kiln run --resume reuses of a run.
func ResumeFrom(wid string, st workflows.RunStatus) workflows.ResumeFrom { return resumeFrom(wid, st) }

// ResumeSpec is the spec kiln run --resume runs without a SPEC.
func ResumeSpec(prev activities.ValidateInput, overrides map[string]string) activities.ValidateInput {
	return resumeSpec(prev, overrides)
}

// StartInput decodes a pipeline run's start input from its first event.
func StartInput(ev *historypb.HistoryEvent) (workflows.PipelineInput, error) { return startInput(ev) }

// PrintRun prints st as kiln runs show does.
func PrintRun(w io.Writer, st workflows.RunStatus) {
	printRun(&Config{stdout: w, UIURL: "http://ui", Namespace: "default"}, st, "http://ui/run")
}

// CompareRuns is compareRuns, for tests.
func CompareRuns(ids []string, runs []workflows.RunStatus) Comparison { return compareRuns(ids, runs) }
