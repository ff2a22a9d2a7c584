// Package devserver runs an embedded Temporal server (SQLite persistence) and,
// optionally, the Temporal web UI in the current process. It is what `kiln dev`
// and Kiln's integration tests start; production deployments point Kiln at a
// Temporal cluster instead.
package devserver

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	"go.temporal.io/server/common/log"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	_ "modernc.org/sqlite" // the "sqlite" database/sql driver, to clear stale membership
)

// Options configures an embedded server. The zero value is not valid: use
// Options with at least IP set, or start from DefaultOptions.
type Options struct {
	// DatabaseFile is the SQLite file that holds all state. Empty means an
	// in-memory database that is lost when the server stops.
	DatabaseFile string
	// IP is the address every service binds to, normally 127.0.0.1.
	IP string
	// Port is the frontend gRPC port; 0 picks a free port.
	Port int
	// UIPort is the web UI port; 0 picks a free port. Ignored when UI is false.
	UIPort int
	// UI starts the Temporal web UI next to the server.
	UI bool
	// Namespace is created on start if it does not exist.
	Namespace string
	// SearchAttributes are registered on Namespace (custom, by name and type).
	SearchAttributes map[string]enumspb.IndexedValueType
	// LogFile receives the server's own log (warnings and errors). Empty
	// discards it.
	LogFile string
}

// DefaultOptions are the `kiln dev` defaults: frontend on 127.0.0.1:7233, UI on
// 127.0.0.1:8233, namespace "default".
func DefaultOptions() Options {
	return Options{IP: "127.0.0.1", Port: 7233, UIPort: 8233, UI: true, Namespace: "default"}
}

// Server is a running embedded Temporal server.
type Server struct {
	server  temporal.Server
	ui      *uiserver.Server
	address string
	uiURL   string
	ns      string
}

// Start starts the server and waits until its frontend answers and the
// namespace and search attributes are ready.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if opts.Namespace == "" {
		opts.Namespace = "default"
	}
	var err error
	if opts.Port == 0 {
		if opts.Port, err = ServicePort(opts.IP); err != nil {
			return nil, err
		}
	}
	if err := portAvailable(opts.IP, opts.Port); err != nil {
		return nil, fmt.Errorf("temporal frontend port: %w (is another `kiln dev` or Temporal server running?)", err)
	}
	if opts.UI {
		if opts.UIPort == 0 {
			if opts.UIPort, err = ServicePort(opts.IP); err != nil {
				return nil, err
			}
		}
		if err := portAvailable(opts.IP, opts.UIPort); err != nil {
			return nil, fmt.Errorf("temporal UI port: %w", err)
		}
	}

	conf, err := buildConfig(opts)
	if err != nil {
		return nil, err
	}
	sqlConf := conf.Persistence.DataStores[sqliteplugin.PluginName].SQL
	if opts.DatabaseFile != "" {
		if err := os.MkdirAll(filepath.Dir(opts.DatabaseFile), 0o755); err != nil {
			return nil, fmt.Errorf("creating directory for %s: %w", opts.DatabaseFile, err)
		}
		if _, err := os.Stat(opts.DatabaseFile); err == nil {
			if err := forgetMembership(opts.DatabaseFile); err != nil {
				return nil, err
			}
		} else if errors.Is(err, os.ErrNotExist) {
			if err := sqliteschema.SetupSchema(sqlConf); err != nil {
				// A half-created schema would make every later start skip
				// setup and fail obscurely: start from nothing next time.
				for _, suffix := range []string{"", "-wal", "-shm"} {
					_ = os.Remove(opts.DatabaseFile + suffix)
				}
				return nil, fmt.Errorf("creating Temporal schema in %s: %w", opts.DatabaseFile, err)
			}
		}
	}
	nsConf, err := sqliteschema.NewNamespaceConfig(conf.ClusterMetadata.CurrentClusterName, opts.Namespace, false, opts.SearchAttributes)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", opts.Namespace, err)
	}
	if err := sqliteschema.CreateNamespaces(sqlConf, nsConf); err != nil {
		return nil, fmt.Errorf("creating namespace %s: %w", opts.Namespace, err)
	}

	logger, err := buildLogger(opts.LogFile)
	if err != nil {
		return nil, err
	}
	authorizer, err := authorization.GetAuthorizerFromConfig(&conf.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&conf.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("claim mapper: %w", err)
	}
	dyn := dynamicconfig.StaticClient{
		dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key():      true,
		dynamicconfig.FrontendMaxNamespaceVisibilityRPSPerInstance.Key(): 200,
		dynamicconfig.HistoryCacheHostLevelMaxSize.Key():                 8192,
		// History reads its task queues at most MaxPollRPS times a second per
		// shard (default 20), sized for clusters with hundreds of shards. With
		// the dev server's single shard, every workflow task waited about 45 ms
		// for the transfer queue's reader once its burst was spent: 61 ms per
		// pipeline step instead of 12 (BenchmarkPipelineSteps, BENCHMARKS.md).
		dynamicconfig.TransferProcessorMaxPollRPS.Key():   10000,
		dynamicconfig.TimerProcessorMaxPollRPS.Key():      10000,
		dynamicconfig.VisibilityProcessorMaxPollRPS.Key(): 10000,
	}
	var srv temporal.Server
	for attempt := 1; ; attempt++ {
		srv, err = startServer(conf, logger, authorizer, claimMapper, dyn)
		var fe *fatalError
		if err == nil || !errors.As(err, &fe) || !strings.Contains(fe.msg, "address already in use") || attempt == 3 {
			break
		}
		// A port picked for a service was taken before the server bound
		// it: pick the services' ports again.
		if perr := reassignPorts(conf, opts.IP); perr != nil {
			return nil, perr
		}
	}
	if err != nil {
		return nil, err
	}
	s := &Server{server: srv, address: net.JoinHostPort(opts.IP, strconv.Itoa(opts.Port)), ns: opts.Namespace}

	if err := s.waitReady(ctx, opts.SearchAttributes); err != nil {
		_ = srv.Stop()
		return nil, err
	}

	if opts.UI {
		s.ui = uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
			Host:                opts.IP,
			Port:                opts.UIPort,
			TemporalGRPCAddress: s.address,
			EnableUI:            true,
			DefaultNamespace:    opts.Namespace,
			CORS:                uiconfig.CORS{CookieInsecure: true},
			HideLogs:            true,
			DisableNewsFetch:    true,
		}))
		uiAddr := net.JoinHostPort(opts.IP, strconv.Itoa(opts.UIPort))
		uiErr := make(chan error, 1)
		go func() { uiErr <- s.ui.Start() }() // Start blocks until Stop
		if err := waitListening(ctx, uiAddr, uiErr); err != nil {
			_ = s.Stop()
			return nil, fmt.Errorf("starting the Temporal web UI on %s: %w", uiAddr, err)
		}
		s.uiURL = "http://" + uiAddr
	}
	return s, nil
}

