// Command slowtrainer is a test fixture: it reports progress for a few
// seconds, then runs Kiln's real trainer (/trainer). The durability test uses
// it so that a worker can be killed while a training container is running.
package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	const steps = 16
	for i := 1; i <= steps; i++ {
		fmt.Printf("KILN_PROGRESS {\"pct\": %d, \"msg\": \"warming up %d/%d\"}\n", i*100/(steps+1), i, steps)
		time.Sleep(500 * time.Millisecond)
	}
	if err := syscall.Exec("/trainer", []string{"/trainer"}, os.Environ()); err != nil {
		fmt.Fprintln(os.Stderr, "slowtrainer:", err)
		os.Exit(1)
	}
}
