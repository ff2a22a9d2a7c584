// Package cli implements the kiln command line: one file per verb group.
// Commands return errors; main prints them once and exits non-zero. Flags and
// environment variables are read here and passed down as plain config.
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/devstack"
	"go.temporal.io/sdk/client"
)

// Config is the configuration shared by all commands, from flags and the
// environment.
type Config struct {
	// Home is Kiln's state directory (.kiln): artifacts, registry, dev server data.
	Home string
	// Registry is the model registry: a SQLite path or a postgres:// DSN;
	// empty means Home/registry.db.
	Registry string
	// Artifacts, when set, is the object store artifacts are published to
	// (s3://bucket/prefix?options or gs://bucket/prefix); empty keeps them
	// under Home/artifacts.
	Artifacts string
	// Address, Namespace and TaskQueue locate the Temporal cluster.
	Address   string
	Namespace string
	TaskQueue string
	// UIURL is the Temporal web UI base URL used for links.
	UIURL string
	// TLS and API key settings for Temporal Cloud or secured clusters.
	TLSCert, TLSKey, TLSCA string
	APIKey                 string
	// JSON switches output to JSON for scripts.
	JSON bool
	// Verbose turns on debug logging.
	Verbose bool

	stdout, stderr io.Writer
	// devModelServer is the running dev stack's model server, if any.
	devModelServer string
	// devReports is the running dev stack's local page, if any.
	devReports string
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// fromEnv fills an unset value from the environment variable key.
func fromEnv(v *string, key string) {
	if *v == "" {
		*v = os.Getenv(key)
	}
}

// Run executes the kiln command line with args (without the program name).
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := &Config{stdout: stdout, stderr: stderr}
	root := newRoot(cfg)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

// exitError carries a specific exit code (e.g. 1 for a failed run, 2 for usage).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode maps an error from Run to the process exit code.
func ExitCode(err error) int {
	var e *exitError
	if errors.As(err, &e) {
		return e.code
	}
	return 1
}

func newRoot(cfg *Config) *cobra.Command {
	root := &cobra.Command{
		Use:   "kiln",
		Short: "Take ML models from a YAML recipe to production as durable Temporal workflows",
		Long: `Kiln runs a machine-learning pipeline — ingest → preprocess → train (in a
container) → evaluate → register → batch-score → canary deploy → monitor →
retrain on drift — as one durable Temporal workflow, declared in a YAML spec.

Start here:
  kiln dev                                 # Temporal + web UI + worker + model server, all local
  kiln validate pipelines/churn.yaml       # check a spec; errors name file:line:col
  kiln run pipelines/churn.yaml --wait     # run it and watch the steps
  kiln runs show <run>                     # what each step did
  kiln approve <run> <step> --reason "..." # decide an approval step
  kiln models show churn                   # versions, metrics, aliases

The Kiln home is found as git finds its repository: --home or KILN_HOME, else
the nearest .kiln directory holding a dev stack, a registry or artifacts in
the current directory or one of its parents, else ./.kiln.

Environment: KILN_HOME (default .kiln), TEMPORAL_ADDRESS (127.0.0.1:7233),
TEMPORAL_NAMESPACE (default), KILN_TASK_QUEUE (kiln), TEMPORAL_API_KEY.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			level := slog.LevelInfo
			if cfg.Verbose {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(cfg.stderr, &slog.HandlerOptions{Level: level})))
			fromEnv(&cfg.TLSCert, "TEMPORAL_TLS_CERT")
			fromEnv(&cfg.TLSKey, "TEMPORAL_TLS_KEY")
			fromEnv(&cfg.TLSCA, "TEMPORAL_TLS_CA")
			fromEnv(&cfg.APIKey, "TEMPORAL_API_KEY")
			fromEnv(&cfg.Registry, "KILN_REGISTRY")
			fromEnv(&cfg.Artifacts, "KILN_ARTIFACTS")
			if !cmd.Flags().Changed("home") && os.Getenv("KILN_HOME") == "" {
				if wd, err := os.Getwd(); err == nil {
					if home := findHome(wd); home != "" {
						cfg.Home = home
					}
				}
			}
			cfg.useDevStack(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&cfg.Home, "home", envOr("KILN_HOME", ".kiln"), "Kiln's state directory (artifacts, registry, dev server data)")
	pf.StringVar(&cfg.Address, "address", envOr("TEMPORAL_ADDRESS", "127.0.0.1:7233"), "Temporal frontend host:port")
	pf.StringVar(&cfg.Namespace, "namespace", envOr("TEMPORAL_NAMESPACE", "default"), "Temporal namespace")
	pf.StringVar(&cfg.TaskQueue, "task-queue", envOr("KILN_TASK_QUEUE", "kiln"), "Temporal task queue of Kiln's workers")
	pf.StringVar(&cfg.UIURL, "ui-url", envOr("KILN_UI_URL", "http://127.0.0.1:8233"), "Temporal web UI base URL, for links")
	// Secrets and credential paths default from the environment in
	// PersistentPreRun, not here: a flag's default is printed by --help.
	pf.StringVar(&cfg.TLSCert, "tls-cert", "", "client certificate for mTLS to Temporal (env TEMPORAL_TLS_CERT)")
	pf.StringVar(&cfg.TLSKey, "tls-key", "", "client key for mTLS to Temporal (env TEMPORAL_TLS_KEY)")
	pf.StringVar(&cfg.TLSCA, "tls-ca", "", "CA certificate to verify Temporal's server certificate (env TEMPORAL_TLS_CA)")
	pf.StringVar(&cfg.APIKey, "api-key", "", "API key for Temporal Cloud (env TEMPORAL_API_KEY; prefer the variable: flags show up in ps)")
	pf.StringVar(&cfg.Registry, "registry", "", "model registry: a SQLite file or a postgres://user:pass@host/db DSN (env KILN_REGISTRY; default $KILN_HOME/registry.db)")
	pf.StringVar(&cfg.Artifacts, "artifacts", "", "object store for artifacts, shared by workers on several machines: s3://bucket/prefix?endpoint=...&region=... or gs://bucket/prefix, credentials from the cloud SDK's environment (env KILN_ARTIFACTS; default: files under $KILN_HOME/artifacts)")
	pf.BoolVar(&cfg.JSON, "json", false, "print JSON instead of tables")
	pf.BoolVarP(&cfg.Verbose, "verbose", "v", false, "debug logging")

	root.AddCommand(
		newDevCmd(cfg), newWorkerCmd(cfg), newServeCmd(cfg), newServeLogWriterCmd(),
		newValidateCmd(cfg), newRunCmd(cfg), newRunsCmd(cfg), newApproveCmd(cfg), newModelsCmd(cfg),
		newDemoDataCmd(cfg), newImagesCmd(cfg), newReplayCmd(cfg),
		newScoreCmd(cfg), newExportCmd(cfg), newSchedulesCmd(cfg), newReportsCmd(cfg), newMonitorCmd(cfg), newLabelsCmd(cfg), newExperimentsCmd(cfg), newDataCmd(cfg),
	)
	usageErrors(root)
	return root
}

// usageErrors makes flag and argument errors of cmd and its subcommands
// usage errors (exit code 2), like the checks commands make themselves. A
// command group (kiln runs, kiln models, ...) given an unknown subcommand
// says so, with the nearest ones, instead of printing its help and exiting
// 0.
func usageErrors(cmd *cobra.Command) {
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = cobra.ArbitraryArgs
		cmd.DisableFlagsInUseLine = true
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return c.Help()
			}
			return &exitError{code: 2, err: unknownSubcommand(c, args[0])}
		}
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &exitError{code: 2, err: err}
	})
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return &exitError{code: 2, err: err}
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		usageErrors(c)
	}
}

// findHome returns the nearest Kiln home at or above dir: a .kiln
// directory holding a dev stack (dev.json), a registry (registry.db) or
// artifacts, as git finds .git; "" when there is none. A home found in dir
// itself is returned as the relative ".kiln".
func findHome(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		home := filepath.Join(d, ".kiln")
		for _, marker := range []string{"dev.json", "registry.db", "artifacts"} {
			if _, err := os.Stat(filepath.Join(home, marker)); err == nil {
				if d == dir {
					return ".kiln"
				}
				return home
			}
		}
		if parent := filepath.Dir(d); parent == d {
			return ""
		}
	}
}

// unknownSubcommand is the error for an unknown subcommand of group, naming
// the subcommands close to it (or all of them).
func unknownSubcommand(group *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, group.CommandPath())
	if group.SuggestionsMinimumDistance <= 0 {
		group.SuggestionsMinimumDistance = 2
	}
	if s := group.SuggestionsFor(name); len(s) > 0 {
		return fmt.Errorf("%s\n\nDid you mean this?\n\t%s", msg, strings.Join(s, "\n\t"))
	}
	var names []string
	for _, c := range group.Commands() {
		if c.IsAvailableCommand() {
			names = append(names, c.Name())
		}
	}
	return fmt.Errorf("%s; its commands are: %s (%s --help)", msg, strings.Join(names, ", "), group.CommandPath())
}

// useDevStack points the client at the `kiln dev` stack running on this
// Kiln home (from its dev.json) unless a flag or variable says otherwise.
func (c *Config) useDevStack(cmd *cobra.Command) {
	b, err := os.ReadFile(c.path("dev.json"))
	if err != nil {
		return
	}
	var info devstack.Info
	if json.Unmarshal(b, &info) != nil || info.PID <= 0 || syscall.Kill(info.PID, 0) != nil {
		return // not a running stack
	}
	set := func(flag, env string) bool { return cmd.Flags().Changed(flag) || os.Getenv(env) != "" }
	if !set("address", "TEMPORAL_ADDRESS") && info.Address != "" {
		c.Address = info.Address
	}
	if !set("ui-url", "KILN_UI_URL") && info.UI != "" {
		c.UIURL = info.UI
	}
	c.devModelServer = info.ModelServer
	c.devReports = info.Reports
}

// modelServer is the default model server: $KILN_MODEL_SERVER, else the
// running dev stack's, else the `kiln dev` default.
func (c *Config) modelServer() string {
	if v := os.Getenv("KILN_MODEL_SERVER"); v != "" {
		return v
	}
	if c.devModelServer != "" {
		return c.devModelServer
	}
	return "http://127.0.0.1:8080"
}

// dial connects to Temporal with the configured address, namespace, TLS and API key.
func (c *Config) dial(ctx context.Context) (client.Client, error) {
	opts := client.Options{HostPort: c.Address, Namespace: c.Namespace, Logger: devstack.SDKLogger{L: slog.Default()}}
	if c.TLSCert != "" || c.TLSCA != "" || c.APIKey != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
			if err != nil {
				return nil, fmt.Errorf("loading TLS client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		if c.TLSCA != "" {
			pem, err := os.ReadFile(c.TLSCA)
			if err != nil {
				return nil, fmt.Errorf("reading TLS CA: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("no certificates in %s", c.TLSCA)
			}
			tc.RootCAs = pool
		}
		opts.ConnectionOptions.TLS = tc
	}
	if c.APIKey != "" {
		opts.Credentials = client.NewAPIKeyStaticCredentials(c.APIKey)
	}
	cl, err := client.DialContext(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("connecting to Temporal at %s (namespace %s): %w\nIs `kiln dev` running? Start it in another terminal, or pass --address", c.Address, c.Namespace, err)
	}
	return cl, nil
}

// path returns a path under Home.
func (c *Config) path(parts ...string) string {
	return filepath.Join(append([]string{c.Home}, parts...)...)
}

// registryTarget is the registry to open: --registry / KILN_REGISTRY, or
// the SQLite file in the Kiln home.
func (c *Config) registryTarget() string {
	if c.Registry != "" {
		return c.Registry
	}
	return c.path("registry.db")
}

// openStore opens the artifact store: the object store of --artifacts,
// cached under the Kiln home, or the Kiln home's artifacts directory.
func (c *Config) openStore(ctx context.Context) (*artifact.Store, error) {
	return artifact.Open(ctx, artifact.Options{Dir: c.path("artifacts"), Remote: c.Artifacts})
}

// workflowURL links to a workflow in the Temporal web UI.
func (c *Config) workflowURL(workflowID, runID string) string {
	u := strings.TrimRight(c.UIURL, "/") + "/namespaces/" + c.Namespace + "/workflows/" + urlPathEscape(workflowID)
	if runID != "" {
		u += "/" + runID
	}
	return u + "/history"
}

// CheckArgs parses a kiln command line (without the program name) without
// running it: the command must exist and its flags must parse. The tests
// of deploy/ check the command lines of deployment files with it.
func CheckArgs(args []string) error {
	root := newRoot(&Config{stdout: io.Discard, stderr: io.Discard})
	cmd, rest, err := root.Find(args)
	if err != nil {
		return err
	}
	if cmd == root || (cmd.HasSubCommands() && cmd.RunE == nil && cmd.Run == nil) {
		return fmt.Errorf("%q is not a kiln command", strings.Join(args, " "))
	}
	return cmd.ParseFlags(rest)
}

// localArtifact returns a local path holding the artifact at uri: the file
// itself, or, for an object store URL, a copy fetched into the Kiln home's
// cache (see --artifacts).
func (c *Config) localArtifact(ctx context.Context, uri string) (string, error) {
	return c.fetchArtifact(ctx, uri, false)
}

// fetchArtifact is localArtifact; fresh refetches what a rerun may have
// replaced since it was cached (artifact.Store.LocalFresh: reports).
func (c *Config) fetchArtifact(ctx context.Context, uri string, fresh bool) (string, error) {
	if !artifact.Remote(uri) {
		return artifact.Path(uri, "")
	}
	store, err := c.openStore(ctx)
	if err != nil {
		return "", err
	}
	defer store.Close()
	if fresh {
		return store.LocalFresh(ctx, uri)
	}
	return store.Local(ctx, uri)
}