// waitListening waits until addr accepts connections, or the server's Start
// fails (errs), or 10 s pass.
func waitListening(ctx context.Context, addr string, errs <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-errs:
			if err == nil {
				err = errors.New("stopped")
			}
			return err
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("not listening after 10s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Address is the frontend's host:port for Temporal clients.
func (s *Server) Address() string { return s.address }

// Namespace is the namespace the server was started with.
func (s *Server) Namespace() string { return s.ns }

// UIURL is the web UI's base URL, or "" when the UI is off.
func (s *Server) UIURL() string { return s.uiURL }

// Stop stops the UI and the server. It is safe to call once.
func (s *Server) Stop() error {
	if s.ui != nil {
		s.ui.Stop()
	}
	return s.server.Stop()
}

// waitReady dials the frontend until it answers, then makes sure every search
// attribute exists (the namespace may predate them).
func (s *Server) waitReady(ctx context.Context, attrs map[string]enumspb.IndexedValueType) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var c client.Client
	var err error
	for {
		c, err = client.DialContext(ctx, client.Options{HostPort: s.address, Namespace: s.ns, Logger: quietLogger{}})
		if err == nil {
			if _, err = c.CheckHealth(ctx, &client.CheckHealthRequest{}); err == nil {
				break
			}
			c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for Temporal frontend at %s: %w", s.address, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	defer c.Close()
	return EnsureSearchAttributes(ctx, c, s.ns, attrs)
}

// EnsureSearchAttributes registers the custom search attributes that are
// missing on namespace. Existing attributes are left alone.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string, attrs map[string]enumspb.IndexedValueType) error {
	if len(attrs) == 0 {
		return nil
	}
	op := c.OperatorService()
	for {
		resp, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
		if err != nil {
			return fmt.Errorf("listing search attributes of %s: %w", namespace, err)
		}
		missing := map[string]enumspb.IndexedValueType{}
		for name, typ := range attrs {
			if _, ok := resp.GetCustomAttributes()[name]; !ok {
				missing[name] = typ
			}
		}
		if len(missing) == 0 {
			return nil
		}
		_, err = op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{Namespace: namespace, SearchAttributes: missing})
		var exists *serviceerror.AlreadyExists
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("adding search attributes to %s: %w", namespace, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startServer builds and starts the Temporal server, returning what the
// server would have exited the process for (see fatalLogger) as an error.
func startServer(conf *config.Config, logger log.Logger, authorizer authorization.Authorizer, claimMapper authorization.ClaimMapper, dyn dynamicconfig.StaticClient) (srv temporal.Server, err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(*fatalError)
			if !ok {
				panic(r)
			}
			if srv != nil {
				_ = srv.Stop()
			}
			srv, err = nil, fmt.Errorf("starting Temporal server: %w", fe)
		}
	}()
	srv, err = temporal.NewServer(
		temporal.WithConfig(conf),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		temporal.WithDynamicConfigClient(dyn),
	)
	if err != nil {
		return nil, fmt.Errorf("building Temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("starting Temporal server: %w", err)
	}
	return srv, nil
}

// reassignPorts picks new ports for every service's membership and for the
// services other than the frontend (whose port clients were told).
func reassignPorts(conf *config.Config, ip string) error {
	for name, svc := range conf.Services {
		if name != "frontend" {
			p, err := pickPort(ip)
			if err != nil {
				return err
			}
			svc.RPC.GRPCPort = p
		}
		m, err := pickPort(ip)
		if err != nil {
			return err
		}
		svc.RPC.MembershipPort = m
		conf.Services[name] = svc
	}
	return nil
}

func buildConfig(opts Options) (*config.Config, error) {
	sqlConf := &config.SQL{PluginName: sqliteplugin.PluginName, ConnectAttributes: map[string]string{}}
	if opts.DatabaseFile == "" {
		sqlConf.ConnectAttributes["mode"] = "memory"
		sqlConf.ConnectAttributes["cache"] = "shared"
		sqlConf.DatabaseName = fmt.Sprintf("kiln-%d", time.Now().UnixNano())
	} else {
		sqlConf.ConnectAttributes["mode"] = "rwc"
		sqlConf.ConnectAttributes["journal_mode"] = "wal"
		sqlConf.ConnectAttributes["synchronous"] = "normal"
		sqlConf.ConnectAttributes["busy_timeout"] = "10000"
		sqlConf.DatabaseName = opts.DatabaseFile
	}

	var conf config.Config
	conf.Global.Membership = config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: opts.IP}
	conf.Persistence = config.Persistence{
		DefaultStore:     sqliteplugin.PluginName,
		VisibilityStore:  sqliteplugin.PluginName,
		NumHistoryShards: 1,
		DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlConf}},
	}
	frontend := net.JoinHostPort(opts.IP, strconv.Itoa(opts.Port))
	conf.ClusterMetadata = &cluster.Config{
		EnableGlobalNamespace:    false,
		FailoverVersionIncrement: 10,
		MasterClusterName:        "active",
		CurrentClusterName:       "active",
		ClusterInformation: map[string]cluster.ClusterInformation{
			"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontend},
		},
	}
	conf.DCRedirectionPolicy = config.DCRedirectionPolicy{Policy: "noop"}
	conf.Services = map[string]config.Service{}
	for _, name := range []string{"frontend", "history", "matching", "worker"} {
		port := opts.Port
		if name != "frontend" {
			p, err := pickPort(opts.IP)
			if err != nil {
				return nil, err
			}
			port = p
		}
		membership, err := pickPort(opts.IP)
		if err != nil {
			return nil, err
		}
		conf.Services[name] = config.Service{RPC: config.RPC{GRPCPort: port, MembershipPort: membership, BindOnIP: opts.IP}}
	}
	conf.Archival.History.State = "disabled"
	conf.Archival.Visibility.State = "disabled"
	conf.NamespaceDefaults.Archival.History.State = "disabled"
	conf.NamespaceDefaults.Archival.Visibility.State = "disabled"
	conf.PublicClient.HostPort = frontend
	return &conf, nil
}

