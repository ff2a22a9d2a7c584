package localfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// ReplaceDir publishes the complete directory staging as dst. When dst does
// not exist, it is a rename. When it does, the two directories are swapped
// in one atomic step (renameat2 with RENAME_EXCHANGE where the system has
// it), so a reader of dst sees either the old contents or the new ones,
// never a missing or partial directory; the old contents are then removed.
// Where the exchange is not available, the old directory is moved aside
// first, which leaves a moment with no dst (never a partial one).
// staging and dst must be on one file system.
func ReplaceDir(staging, dst string) error {
	if _, err := os.Lstat(dst); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(staging, dst); err != nil {
			return fmt.Errorf("publishing %s: %w", dst, err)
		}
		syncDirectory(filepath.Dir(dst))
		return nil
	}
	if err := exchange(staging, dst); err == nil {
		// staging now holds the old contents.
		syncDirectory(filepath.Dir(dst))
		if err := os.RemoveAll(staging); err != nil {
			return fmt.Errorf("removing the replaced %s (now at %s): %w", dst, staging, err)
		}
		return nil
	}
	old := filepath.Join(filepath.Dir(dst), fmt.Sprintf(".%s.old-%d", filepath.Base(dst), time.Now().UnixNano()))
	if err := os.Rename(dst, old); err != nil {
		return fmt.Errorf("publishing %s: moving the previous one aside: %w", dst, err)
	}
	if err := os.Rename(staging, dst); err != nil {
		os.Rename(old, dst)
		return fmt.Errorf("publishing %s: %w", dst, err)
	}
	syncDirectory(filepath.Dir(dst))
	os.RemoveAll(old)
	return nil
}

// syncDirectory makes renames in dir durable; errors are ignored (some file
// systems cannot sync directories).
func syncDirectory(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
