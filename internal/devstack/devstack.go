// Package devstack runs Kiln's whole local stack in one process: an embedded
// Temporal server with its web UI, a model server, and a worker. `kiln dev`
// and the integration tests use it.
package devstack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/client"
	sdkworker "go.temporal.io/sdk/worker"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/devserver"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/serving"
	"github.com/kiln-ml/kiln/internal/serving/restore"
	"github.com/kiln-ml/kiln/internal/site"
	"github.com/kiln-ml/kiln/worker"
	"github.com/kiln-ml/kiln/workflows"
)

// Options configures a local stack.
type Options struct {
	// Home is Kiln's state directory; the Temporal database is Home/temporal.db.
	Home string
	// Ephemeral keeps Temporal's state in memory (tests).
	Ephemeral bool
	// IP every service binds to; default 127.0.0.1.
	IP string
	// TemporalPort, UIPort, ServePort and ReportsPort: 0 picks free ports.
	TemporalPort, UIPort, ServePort, ReportsPort int
	// NoReports leaves out the local page (reports, lineage, alerts, metrics).
	NoReports bool
	// UI starts the Temporal web UI.
	UI bool
	// NoServer and NoWorker leave the model server or the worker out.
	NoServer, NoWorker bool
	// Namespace and TaskQueue; defaults "default" and "kiln".
	Namespace, TaskQueue string
	// AdminToken for the model server; empty generates one. It is written to
	// Home/admin-token (mode 0600) for other kiln processes.
	AdminToken string
	// Worker configures the worker's activities; Home, TaskQueue, ModelServer
	// and AdminToken are filled in by Start.
	Worker worker.Config
	// ServeFlushInterval is the model server's request log flush interval (0 = default).
	ServeFlushInterval time.Duration
	// Logger receives the stack's log.
	Logger *slog.Logger
}

// Stack is a running local stack.
type Stack struct {
	Temporal   *devserver.Server
	Client     client.Client
	Server     *serving.Server
	ServerURL  string
	AdminToken string
	Worker     sdkworker.Worker
	Activities *activities.Activities
	// ReportsURL is the local page's base URL ("" without it).
	ReportsURL string

	// Home is the stack's state directory.
	Home string

	httpServer *http.Server
	siteServer *http.Server
	closeSite  func() error
	closeActs  func() error
}

// Info is what Start writes to Home/dev.json for other kiln commands.
type Info struct {
	PID         int    `json:"pid"`
	Address     string `json:"address"`
	Namespace   string `json:"namespace"`
	UI          string `json:"ui,omitempty"`
	ModelServer string `json:"model_server,omitempty"`
	// Reports is the local page's base URL (reports, lineage, alerts).
	Reports string `json:"reports,omitempty"`
	Started string `json:"started"`
}

// Start starts the stack; Stop stops it.
func Start(ctx context.Context, opts Options) (st *Stack, err error) {
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	if opts.TaskQueue == "" {
		opts.TaskQueue = worker.DefaultTaskQueue
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(opts.Home, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", opts.Home, err)
	}
	st = &Stack{Home: opts.Home}
	defer func() {
		if err != nil {
			st.Stop()
		}
	}()

	dsOpts := devserver.Options{
		IP: opts.IP, Port: opts.TemporalPort, UIPort: opts.UIPort, UI: opts.UI, Namespace: opts.Namespace,
		SearchAttributes: workflows.SearchAttributes(), LogFile: filepath.Join(opts.Home, "temporal.log"),
	}
	if !opts.Ephemeral {
		dsOpts.DatabaseFile = filepath.Join(opts.Home, "temporal.db")
	}
	if st.Temporal, err = devserver.Start(ctx, dsOpts); err != nil {
		return st, err
	}
	if st.Client, err = client.DialContext(ctx, client.Options{HostPort: st.Temporal.Address(), Namespace: opts.Namespace, Logger: SDKLogger{log}}); err != nil {
		return st, fmt.Errorf("connecting to the embedded Temporal server: %w", err)
	}

	st.AdminToken = opts.AdminToken
	if st.AdminToken == "" {
		if st.AdminToken, err = newToken(); err != nil {
			return st, err
		}
	}
	if err := os.WriteFile(filepath.Join(opts.Home, "admin-token"), []byte(st.AdminToken+"\n"), 0o600); err != nil {
		return st, fmt.Errorf("writing admin token: %w", err)
	}

	wcfg := opts.Worker
	wcfg.Home, wcfg.TaskQueue, wcfg.AdminToken = opts.Home, opts.TaskQueue, st.AdminToken
	wcfg.UIURL, wcfg.Namespace = st.Temporal.UIURL(), opts.Namespace
	var siteLn net.Listener
	if !opts.NoReports {
		if siteLn, err = net.Listen("tcp", net.JoinHostPort(opts.IP, strconv.Itoa(opts.ReportsPort))); err != nil {
			return st, fmt.Errorf("local page port: %w (is another kiln dev running? pass --reports-port)", err)
		}
		st.ReportsURL = "http://" + siteLn.Addr().String()
		wcfg.ReportsURL = st.ReportsURL
	}
	if wcfg.Logger == nil {
		wcfg.Logger = log
	}
	if !opts.NoServer {
		ln, err := net.Listen("tcp", net.JoinHostPort(opts.IP, strconv.Itoa(opts.ServePort)))
		if err != nil {
			return st, fmt.Errorf("model server port: %w", err)
		}
		st.ServerURL = "http://" + ln.Addr().String()
		st.Server = serving.New(serving.Options{
			AdminToken: st.AdminToken, RequestLogDir: filepath.Join(opts.Home, "requests"),
			FlushInterval: opts.ServeFlushInterval, Logger: log,
		})
		st.httpServer = &http.Server{Handler: st.Server.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := st.httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("model server stopped", "error", err)
			}
		}()
		wcfg.ModelServer = st.ServerURL
	}

	if !opts.NoWorker {
		if st.Activities, st.closeActs, err = worker.OpenActivities(ctx, st.Client, wcfg); err != nil {
			return st, err
		}
		if st.Server != nil {
			if err := restore.Deployments(ctx, st.Server, st.Activities.Registry, "production"); err != nil {
				log.Warn("restoring production models", "error", err)
			}
		}
		st.Worker = worker.New(st.Client, st.Activities, worker.Options{TaskQueue: opts.TaskQueue})
		if err := st.Worker.Start(); err != nil {
			return st, fmt.Errorf("starting worker: %w", err)
		}
	}

	if siteLn != nil {
		if err := st.startSite(ctx, siteLn, wcfg, log); err != nil {
			siteLn.Close()
			return st, err
		}
	}

	info := Info{PID: os.Getpid(), Address: st.Temporal.Address(), Namespace: opts.Namespace, UI: st.Temporal.UIURL(), ModelServer: st.ServerURL, Reports: st.ReportsURL, Started: time.Now().UTC().Format(time.RFC3339)}
	b, _ := json.MarshalIndent(info, "", "  ")
	if err := os.WriteFile(filepath.Join(opts.Home, "dev.json"), append(b, '\n'), 0o644); err != nil {
		return st, fmt.Errorf("writing dev.json: %w", err)
	}
	return st, nil
}

