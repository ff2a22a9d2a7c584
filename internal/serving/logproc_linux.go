//go:build !kilnedge

package serving

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// lowerPriority makes pid run only when the processor would otherwise be
// idle (SCHED_IDLE), or failing that at nice 19.
func lowerPriority(pid int) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_IDLE}
	if err := unix.SchedSetAttr(pid, &attr, 0); err == nil {
		return nil
	}
	return syscall.Setpriority(syscall.PRIO_PROCESS, pid, 19)
}
