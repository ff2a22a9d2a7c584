package workflows

import (
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
)

// Custom search attributes Kiln sets on its workflows, so runs can be found in
// the Temporal UI and by `kiln runs list`.
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
	// AttrTrigger says what started a run: "cli" or "drift".
	AttrTrigger = temporal.NewSearchAttributeKeyKeyword("KilnTrigger")
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
	}
}
