//go:build wasip1 && !kilnlite

package edge

import (
	"context"
	"errors"
	"io"

	"github.com/kiln-ml/kiln/internal/model"
)

// serve is not available in a WASI module: WASI preview 1 cannot listen.
func serve(ctx context.Context, addr string, h Header, m *model.Model, stderr io.Writer) error {
	return &UsageError{errors.New("--serve is not available in the wasm build (WASI cannot listen on a socket); export for an OS/arch to serve")}
}
