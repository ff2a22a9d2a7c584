//go:build unix && !kilnedge

package serving

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
)

// startLogProc starts the log writer child argv at the lowest priority
// (lowerPriority), with the files it writes reported to written.
func startLogProc(argv []string, log *slog.Logger, written func(model, path string)) (*logProc, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the request log writer %s: %w", argv[0], err)
	}
	if err := lowerPriority(cmd.Process.Pid); err != nil {
		log.Warn("request log writer: could not lower its priority", "error", err)
	}
	return newLogProc(in, out, cmd.Wait, written), nil
}