func buildLogger(path string) (log.Logger, error) {
	if path == "" {
		return fatalLogger{log.NewNoopLogger()}, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating log directory: %w", err)
	}
	return fatalLogger{log.NewZapLogger(log.BuildZapLogger(log.Config{Level: "warn", OutputFile: path}))}, nil
}

// FreePort asks the kernel for a free TCP port on ip.
func FreePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("finding a free port on %s: %w", ip, err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func portAvailable(ip string, port int) error {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return l.Close()
}

// quietLogger drops the SDK's own log lines while probing readiness.
type quietLogger struct{}

func (quietLogger) Debug(string, ...interface{}) {}
func (quietLogger) Info(string, ...interface{})  {}
func (quietLogger) Warn(string, ...interface{})  {}
func (quietLogger) Error(string, ...interface{}) {}

// forgetMembership deletes the cluster membership an earlier run of the
// server saved in its database file. Each start binds new membership
// ports, so the saved rows name hosts that no longer exist; ringpop would
// try to bootstrap from them and the server would not serve workflows
// until they expired (about 50 s after a restart). This process is the
// whole cluster, so no row of another live host can be lost.
func forgetMembership(dbFile string) error {
	db, err := sql.Open("sqlite", "file:"+dbFile+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("opening %s: %w", dbFile, err)
	}
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM cluster_membership`); err != nil {
		return fmt.Errorf("clearing the saved cluster membership in %s: %w", dbFile, err)
	}
	return nil
}
