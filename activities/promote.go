package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kiln-ml/kiln/internal/registry"
)

// WorkflowPromote is the registered name of the promote workflow.
const WorkflowPromote = "PromoteWorkflow"

// prefixPromote starts promote workflow IDs.
const prefixPromote = "promote/"

// PromoteID is the workflow ID of the promotion (or rollback) of a model's
// alias: promote/<model>/<alias>. One runs at a time per model and alias.
func PromoteID(model, alias string) string { return prefixPromote + model + "/" + alias }

// PlanPromotionInput asks where a promotion or rollback would move an alias.
type PlanPromotionInput struct {
	Model string `json:"model"`
	Alias string `json:"alias"`
	// To is the version to promote; ignored when Rollback is set.
	To int64 `json:"to,omitempty"`
	// Rollback moves the alias back to the version it held before the
	// current one (see PreviousVersion).
	Rollback bool `json:"rollback,omitempty"`
}

// PlanPromotionOutput is the plan: the alias's current version, the target
// and whether the target's lineage requires an approval for the alias.
type PlanPromotionOutput struct {
	// Current is the alias's version now; 0 when it is not set.
	Current int64 `json:"current"`
	// To is the version the alias is to point at.
	To int64 `json:"to"`
	// NeedsApproval is true when To was registered with the alias in its
	// require_approval list and this is not a rollback.
	NeedsApproval bool `json:"needs_approval,omitempty"`
}

// PlanPromotion reads the alias and the target version and says what the
// promotion would do. A missing model or version, a rejected target or a
// rollback with no earlier version is a non-retryable error.
func (a *Activities) PlanPromotion(ctx context.Context, in PlanPromotionInput) (PlanPromotionOutput, error) {
	cur, _, err := a.Registry.Alias(ctx, in.Model, in.Alias)
	if err != nil {
		return PlanPromotionOutput{}, registryError(err, "reading %s@%s", in.Model, in.Alias)
	}
	out := PlanPromotionOutput{Current: cur, To: in.To}
	if in.Rollback {
		history, err := a.Registry.AliasHistory(ctx, in.Model, in.Alias)
		if err != nil {
			return PlanPromotionOutput{}, registryError(err, "reading the history of %s@%s", in.Model, in.Alias)
		}
		prev, ok := PreviousVersion(history)
		if !ok || cur == 0 {
			return PlanPromotionOutput{}, invalid("%s@%s has no earlier version to roll back to (kiln models history %s --alias %s)", in.Model, in.Alias, in.Model, in.Alias)
		}
		out.To = prev
	}
	v, err := a.Registry.Get(ctx, in.Model, out.To)
	if err != nil {
		return PlanPromotionOutput{}, registryError(err, "reading %s:%d", in.Model, out.To)
	}
	if v.Status == registry.StatusRejected {
		return PlanPromotionOutput{}, invalid("%s:%d is rejected (it failed its gate) and can never be %s", in.Model, out.To, in.Alias)
	}
	out.NeedsApproval = !in.Rollback && cur != out.To && slices.Contains(v.RequireApproval, in.Alias)
	return out, nil
}

// PreviousVersion returns the version an alias held before its current one,
// reading its history (oldest first) as a stack: a move to the version below
// the top pops (a rollback, or a manual move back), any other move pushes,
// and removing the alias empties the stack. So rolling back twice after
// v1→v2→v3 gives v2, then v1.
func PreviousVersion(history []registry.AliasEvent) (int64, bool) {
	var stack []int64
	for _, e := range history {
		switch {
		case e.To == 0:
			stack = stack[:0]
		case len(stack) >= 2 && stack[len(stack)-2] == e.To:
			stack = stack[:len(stack)-1]
		default:
			stack = append(stack, e.To)
		}
	}
	if len(stack) < 2 {
		return 0, false
	}
	return stack[len(stack)-2], true
}

// PromoteAliasInput moves an alias by compare-and-swap.
type PromoteAliasInput struct {
	Model string `json:"model"`
	Alias string `json:"alias"`
	// From is the version the alias must point at now (0: not set).
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Actor, Reason and WorkflowID go into the alias history.
	Actor      string `json:"actor"`
	Reason     string `json:"reason"`
	WorkflowID string `json:"workflow_id"`
}

// PromoteAliasOutput is the recorded move.
type PromoteAliasOutput struct {
	// Event is the alias history entry of the move.
	Event registry.AliasEvent `json:"event"`
	// Noop is true when the alias already pointed at To: an earlier attempt
	// of this activity moved it, or it was already there.
	Noop bool `json:"noop,omitempty"`
}

// PromoteAlias moves the alias from in.From to in.To, once: a retried
// attempt whose first attempt already moved it (the worker died before
// reporting) finds the alias at To and records nothing. If someone else
// moved the alias since the plan, the move is refused, not forced.
func (a *Activities) PromoteAlias(ctx context.Context, in PromoteAliasInput) (PromoteAliasOutput, error) {
	from := in.From
	ev, err := a.Registry.SetAlias(ctx, registry.AliasMove{
		Model: in.Model, Alias: in.Alias, To: in.To, From: &from,
		Actor: in.Actor, Reason: in.Reason, RunID: in.WorkflowID,
	})
	if errors.Is(err, registry.ErrConflict) {
		cur, ok, err2 := a.Registry.Alias(ctx, in.Model, in.Alias)
		if err2 == nil && ok && cur == in.To {
			return PromoteAliasOutput{Event: registry.AliasEvent{Model: in.Model, Alias: in.Alias, From: in.From, To: in.To, Noop: true}, Noop: true}, nil
		}
		return PromoteAliasOutput{}, invalid("%s@%s moved while this promotion ran (%v); check kiln models history %s --alias %s and promote again", in.Model, in.Alias, err, in.Model, in.Alias)
	}
	if err != nil {
		return PromoteAliasOutput{}, registryError(err, "moving %s@%s to version %d", in.Model, in.Alias, in.To)
	}
	return PromoteAliasOutput{Event: ev, Noop: ev.Noop}, nil
}

// registryError makes the registry's final answers (not found, rejected,
// invalid, conflict) non-retryable; anything else (a database error) is
// retried.
func registryError(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	for _, final := range []error{registry.ErrNotFound, registry.ErrRejected, registry.ErrInvalid, registry.ErrConflict} {
		if errors.Is(err, final) {
			return invalid("%s: %v", msg, err)
		}
	}
	return fmt.Errorf("%s: %w", msg, err)
}
