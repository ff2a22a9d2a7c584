package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/internal/serving/logship"
	"github.com/kiln-ml/kiln/internal/serving/restore"
	"github.com/kiln-ml/kiln/worker"
)

func newServeCmd(cfg *Config) *cobra.Command {
	var addr, grpcAddr, token, restoreAlias, httpsCert, httpsKey string
	var logInProcess, fastHTTP bool
	var gcPercent int
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve registered models over HTTP and gRPC (predictions, canary split, metrics)",
		Long: `Run a model server. On start it serves, as stable, the version each model's
--restore alias points to; deploy steps (canary workflows) then change what it
serves through the admin routes, which need the bearer token.

Routes (docs/serving.md):
  POST /v1/models/NAME:predict     KServe v1: {"instances": [{"col": value, ...}]}
  GET  /v1/models, /v1/models/NAME what is served, with the traffic split; model ready
  POST /v2/models/NAME[/versions/V]/infer
                                   Open Inference Protocol v2: {"inputs": [{"name": "tenure",
                                   "shape": [1], "datatype": "FP64", "data": [3]}, ...]},
                                   one input per column (docs/serving.md)
  GET  /v2, /v2/health/live|ready, /v2/models/NAME[/versions/V][/ready]
                                   v2 server metadata, health, model metadata, model ready
  GET  /metrics                    Prometheus
  PUT  /admin/v1/models/NAME/deployment, GET /admin/v1/models/NAME/stats (token)

With --grpc-addr the Open Inference Protocol v2 is also served over gRPC
(inference.GRPCInferenceService, KServe's grpc_predict_v2.proto, with server
reflection) on its own listener; empty (the default) serves no gRPC.

With --https-cert and --https-key the server speaks TLS 1.2+ only (HTTP/2 and
HTTP/1.1; gRPC too). Workers calling it for deploy steps (--model-server
https://...) verify its certificate against the system's roots, or the file
SSL_CERT_FILE names.

Every served row is logged to $KILN_HOME/requests/NAME/*.parquet for drift monitoring.`,
		Example: `  KILN_ADMIN_TOKEN=s3cret kiln serve --addr 127.0.0.1:8080 --grpc-addr 127.0.0.1:8081
  curl -s localhost:8080/v1/models/churn:predict -d '{"instances":[{"tenure":3,"monthly_charges":70.5,
    "total_charges":211.5,"plan":"basic","contract":"month-to-month","support_calls":2,"region":"east",
    "paperless":true}]}'
  grpcurl -plaintext -d '{"name":"churn"}' localhost:8081 inference.GRPCInferenceService/ModelMetadata`,
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
			if os.Getenv("GOGC") == "" && gcPercent > 0 {
				// The server's live heap is small (bundles, log buffers):
				// collecting at 5x it instead of 2x makes the collector run
				// a fifth as often, and its work on a one-core server shows
				// up as tail latency (BENCHMARKS.md: p99 10.8 -> 6.6 ms).
				debug.SetGCPercent(gcPercent)
			}
			tlsCfg, err := serveTLS(httpsCert, httpsKey)
			if err != nil {
				return err
			}
			sopts := serving.Options{AdminToken: token, RequestLogDir: cfg.path("requests")}
			if !logInProcess && !testing.Testing() {
				// The request log's Parquet encoding runs in a child at
				// idle priority, off the requests' core time
				// (serving/logproc.go). Not from a test binary, which is
				// not kiln and would run its tests instead.
				if exe, err := os.Executable(); err == nil {
					sopts.LogWriter = []string{exe, "serve-log-writer"}
				}
			}
			if cfg.Artifacts != "" {
				// Bundles published to an object store are fetched into
				// this server's cache the first time they are deployed.
				store, err := cfg.openStore(ctx)
				if err != nil {
					return err
				}
				defer store.Close()
				sopts.Bundles = func(uri string) (string, error) { return store.Local(ctx, uri) }
				// Request logs go to the store too, for the monitors and
				// canaries of workers on other machines. The shipper
				// outlives ctx: the server's last flush is shipped too.
				id, err := worker.HomeID(cfg.Home)
				if err != nil {
					return err
				}
				shipper := logship.Start(context.WithoutCancel(ctx), store, cfg.path("requests"), id, slog.Default())
				defer shipper.Close()
				sopts.LogWritten = shipper.Written
			}
			srv := serving.New(sopts)
			defer srv.Close()
			if restoreAlias != "" {
				// A missing default SQLite file means nothing was registered
				// yet; a --registry target is always opened.
				if _, err := os.Stat(cfg.path("registry.db")); err == nil || cfg.Registry != "" {
					reg, err := registry.Open(ctx, cfg.registryTarget())
					if err != nil {
						return err
					}
					err = restore.Deployments(ctx, srv, reg, restoreAlias)
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
			ctx, stop := context.WithCancel(ctx)
			defer stop()
			var gs *grpc.Server
			var gln net.Listener
			grpcDone := make(chan error, 1)
			if grpcAddr != "" {
				if gln, err = net.Listen("tcp", grpcAddr); err != nil {
					ln.Close()
					return fmt.Errorf("listening on %s (--grpc-addr): %w", grpcAddr, err)
				}
				var opts []grpc.ServerOption
				if tlsCfg != nil {
					opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
				}
				gs = srv.GRPCServer(opts...)
				go func() {
					err := gs.Serve(gln)
					stop() // a failed gRPC server takes the HTTP one down with it
					grpcDone <- err
				}()
			}
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, TLSConfig: tlsCfg}
			var fast *serving.FastHTTP // the prediction routes over plain HTTP
			if tlsCfg == nil && fastHTTP {
				fast = serving.NewFastHTTP(srv, hs)
			}
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if gs != nil {
					// Both servers drain at once, within the same 5 s; then
					// the gRPC calls still running are cancelled.
					stopped := make(chan struct{})
					go func() {
						gs.GracefulStop()
						close(stopped)
					}()
					defer func() {
						select {
						case <-stopped:
						case <-sctx.Done():
							gs.Stop()
							<-stopped
						}
					}()
				}
				if fast != nil {
					_ = fast.Shutdown(sctx)
				} else {
					_ = hs.Shutdown(sctx)
				}
			}()
			abs, _ := filepath.Abs(cfg.path("requests"))
			scheme, grpcTLS := "http", ""
			if tlsCfg != nil {
				scheme, grpcTLS = "https", " (TLS)"
			}
			fmt.Fprintf(cfg.stdout, "Kiln model server on %s://%s (request logs in %s)\n", scheme, ln.Addr(), abs)
			if gs != nil {
				fmt.Fprintf(cfg.stdout, "Open Inference Protocol v2 over gRPC%s on %s\n", grpcTLS, gln.Addr())
			}
			serve := func() error { return hs.Serve(ln) }
			if fast != nil {
				serve = func() error { return fast.Serve(ln) }
			}
			if tlsCfg != nil {
				serve = func() error { return hs.ServeTLS(ln, "", "") }
			}
			if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				stop()
				<-drained
				return err
			}
			// Serve returns as soon as Shutdown starts; the deferred Close must
			// flush the request log only after in-flight requests (HTTP and
			// gRPC) have finished.
			<-drained
			if gs != nil {
				if err := <-grpcDone; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
					return fmt.Errorf("gRPC server: %w", err)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:8080", "listen address")
	f.IntVar(&gcPercent, "gc-percent", 400, "Go garbage collector target (GOGC) for the server; the GOGC variable, when set, wins")
	f.StringVar(&httpsCert, "https-cert", "", "serve HTTPS (and gRPC over TLS) with this PEM certificate (chain); needs --https-key")
	f.StringVar(&httpsKey, "https-key", "", "the PEM private key of --https-cert")
	f.StringVar(&grpcAddr, "grpc-addr", "", "listen address of the Open Inference Protocol v2 gRPC service (empty: no gRPC)")
	f.StringVar(&token, "admin-token", "", "bearer token of the admin routes (env KILN_ADMIN_TOKEN; default: $KILN_HOME/admin-token)")
	f.StringVar(&restoreAlias, "restore", "production", "serve each model's version at this alias on start (empty: none)")
	f.BoolVar(&fastHTTP, "fast-http", true, "answer the prediction routes over plain HTTP/1.1 with Kiln's own request reader, everything else with net/http (false: all with net/http)")
	f.BoolVar(&logInProcess, "log-in-process", false, "encode the request log in the server process instead of a lower-priority child process")
	return cmd
}

// newServeLogWriterCmd is the child process kiln serve writes its request
// log through (serving.RunLogWriter): hidden, started by kiln serve only.
func newServeLogWriterCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "serve-log-writer",
		Short: "Write kiln serve's request log files (started by kiln serve)",
		Long: `Write the request log files of the kiln serve that started this process: it
reads the server's flushes on standard input, writes each as a Parquet file and
prints "<model>\t<path>" once the file is whole. kiln serve starts it at idle
priority; --log-in-process does without it.`,
		Example: `  kiln serve-log-writer < flushes   # started by kiln serve, not by hand`,
		Hidden:  true,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// The server's end of the pipe decides when to stop: writes
			// under way finish even when the server is interrupted.
			return serving.RunLogWriter(context.WithoutCancel(cmd.Context()), cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
}

// serveTLS loads kiln serve's certificate and key; nil without them.
func serveTLS(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, &exitError{code: 2, err: errors.New("--https-cert and --https-key go together")}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("--https-cert %s / --https-key %s: %w", certFile, keyFile, err)}
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
