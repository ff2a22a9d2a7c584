// Command kiln-objstore is a small S3-compatible object store for running
// Kiln's production topology on one machine (deploy/local): the S3 protocol
// of github.com/johannesboyne/gofakes3 over its bbolt backend, one database
// file under --dir. Each write is a bbolt transaction, so the store survives
// kill -9: an object is either fully there or not at all.
//
//	kiln-objstore --addr 127.0.0.1:9000 --dir build/cluster/s3 --bucket kiln
//
// Clients use path-style URLs and any credentials (they are not checked), e.g.
// s3://kiln/artifacts?endpoint=http://127.0.0.1:9000&use_path_style=true&disable_https=true&region=us-east-1.
// Objects are held in memory while read or written: it is for development
// clusters, not for terabytes.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3bolt"
	bolt "go.etcd.io/bbolt"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kiln-objstore:", err)
		os.Exit(1)
	}
}

// run serves the store until ctx is done.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kiln-objstore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9000", "listen address (host:port)")
	dir := fs.String("dir", "", "data directory (holds objects.db); required")
	buckets := fs.String("bucket", "kiln", "buckets to create at start when missing, comma-separated")
	verbose := fs.Bool("v", false, "log every request")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	dbFile := filepath.Join(*dir, "objects.db")
	// The timeout bounds the wait for the file lock another running
	// instance holds (bbolt waits forever by default).
	db, err := bolt.Open(dbFile, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("opening %s: %w (is another kiln-objstore using --dir %s?)", dbFile, err, *dir)
	}
	defer db.Close()
	backend := s3bolt.New(db)
	for _, b := range strings.Split(*buckets, ",") {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		ok, err := backend.BucketExists(b)
		if err != nil {
			return fmt.Errorf("bucket %s: %w", b, err)
		}
		if !ok {
			if err := backend.CreateBucket(b); err != nil {
				return fmt.Errorf("creating bucket %s: %w", b, err)
			}
		}
	}

	opts := []gofakes3.Option{gofakes3.WithAutoBucket(false)}
	if *verbose {
		opts = append(opts, gofakes3.WithLogger(gofakes3.StdLog(log.New(stderr, "", log.LstdFlags))))
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: gofakes3.New(backend, opts...).Server(), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "kiln-objstore: S3 on http://%s (data in %s; buckets %s)\n", ln.Addr(), dbFile, *buckets)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	return nil
}
