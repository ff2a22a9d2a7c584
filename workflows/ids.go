package workflows

import "github.com/kiln-ml/kiln/activities"

// Workflow IDs; see the activities package for their definitions.
var (
	PipelineID = activities.PipelineID
	CanaryID   = activities.CanaryID
	MonitorID  = activities.MonitorID
	RetrainID  = activities.RetrainID
)

// QueryStatus is the query every Kiln workflow answers with its live state
// (RunStatus, CanaryStatus or MonitorRequest).
const QueryStatus = "status"
