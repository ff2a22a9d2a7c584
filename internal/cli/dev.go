package cli

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/worker"
)

func newDevCmd(cfg *Config) *cobra.Command {
	var (
		port, uiPort, servePort int
		reportsPort             int
		noUI, noServer          bool
		trainer, trainerImage   string
		noDocker                bool
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run Temporal, its web UI, a Kiln worker and a model server in one process",
		Long: `Start everything Kiln needs on this machine, in one process:

  - an embedded Temporal server (state in $KILN_HOME/temporal.db, kept across restarts)
  - the Temporal web UI (http://127.0.0.1:8233)
  - a Kiln worker (training in Docker when an engine is reachable, else as local processes)
  - a model server (http://127.0.0.1:8080) whose admin token is written to $KILN_HOME/admin-token
  - the local page (http://127.0.0.1:8234/reports): batch reports by model and
    date, model lineage, alerts and Prometheus metrics

Kiln's search attributes (KilnPipeline, KilnModel, ...) are registered on start.
Press Ctrl-C to stop; starting again keeps the history, the registry and the artifacts.`,
		Example: `  kiln dev
  kiln dev --port 7233 --ui-port 8233 --serve-port 8080
  kiln dev --no-docker        # train as local processes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// Keep the admin token across restarts, so a separately started
			// `kiln serve` or `kiln worker` that read it still works.
			token := os.Getenv("KILN_ADMIN_TOKEN")
			if token == "" {
				token = readToken(cfg.path("admin-token"))
			}
			st, err := devstack.Start(ctx, devstack.Options{
				Home: cfg.Home, TemporalPort: port, UIPort: uiPort, ServePort: servePort, ReportsPort: reportsPort, AdminToken: token,
				UI: !noUI, NoServer: noServer, Namespace: cfg.Namespace, TaskQueue: cfg.TaskQueue,
				Worker: worker.Config{TrainerBinary: trainer, NoDocker: noDocker, Registry: cfg.Registry, TrainerImage: trainerImage},
			})
			if err != nil {
				return err
			}
			defer st.Stop()
			abs, _ := filepath.Abs(cfg.Home)
			out := cfg.stdout
			fmt.Fprintf(out, "Kiln dev stack is running (state in %s)\n", abs)
			fmt.Fprintf(out, "  Temporal     %s   namespace %s, task queue %s\n", st.Temporal.Address(), cfg.Namespace, cfg.TaskQueue)
			if u := st.Temporal.UIURL(); u != "" {
				fmt.Fprintf(out, "  Web UI       %s\n", u)
			}
			if st.ServerURL != "" {
				fmt.Fprintf(out, "  Model server %s   admin token in %s\n", st.ServerURL, filepath.Join(abs, "admin-token"))
			}
			if st.ReportsURL != "" {
				fmt.Fprintf(out, "  Reports      %s/reports   (lineage, alerts, /metrics)\n", st.ReportsURL)
			}
			fmt.Fprintf(out, "  Training     %s\n", worker.Describe(st.Activities))
			fmt.Fprintf(out, "Press Ctrl-C to stop.\n")
			<-ctx.Done()
			slog.Info("stopping")
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&port, "port", 7233, "Temporal frontend gRPC port")
	f.IntVar(&uiPort, "ui-port", 8233, "Temporal web UI port")
	f.IntVar(&servePort, "serve-port", 8080, "model server port")
	f.IntVar(&reportsPort, "reports-port", 8234, "port of the local page: reports, lineage, alerts and metrics")
	f.BoolVar(&noUI, "headless", false, "do not start the web UI")
	f.BoolVar(&noServer, "no-serve", false, "do not start the model server")
	f.StringVar(&trainer, "trainer-bin", "", "local trainer binary for the process runtime (default: kiln-trainer next to kiln)")
	f.StringVar(&trainerImage, "trainer-image", os.Getenv("KILN_TRAINER_IMAGE"), trainerImageHelp)
	f.BoolVar(&noDocker, "no-docker", false, "train as local processes even when Docker is reachable")
	return cmd
}
