//go:build !linux

package localfs

import "errors"

// exchange is not available here: ReplaceDir moves the old directory aside.
func exchange(a, b string) error { return errors.New("atomic exchange not supported") }
