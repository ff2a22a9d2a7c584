//go:build !unix || kilnedge

package serving

import (
	"errors"
	"log/slog"
)

// startLogProc is unavailable here: the request log is written in the
// server process.
func startLogProc([]string, *slog.Logger, func(model, path string)) (*logProc, error) {
	return nil, errors.New("no request log writer process on this platform")
}
