// Command kiln-ui serves the Temporal web UI (github.com/temporalio/ui-server,
// the version Kiln links) against a Temporal frontend, as its own process:
// what `kiln dev` embeds, for clusters whose Temporal runs elsewhere
// (deploy/local).
//
//	kiln-ui --address 127.0.0.1:7233 --ip 127.0.0.1 --port 8233
//
// With --register-namespace it first registers --namespace on the frontend
// when it is missing (the Temporal server has no command for it), so a fresh
// cluster can be set up without the temporal CLI.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kiln-ui:", err)
		os.Exit(1)
	}
}

// run serves the UI until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kiln-ui", flag.ContinueOnError)
	fs.SetOutput(stderr)
	address := fs.String("address", "127.0.0.1:7233", "Temporal frontend host:port")
	ip := fs.String("ip", "127.0.0.1", "address the UI listens on")
	port := fs.Int("port", 8233, "port the UI listens on")
	namespace := fs.String("namespace", "default", "the UI's default namespace")
	register := fs.Bool("register-namespace", false, "register --namespace on the frontend when missing, before serving")
	retention := fs.Duration("retention", 72*time.Hour, "workflow retention of a namespace --register-namespace creates")
	wait := fs.Duration("wait", 2*time.Minute, "how long to wait for the frontend to answer (with --register-namespace)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *register {
		wctx, cancel := context.WithTimeout(ctx, *wait)
		err := registerNamespace(wctx, *address, *namespace, *retention, stdout)
		cancel()
		if err != nil {
			return err
		}
	}

	ui := uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Host:                *ip,
		Port:                *port,
		TemporalGRPCAddress: *address,
		EnableUI:            true,
		DefaultNamespace:    *namespace,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
		DisableNewsFetch:    true,
	}))
	errc := make(chan error, 1)
	go func() { errc <- ui.Start() }() // Start blocks until Stop
	fmt.Fprintf(stdout, "kiln-ui: Temporal web UI on http://%s for %s\n", net.JoinHostPort(*ip, strconv.Itoa(*port)), *address)
	select {
	case err := <-errc:
		if err == nil {
			err = errors.New("stopped")
		}
		return fmt.Errorf("UI server: %w", err)
	case <-ctx.Done():
		ui.Stop()
		return nil
	}
}

// registerNamespace waits for the frontend at address to answer, then
// registers namespace unless it exists, and waits until it can be
// described.
func registerNamespace(ctx context.Context, address, namespace string, retention time.Duration, stdout io.Writer) error {
	var nc client.NamespaceClient
	var err error
	for {
		nc, err = client.NewNamespaceClient(client.Options{HostPort: address, Logger: quietLogger{}})
		if err == nil {
			_, err = nc.Describe(ctx, namespace)
			var notFound *serviceerror.NamespaceNotFound
			if err == nil || errors.As(err, &notFound) {
				break
			}
			nc.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the Temporal frontend at %s: %w", address, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
	defer nc.Close()
	if err == nil {
		fmt.Fprintf(stdout, "kiln-ui: namespace %s exists\n", namespace)
		return nil
	}
	err = nc.Register(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        namespace,
		Description:                      "registered by kiln-ui",
		WorkflowExecutionRetentionPeriod: durationpb.New(retention),
	})
	var exists *serviceerror.NamespaceAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("registering namespace %s: %w", namespace, err)
	}
	for {
		if _, err = nc.Describe(ctx, namespace); err == nil {
			fmt.Fprintf(stdout, "kiln-ui: registered namespace %s (retention %s)\n", namespace, retention)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("namespace %s: %w", namespace, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// quietLogger drops the SDK's log lines while the frontend is not up yet.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
