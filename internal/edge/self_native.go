//go:build !wasip1

package edge

import (
	"fmt"
	"os"
)

// embedded returns the payload appended to the running executable.
func embedded() ([]byte, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the running executable: %w", err)
	}
	return readAppended(exe)
}
