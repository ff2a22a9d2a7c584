//go:build unix && !linux && !kilnedge

package serving

import "syscall"

// lowerPriority runs pid at nice 19.
func lowerPriority(pid int) error {
	return syscall.Setpriority(syscall.PRIO_PROCESS, pid, 19)
}
