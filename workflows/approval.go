package workflows

// UpdateApprove is the Update that decides an approval step (kiln approve).
const UpdateApprove = "approve"

// ApproveInput decides one approval step.
type ApproveInput struct {
	// Step names the approval step.
	Step string `json:"step"`
	// Approve is true to approve, false to reject.
	Approve bool `json:"approve"`
	// Reason is required: it is kept in the history and shown by kiln runs show.
	Reason string `json:"reason"`
	// Actor is who decides; it must be one of the step's approvers when the
	// spec lists any.
	Actor string `json:"actor"`
}
