package activities

import "go.temporal.io/sdk/temporal"

// Custom search attributes Kiln sets on its workflows, so runs can be found in
// the Temporal UI and by `kiln runs list`. workflows.SearchAttributes lists
// them for registration.
var (
	// AttrPipeline is the pipeline name.
	AttrPipeline = temporal.NewSearchAttributeKeyKeyword("KilnPipeline")
	// AttrModel is the registered model's name.
	AttrModel = temporal.NewSearchAttributeKeyKeyword("KilnModel")
	// AttrModelVersion is the registered model version.
	AttrModelVersion = temporal.NewSearchAttributeKeyInt64("KilnModelVersion")
	// AttrDatasetHash is the ingested dataset's SHA-256.
	AttrDatasetHash = temporal.NewSearchAttributeKeyKeyword("KilnDatasetHash")
	// AttrSpecHash is the spec text's SHA-256.
	AttrSpecHash = temporal.NewSearchAttributeKeyKeyword("KilnSpecHash")
	// AttrTrigger says what started a run: "cli", "drift", "schedule",
	// "backfill" or "trigger" (kiln schedules trigger).
	AttrTrigger = temporal.NewSearchAttributeKeyKeyword("KilnTrigger")
	// AttrSchedule names the schedule a run belongs to.
	AttrSchedule = temporal.NewSearchAttributeKeyKeyword("KilnSchedule")
	// AttrLogicalDate is a run's logical date (or logical time, for
	// schedules that fire more often than daily): its run key.
	AttrLogicalDate = temporal.NewSearchAttributeKeyKeyword("KilnLogicalDate")
	// AttrScheduledStartTime is Temporal's own attribute holding the
	// nominal time of a run started by a schedule.
	AttrScheduledStartTime = temporal.NewSearchAttributeKeyTime("TemporalScheduledStartTime")
)
