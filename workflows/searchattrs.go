package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/kiln-ml/kiln/activities"
)

// Kiln's custom search attributes (defined in package activities, whose
// activities set some of them too).
var (
	AttrPipeline     = activities.AttrPipeline
	AttrModel        = activities.AttrModel
	AttrModelVersion = activities.AttrModelVersion
	AttrDatasetHash  = activities.AttrDatasetHash
	AttrSpecHash     = activities.AttrSpecHash
	AttrTrigger      = activities.AttrTrigger
	AttrSchedule     = activities.AttrSchedule
	AttrLogicalDate  = activities.AttrLogicalDate
)

// SearchAttributes lists Kiln's custom search attributes by name and type, for
// registering them on a namespace (`kiln dev` does this on start).
func SearchAttributes() map[string]enumspb.IndexedValueType {
	return map[string]enumspb.IndexedValueType{
		AttrPipeline.GetName():     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrModel.GetName():        enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrModelVersion.GetName(): enumspb.INDEXED_VALUE_TYPE_INT,
		AttrDatasetHash.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrSpecHash.GetName():     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrTrigger.GetName():      enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrSchedule.GetName():     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		AttrLogicalDate.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	}
}
