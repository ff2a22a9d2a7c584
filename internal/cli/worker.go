package cli

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/devserver"
	"github.com/kiln-ml/kiln/worker"
	"github.com/kiln-ml/kiln/workflows"
)

func newWorkerCmd(cfg *Config) *cobra.Command {
	var (
		modelServer, adminToken, trainer, trainerImage string
		noDocker, registerAttrs                        bool
		concurrency                                    int
		queues, allowPaths                             []string
		deployment, buildID                            string
	)
	var reportsURL, metricsAddr string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a Kiln worker against a Temporal server",
		Long: `Run Kiln's workflows and activities against any Temporal server: the embedded
one of "kiln dev", a self-hosted cluster, or Temporal Cloud (--api-key or mTLS).

The worker keeps the model registry in --registry (a SQLite file, by default
$KILN_HOME/registry.db, or a PostgreSQL DSN) and artifacts under --home, or in
an object store with --artifacts (s3://bucket/prefix?region=..., gs://...;
--home is then only its cache). Workers that share work must share both:
workers on several machines share a PostgreSQL registry and an object store,
and no directory.

A spec step may name a task queue (queue: train); its activities then run only
on workers polling that queue (--queues train), e.g. the machines with GPUs.
Runs and the other steps stay on --task-queue.

On a worker several teams share, --allow-path confines the files a spec may
read or write to the given directories (and the Kiln home): a spec naming
/etc/passwd, or a symbolic link out of an allowed directory, fails its step.`,
		Example: `  kiln worker --address 127.0.0.1:7233 --namespace default --task-queue kiln
  kiln worker --queues train,gpu          # only the steps whose spec says queue: train or gpu
  kiln worker --queues kiln,train         # the runs themselves and the train steps
  KILN_REGISTRY=postgres://kiln:secret@db:5432/kiln kiln worker --task-queue kiln
  KILN_ARTIFACTS='s3://ml-artifacts/kiln?region=eu-west-1' kiln worker --queues train   # another machine
  TEMPORAL_API_KEY=... kiln worker --address my-ns.a1b2c.tmprl.cloud:7233 --namespace my-ns.a1b2c`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := cfg.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			if registerAttrs {
				if err := devserver.EnsureSearchAttributes(ctx, c, cfg.Namespace, workflows.SearchAttributes()); err != nil {
					return fmt.Errorf("%w (pass --register-search-attributes=false if an operator registers them)", err)
				}
			}
			fromEnv(&adminToken, "KILN_ADMIN_TOKEN")
			if adminToken == "" {
				adminToken = readToken(cfg.path("admin-token"))
			}
			acts, closeActs, err := worker.OpenActivities(ctx, c, worker.Config{
				Home: cfg.Home, Registry: cfg.Registry, Artifacts: cfg.Artifacts, TaskQueue: cfg.TaskQueue, ModelServer: modelServer,
				AdminToken: adminToken, TrainerBinary: trainer, NoDocker: noDocker, TrainerImage: trainerImage,
				UIURL: cfg.UIURL, Namespace: cfg.Namespace, ReportsURL: reportsURL, AllowPaths: allowPaths,
			})
			if err != nil {
				return err
			}
			defer closeActs()
			if deployment != "" && buildID == "" {
				buildID = kilnVersion()
			}
			if buildID != "" && deployment == "" {
				return &exitError{code: 2, err: errors.New("--build-id needs --deployment: the Worker Deployment the build belongs to")}
			}
			polled := queues
			if len(polled) == 0 {
				polled = []string{cfg.TaskQueue}
			}
			if acts.HostQueue != "" {
				// Work only this worker's disk holds (a score step's shards).
				polled = append(polled, acts.HostQueue)
			}
			for _, q := range polled {
				w := worker.New(c, acts, worker.Options{TaskQueue: q, MaxConcurrentActivities: concurrency, ActivitiesOnly: q != cfg.TaskQueue,
					Deployment: deployment, BuildID: buildID})
				if err := w.Start(); err != nil {
					return fmt.Errorf("starting the worker of queue %s: %w", q, err)
				}
				defer w.Stop()
				what := "workflows and activities"
				if q != cfg.TaskQueue {
					what = "step activities"
				}
				fmt.Fprintf(cfg.stdout, "Kiln worker polling %s (%s) on %s (namespace %s); training: %s\n", q, what, cfg.Address, cfg.Namespace, worker.Describe(acts))
			}
			if metricsAddr != "" {
				ln, err := net.Listen("tcp", metricsAddr)
				if err != nil {
					return fmt.Errorf("--metrics-addr %s: %w", metricsAddr, err)
				}
				mux := http.NewServeMux()
				mux.Handle("GET /metrics", worker.MetricsHandler(cfg.TaskQueue))
				srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
				go srv.Serve(ln)
				defer srv.Close()
				fmt.Fprintf(cfg.stdout, "Metrics on http://%s/metrics\n", ln.Addr())
			}
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelServer, "model-server", envOr("KILN_MODEL_SERVER", "http://127.0.0.1:8080"), "model servers of deploy steps, comma-separated (replicas); deploy steps target all of them unless the spec names server(s), and the admin token goes to no other")
	f.StringVar(&adminToken, "admin-token", "", "model server admin token (env KILN_ADMIN_TOKEN; default: $KILN_HOME/admin-token)")
	f.StringVar(&trainer, "trainer-bin", "", "local trainer binary for the process runtime")
	f.BoolVar(&noDocker, "no-docker", false, "train as local processes even when Docker is reachable")
	f.StringVar(&trainerImage, "trainer-image", os.Getenv("KILN_TRAINER_IMAGE"), trainerImageHelp)
	f.BoolVar(&registerAttrs, "register-search-attributes", true, "register Kiln's search attributes on the namespace at start")
	f.StringVar(&deployment, "deployment", "", "register as a version of this Temporal Worker Deployment (Worker Versioning; see deploy/README.md for upgrades)")
	f.StringVar(&buildID, "build-id", "", "this worker's version in --deployment (default: Kiln's version, from the build)")
	f.StringSliceVar(&allowPaths, "allow-path", nil, "confine the files specs read and write (sources, inputs, outputs, globs) to these directories and the Kiln home, for a worker several teams share; repeatable or comma-separated (default: any path)")
	f.StringSliceVar(&queues, "queues", nil, "task queues to poll, comma-separated: --task-queue's runs workflows and activities, any other only the activities of spec steps naming it (queue: train); default --task-queue")
	f.IntVar(&concurrency, "max-activities", 16, "activities this worker runs at once (each foreach item is one)")
	f.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics (process, Go runtime) on this host:port, e.g. 127.0.0.1:9464")
	cmd.Flags().StringVar(&reportsURL, "reports-url", os.Getenv("KILN_REPORTS_URL"), "base URL of Kiln's local page, for links in reports (env KILN_REPORTS_URL)")
	return cmd
}

func readToken(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// trainerImageHelp documents --trainer-image (kiln worker and kiln dev).
const trainerImageHelp = "Docker image to run for steps that name kiln/trainer:dev, e.g. the content-addressed tag make images writes to build/trainer-image, so another checkout rebuilding kiln/trainer:dev on a shared engine cannot change it (env KILN_TRAINER_IMAGE)"
