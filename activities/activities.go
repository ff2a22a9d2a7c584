// Package activities holds Kiln's Temporal activities, one file per stage:
// ingest, preprocess, train, evaluate, register, score, deploy and monitor,
// plus noop steps and the foreach helpers (listing items, storing item
// results). They are methods on Activities, which holds their dependencies.
// Each takes one input struct and returns one output struct; steps exchange
// artifact URIs (see Artifacts), never row data. The cacheable steps share
// the step cache and resume logic of cache.go.
package activities

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os/user"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kiln-ml/kiln/containers"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/registry"
)

// Activities holds what Kiln's activities need. Build one per worker process.
type Activities struct {
	// Store keeps datasets, bundles and scored files.
	Store *artifact.Store
	// Registry is the model registry.
	Registry *registry.Registry
	// Docker runs training containers; nil when no Docker engine is reachable.
	Docker containers.Runtime
	// Process runs the same trainers as local processes (fallback and "runtime: process").
	Process containers.Runtime
	// Temporal starts the monitor and retrain workflows.
	Temporal client.Client
	// TaskQueue is where workflows this worker starts are scheduled.
	TaskQueue string
	// ModelServer is the default model server base URL for deploy steps.
	ModelServer string
	// AdminToken authenticates calls to model servers' admin routes.
	AdminToken string
	// RequestLogDir is where model servers write request logs (one directory per model).
	RequestLogDir string
	// HTTP is the client for model server calls; nil means a client with a 30 s timeout.
	HTTP *http.Client
	// Logger receives the worker-side log; nil means slog.Default().
	Logger *slog.Logger
	// UIURL and Namespace locate runs in the Temporal web UI, for links in
	// reports; empty leaves the links out.
	UIURL     string
	Namespace string
	// ReportsURL is the base URL of Kiln's local page (reports index,
	// lineage), for links in reports; empty leaves them out.
	ReportsURL string
	// AllowPaths, when set, confines the files specs name (sources,
	// inputs, outputs, globs) to these directories and the artifact
	// store: a shared worker's --allow-path (see paths.go).
	AllowPaths []string
	// HostQueue is a task queue only this worker polls. With an object
	// store as the artifact store, a fanned-out score step's shards run
	// there, on the disk that holds its staging directory (see
	// ScorePlanOutput.Queue).
	HostQueue string
}

func (a *Activities) logger(ctx context.Context) *slog.Logger {
	l := a.Logger
	if l == nil {
		l = slog.Default()
	}
	if activity.IsActivity(ctx) {
		info := activity.GetInfo(ctx)
		l = l.With("workflow", info.WorkflowExecution.ID, "activity", info.ActivityID, "attempt", info.Attempt)
	}
	return l
}

func (a *Activities) httpClient() *http.Client {
	if a.HTTP != nil {
		return a.HTTP
	}
	return &http.Client{Timeout: 30 * time.Second}
}

// Error types that the workflows do not retry (see workflows.ErrTypeInvalidInput).
const (
	errInvalidInput = "InvalidInput"
	errGateFailed   = "GateFailed"
)

// invalid wraps a bad-input error so Temporal does not retry it. The message
// already holds the cause's text, so the cause is not attached again.
func invalid(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), errInvalidInput, nil)
}

// pulseEvery is how often a running step heartbeats while its progress does
// not change.
const pulseEvery = 3 * time.Second

// pulse heartbeats a running activity: its latest progress at once when it
// changes, and again every pulseEvery while it does not. A step that is busy
// for long (a big CSV, a quiet trainer) is then never mistaken for a dead
// worker, and a cancellation reaches it within seconds. Outside an activity
// (tests call activities directly) it does nothing.
type pulse struct {
	ctx  context.Context
	mu   sync.Mutex
	last Progress
	done chan struct{}
}

// startPulse starts heartbeating first; call stop when the step ends.
func startPulse(ctx context.Context, first Progress) *pulse {
	p := &pulse{ctx: ctx, last: first, done: make(chan struct{})}
	if !activity.IsActivity(ctx) {
		return p
	}
	activity.RecordHeartbeat(ctx, first)
	go func() {
		t := time.NewTicker(pulseEvery)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.mu.Lock()
				last := p.last
				p.mu.Unlock()
				activity.RecordHeartbeat(ctx, last)
			}
		}
	}()
	return p
}

// set records new progress and heartbeats it.
func (p *pulse) set(pr Progress) {
	p.mu.Lock()
	if pr.Log == nil {
		pr.Log = p.last.Log
	}
	p.last = pr
	p.mu.Unlock()
	if activity.IsActivity(p.ctx) {
		activity.RecordHeartbeat(p.ctx, pr)
	}
}

// logTail is how many of a step's latest log lines its heartbeats carry.
const logTail = 5

// Write implements io.Writer for a step's log: each line (one Write per
// line, as containers.RunSpec.Log promises) joins the tail of log lines the
// next heartbeat carries, so the Temporal UI and `kiln run --wait` show what
// a long step is printing. It never fails.
func (p *pulse) Write(b []byte) (int, error) {
	line := strings.TrimRight(string(b), "\r\n")
	if len(line) > 300 {
		line = line[:300] + "…"
	}
	p.mu.Lock()
	tail := append(make([]string, 0, logTail), p.last.Log...)
	if len(tail) == logTail {
		tail = tail[1:]
	}
	p.last.Log = append(tail, line)
	p.mu.Unlock()
	return len(b), nil
}

// stop ends the heartbeats.
func (p *pulse) stop() { close(p.done) }

// badInput reports err as invalid input, unless the step was cancelled or
// timed out meanwhile: that is not the input's fault and must read as such.
func badInput(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return invalid("%v", err)
}

// Progress is the heartbeat detail Kiln's activities record; `kiln run --wait`
// shows it.
type Progress struct {
	Pct float64 `json:"pct"`
	Msg string  `json:"msg"`
	// Log holds the step's latest log lines (at most five), when it logs.
	Log []string `json:"log,omitempty"`
}

// CurrentUser names the local user for created_by fields.
func CurrentUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}
