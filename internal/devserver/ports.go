package devserver

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// The embedded server's ports are picked here and bound later, by the
// Temporal server itself (it takes port numbers, not listeners). A port
// picked by listening on ":0" comes from the kernel's ephemeral range, and
// any other ":0" listener — of this process (a model server, a test server)
// or of another — may be handed the same port in between: the Temporal
// server then fails to bind and, in its own code, exits the process. So the
// ports are picked below the ephemeral range, where the kernel never hands
// out ports, and a failed bind is turned into an error that Start retries
// with new ports (see fatalLogger).

var (
	portMu sync.Mutex
	// handed are the ports this process picked, never picked twice.
	handed = map[int]bool{}
)

// pickPort picks the ports of the server's internal services; tests
// replace it.
var pickPort = ServicePort

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read, Linux's default).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 2048 {
		return 32768
	}
	return n
}

// ServicePort returns a port on ip that is free now and that no ":0"
// listener can be handed: a random one below the ephemeral range (between
// 10000 and it, when the range starts high enough), never one this process
// picked before. Where no such port is found, it falls back to FreePort.
func ServicePort(ip string) (int, error) {
	low := ephemeralLow()
	lo := max(1024, low-22000)
	if lo >= low {
		return FreePort(ip)
	}
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		p := lo + rand.IntN(low-lo)
		if handed[p] {
			continue
		}
		if portAvailable(ip, p) == nil {
			handed[p] = true
			return p, nil
		}
	}
	return FreePort(ip)
}

// fatalError is what fatalLogger panics with instead of exiting.
type fatalError struct{ msg string }

func (e *fatalError) Error() string { return e.msg }

// fatalLogger passes everything to its logger but Fatal, which the
// Temporal server calls when, for example, it cannot bind a port: instead of
// exiting the process (silently, for the log goes to a file), it logs at
// error level and panics with a *fatalError, which Start recovers and
// returns (and retries, for a port taken meanwhile). A Fatal outside Start
// crashes the process with the message and a stack trace on stderr.
type fatalLogger struct{ log.Logger }

func (l fatalLogger) Fatal(msg string, tags ...tag.Tag) {
	l.Logger.Error(msg, tags...)
	var b strings.Builder
	b.WriteString(msg)
	for _, t := range tags {
		fmt.Fprintf(&b, "; %s: %v", t.Key(), t.Value())
	}
	panic(&fatalError{msg: b.String()})
}

// With keeps the wrapper around loggers with tags.
func (l fatalLogger) With(tags ...tag.Tag) log.Logger {
	return fatalLogger{log.With(l.Logger, tags...)}
}

// Skip keeps the wrapper around loggers that skip stack frames.
func (l fatalLogger) Skip(extra int) log.Logger {
	if s, ok := l.Logger.(log.SkipLogger); ok {
		return fatalLogger{s.Skip(extra)}
	}
	return l
}
