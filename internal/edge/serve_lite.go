//go:build kilnlite

package edge

import (
	"context"
	"errors"
	"io"

	"github.com/kiln-ml/kiln/internal/model"
)

// serve is not in a lite predictor (built with -tags kilnlite, kiln export
// --lite), which links no HTTP server.
func serve(ctx context.Context, addr string, h Header, m *model.Model, stderr io.Writer) error {
	return &UsageError{errors.New("this predictor was exported with --lite: it has no --serve (export without --lite to serve over HTTP)")}
}
