package activities

import (
	"context"
	"fmt"
	"time"
)

// Noop does nothing: it sleeps for the step's noop.sleep (0 by default),
// heartbeating so that a cancellation ends the sleep at once, and returns a
// summary naming the foreach item, if any. It is never cached.
func (a *Activities) Noop(ctx context.Context, in StepInput) (StepOutput, error) {
	var sleep time.Duration
	if cfg := in.Step.Noop; cfg != nil {
		sleep = cfg.Sleep.D()
	}
	if sleep < 0 {
		return StepOutput{}, invalid("step %q: negative sleep %s", in.Step.Name, sleep)
	}
	summary := "nothing done"
	if sleep > 0 {
		pl := startPulse(ctx, Progress{Msg: fmt.Sprintf("sleeping %s", sleep)})
		defer pl.stop()
		t := time.NewTimer(sleep)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return StepOutput{}, fmt.Errorf("step %q: sleep interrupted: %w", in.Step.Name, ctx.Err())
		case <-t.C:
		}
		summary = "slept " + sleep.String()
	}
	if it := in.Item; it != nil {
		summary += fmt.Sprintf(" (item %d: %s)", it.Index, it.Value)
	}
	return StepOutput{Summary: summary}, nil
}
