package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/serving"
)

func newServeCmd(cfg *Config) *cobra.Command {
	var addr, token, restore string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve registered models over HTTP (predictions, canary split, metrics)",
		Long: `Run a model server. On start it serves, as stable, the version each model's
--restore alias points to; deploy steps (canary workflows) then change what it
serves through the admin routes, which need the bearer token.

Routes:
  POST /v1/models/NAME:predict     {"instances": [{"col": value, ...}]}
  POST /v2/models/NAME/infer       Open Inference Protocol v2
  GET  /v1/models                  what is served, with the traffic split
  GET  /metrics                    Prometheus
  PUT  /admin/v1/models/NAME/deployment, GET /admin/v1/models/NAME/stats (token)

Every served row is logged to $KILN_HOME/requests/NAME/*.parquet for drift monitoring.`,
		Example: `  KILN_ADMIN_TOKEN=s3cret kiln serve --addr 127.0.0.1:8080
  curl -s localhost:8080/v1/models/churn:predict -d '{"instances":[{"tenure":3,"plan":"basic"}]}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			fromEnv(&token, "KILN_ADMIN_TOKEN")
			if token == "" {
				token = readToken(cfg.path("admin-token"))
			}
			if token == "" {
				return &exitError{code: 2, err: errors.New("no admin token: set KILN_ADMIN_TOKEN or --admin-token (deploy steps need it)")}
			}
			srv := serving.New(serving.Options{AdminToken: token, RequestLogDir: cfg.path("requests")})
			defer srv.Close()
			if restore != "" {
				// A missing default SQLite file means nothing was registered
				// yet; a --registry target is always opened.
				if _, err := os.Stat(cfg.path("registry.db")); err == nil || cfg.Registry != "" {
					reg, err := registry.Open(ctx, cfg.registryTarget())
					if err != nil {
						return err
					}
					err = srv.Restore(ctx, reg, restore)
					reg.Close()
					if err != nil {
						return err
					}
				}
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("listening on %s: %w", addr, err)
			}
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = hs.Shutdown(sctx)
			}()
			abs, _ := filepath.Abs(cfg.path("requests"))
			fmt.Fprintf(cfg.stdout, "Kiln model server on http://%s (request logs in %s)\n", ln.Addr(), abs)
			if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			// Serve returns as soon as Shutdown starts; the deferred Close must
			// flush the request log only after in-flight requests have finished.
			<-drained
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "listen address")
	f.StringVar(&token, "admin-token", "", "bearer token of the admin routes (env KILN_ADMIN_TOKEN; default: $KILN_HOME/admin-token)")
	f.StringVar(&restore, "restore", "production", "serve each model's version at this alias on start (empty: none)")
	return cmd
}
