package devserver

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

func TestServicePortBelowEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	seen := map[int]bool{}
	for range 20 {
		p, err := ServicePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		if p >= low || seen[p] {
			t.Fatalf("port %d: at or above the ephemeral range (%d) or picked twice", p, low)
		}
		seen[p] = true
	}
}

func TestFatalLoggerPanicsInsteadOfExiting(t *testing.T) {
	l := fatalLogger{log.NewNoopLogger()}
	for name, lg := range map[string]log.Logger{"plain": l, "with": l.With(tag.NewStringTag("k", "v")), "skip": l.Skip(1)} {
		func() {
			defer func() {
				var fe *fatalError
				r := recover()
				if err, ok := r.(error); !ok || !errors.As(err, &fe) || !strings.Contains(fe.Error(), "bind failed") {
					t.Errorf("%s: recovered %v, want a *fatalError", name, r)
				}
			}()
			lg.Fatal("bind failed", tag.NewStringTag("address", "127.0.0.1:1"))
		}()
	}
}

// TestStartRetriesATakenPort hands the server a service port that another
// listener holds, as happens when a ":0" listener takes it between the pick
// and the bind: Start must retry with new ports instead of exiting the
// process.
func TestStartRetriesATakenPort(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	taken := held.Addr().(*net.TCPAddr).Port
	calls := 0
	pickPort = func(ip string) (int, error) {
		calls++
		if calls == 1 {
			return taken, nil
		}
		return ServicePort(ip)
	}
	defer func() { pickPort = ServicePort }()
	s, err := Start(context.Background(), Options{IP: "127.0.0.1", Namespace: "default"})
	if err != nil {
		t.Fatalf("Start with a taken port: %v", err)
	}
	defer s.Stop()
	if calls <= 7 {
		t.Errorf("%d ports picked: the taken port was not replaced", calls)
	}
	if _, port, _ := net.SplitHostPort(s.Address()); port == strconv.Itoa(taken) {
		t.Errorf("frontend on the taken port %d", taken)
	}
}
