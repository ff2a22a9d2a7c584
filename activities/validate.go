package activities

import (
	"context"
	"errors"

	"github.com/kiln-ml/kiln/pipelines"
)

// Validate decodes and validates a spec with exactly the validator `kiln
// validate` uses, then fills the defaults that depend on this worker (the
// model server of deploy steps). An invalid spec is not retried.
func (a *Activities) Validate(ctx context.Context, in ValidateInput) (ValidateOutput, error) {
	spec, err := pipelines.Parse(in.SpecFile, []byte(in.SpecText), in.Overrides)
	if err != nil {
		var probs pipelines.Problems
		if errors.As(err, &probs) {
			return ValidateOutput{}, invalid("%s", probs.Error())
		}
		return ValidateOutput{}, invalid("%v", err)
	}
	spec.File, spec.Dir = in.SpecFile, in.SpecDir
	for i := range spec.Steps {
		if d := spec.Steps[i].Deploy; d != nil && len(d.AllServers()) == 0 {
			servers := a.modelServers()
			if len(servers) == 0 {
				return ValidateOutput{}, invalid("step %q: no model server: set deploy.server in the spec or start the worker with --model-server", spec.Steps[i].Name)
			}
			d.Server = servers[0]
			if len(servers) > 1 {
				d.Servers = servers
			}
		}
	}
	return ValidateOutput{Spec: *spec}, nil
}