// Stop stops the worker, the model server (flushing its request log) and Temporal.
func (s *Stack) Stop() {
	if s.Worker != nil {
		s.Worker.Stop()
	}
	if s.httpServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.httpServer.Shutdown(ctx)
		cancel()
	}
	if s.siteServer != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.siteServer.Shutdown(ctx)
		cancel()
	}
	if s.closeSite != nil {
		_ = s.closeSite()
	}
	if s.Server != nil {
		_ = s.Server.Close()
	}
	if s.closeActs != nil {
		_ = s.closeActs()
	}
	if s.Client != nil {
		s.Client.Close()
	}
	if s.Temporal != nil {
		_ = s.Temporal.Stop()
	}
	if s.Home != "" {
		_ = os.Remove(filepath.Join(s.Home, "dev.json"))
	}
}

// startSite serves the local page on ln, reading the registry the worker
// uses (its own handle, so the page works without the worker too).
func (s *Stack) startSite(ctx context.Context, ln net.Listener, wcfg worker.Config, log *slog.Logger) error {
	var reg *registry.Registry
	if s.Activities != nil {
		reg = s.Activities.Registry
	} else {
		target := wcfg.Registry
		if target == "" {
			target = filepath.Join(wcfg.Home, "registry.db")
		}
		r, err := registry.Open(ctx, target)
		if err != nil {
			return err
		}
		reg = r
		s.closeSite = r.Close
	}
	page, err := site.New(site.Options{Registry: reg, UIURL: wcfg.UIURL, Namespace: wcfg.Namespace, Logger: log})
	if err != nil {
		return err
	}
	s.siteServer = &http.Server{Handler: page.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.siteServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("local page stopped", "error", err)
		}
	}()
	return nil
}

func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// SDKLogger adapts slog to the Temporal SDK's logger, keeping the SDK's info
// chatter at debug level.
type SDKLogger struct{ L *slog.Logger }

// Debug logs at debug level.
func (q SDKLogger) Debug(msg string, kv ...interface{}) { q.L.Debug(msg, kv...) }

// Info logs at debug level: the SDK's info lines are noise for Kiln's users.
func (q SDKLogger) Info(msg string, kv ...interface{}) { q.L.Debug(msg, kv...) }

// Warn logs at warn level, except the SDK's memo-size notice (TMPRL1103):
// Kiln's memo carries the spec on purpose, so the UI shows the recipe.
func (q SDKLogger) Warn(msg string, kv ...interface{}) {
	if strings.Contains(msg, "TMPRL1103") {
		q.L.Debug(msg, kv...)
		return
	}
	q.L.Warn(msg, kv...)
}

// Error logs at error level.
func (q SDKLogger) Error(msg string, kv ...interface{}) { q.L.Error(msg, kv...) }
