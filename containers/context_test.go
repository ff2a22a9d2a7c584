package containers

import (
	"context"
	"sync"
	"testing"
	"time"
)

// watchedCtx is a parent context that counts the contexts derived from it
// and not yet canceled: the context package registers a child with a parent
// of a type it does not know through the parent's AfterFunc method, and
// calls the returned stop function when the child is canceled.
type watchedCtx struct {
	context.Context
	done chan struct{}
	mu   sync.Mutex
	live int
}

func newWatchedCtx() *watchedCtx {
	return &watchedCtx{Context: context.Background(), done: make(chan struct{})}
}

// Done returns a channel that is never closed: the parent is never canceled.
func (c *watchedCtx) Done() <-chan struct{} { return c.done }

// AfterFunc registers a child; the returned stop function unregisters it.
func (c *watchedCtx) AfterFunc(func()) (stop func() bool) {
	c.mu.Lock()
	c.live++
	c.mu.Unlock()
	var once sync.Once
	return func() bool {
		stopped := false
		once.Do(func() {
			c.mu.Lock()
			c.live--
			c.mu.Unlock()
			stopped = true
		})
		return stopped
	}
}

// children returns how many derived contexts are still registered.
func (c *watchedCtx) children() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.live
}

// TestRunReleasesContexts checks that Run cancels every context it derives
// from its ctx, with and without a timeout: a context that is never
// canceled stays registered with a long-lived parent (a worker's) for good.
func TestRunReleasesContexts(t *testing.T) {
	runtimes := []struct {
		name string
		rt   func(t *testing.T) (Runtime, string)
	}{
		{RuntimeProcess, func(t *testing.T) (Runtime, string) { return newTestProcess(t), probeRef }},
		{RuntimeDocker, func(t *testing.T) (Runtime, string) { return needDocker(t), probeImage }},
	}
	for _, r := range runtimes {
		for _, timeout := range []time.Duration{0, time.Minute} {
			t.Run(r.name+"/timeout="+timeout.String(), func(t *testing.T) {
				rt, image := r.rt(t)
				in, out := newDirs(t, "hello kiln")
				ctx := newWatchedCtx()
				spec := RunSpec{Image: image, Command: []string{"ok"}, InputDir: in, OutputDir: out, Timeout: timeout}
				if r.name == RuntimeDocker {
					spec.Labels = testLabels(t)
				}
				if _, err := rt.Run(ctx, spec); err != nil {
					t.Fatalf("Run: %v", err)
				}
				// HTTP requests of the Docker client may let go of their
				// contexts just after they return.
				for deadline := time.Now().Add(2 * time.Second); ctx.children() != 0 && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
				}
				if n := ctx.children(); n != 0 {
					t.Errorf("%d contexts derived from Run's ctx were never canceled", n)
				}
			})
		}
	}
}
