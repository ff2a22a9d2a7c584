package containers

import (
	"context"
	"fmt"
	"log/slog"
)

// Detect returns a Docker runtime when the engine answers, and otherwise a
// Process runtime for procOpts, logging which one it chose. It fails only
// when there is neither an engine nor any process binary. A *Docker result
// holds a client connection: Close it when done.
func Detect(ctx context.Context, dockerOpts DockerOptions, procOpts ProcessOptions) (Runtime, error) {
	d, err := NewDocker(ctx, dockerOpts)
	if err == nil {
		slog.InfoContext(ctx, "containers: using docker runtime",
			"host", d.cli.DaemonHost(), "api_version", d.cli.ClientVersion())
		return d, nil
	}
	if len(procOpts.Binaries) == 0 {
		return nil, fmt.Errorf("no container runtime: %w, and no process binaries are configured", err)
	}
	slog.InfoContext(ctx, "containers: docker engine unreachable, using process runtime (no sandbox, no resource limits)",
		"err", err, "binaries", len(procOpts.Binaries))
	return NewProcess(procOpts), nil
}
