//go:build !wasip1 && !kilnlite

package edge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/serving"
)

// serve serves m with the model server's routes (package serving, the code
// `kiln serve` runs) at addr until ctx ends.
func serve(ctx context.Context, addr string, h Header, m *model.Model, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	srv := serving.New(serving.Options{Logger: log})
	defer srv.Close()
	uri := "embedded:" + h.BundleSHA256
	srv.Preload(uri, m)
	version := h.Version
	if version == 0 {
		version = 1 // a bundle exported from a directory has no registry version
	}
	if err := srv.SetDeployment(h.Model, serving.Deployment{Stable: serving.Target{Version: version, BundleURI: uri}}); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--serve: %w", err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "serving %s:%d on http://%s (POST /v1/models/%s:predict, /v2/models/%s/infer)\n", h.Model, version, ln.Addr(), h.Model, h.Model)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
