package containers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const probeRef = "kiln/probe:dev"

// newTestProcess returns a process runtime that runs the probe for probeRef.
func newTestProcess(t *testing.T) *Process {
	t.Helper()
	needProbe(t)
	return NewProcess(ProcessOptions{Binaries: map[string]string{probeRef: probeBin}})
}

// probeDigest is the expected process ImageID of the probe.
func probeDigest(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(probeBin)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// childPID extracts the pid printed by the probe's spawn behaviour.
func childPID(t *testing.T, log string) int {
	t.Helper()
	for _, l := range lines(log) {
		if s, ok := strings.CutPrefix(l, "child pid "); ok {
			pid, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("bad child pid line %q", l)
			}
			return pid
		}
	}
	t.Fatalf("no child pid in log:\n%s", log)
	return 0
}

// waitDead waits up to 2s for pid to be gone or a zombie.
func waitDead(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return
		}
		// The state follows the parenthesised command name.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
			return
		}
	}
	t.Errorf("process %d still running", pid)
}

func TestProcessRun(t *testing.T) {
	p := newTestProcess(t)
	t.Setenv("KILN_WORKER_SECRET", "must-not-leak")
	wantSuccess := func(t *testing.T, res Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.ExitCode != 0 || res.Runtime != RuntimeProcess || res.ImageID != probeDigest(t) || res.Duration <= 0 {
			t.Fatalf("result = %+v, want exit 0 in process with image %s", res, probeDigest(t))
		}
	}
	tests := []struct {
		name    string
		command []string
		env     []string
		check   func(t *testing.T, res Result, err error, rec *recorder, in, out string)
	}{
		{
			name:    "ok copies input and reports progress",
			command: []string{"ok"},
			check: func(t *testing.T, res Result, err error, rec *recorder, in, out string) {
				wantSuccess(t, res, err)
				got, err := os.ReadFile(filepath.Join(out, "output.txt"))
				if err != nil || string(got) != "hello kiln" {
					t.Errorf("output.txt = %q, %v; want %q", got, err, "hello kiln")
				}
				want := []Progress{{Pct: 50, Msg: "copying"}, {Pct: 100, Msg: "done"}}
				if !slices.Equal(rec.progress, want) {
					t.Errorf("progress = %+v, want %+v", rec.progress, want)
				}
				for _, l := range []string{"plain stdout line", "probe: copied 10 bytes"} {
					if !slices.Contains(lines(rec.log.String()), l) {
						t.Errorf("log lacks %q:\n%s", l, rec.log.String())
					}
				}
			},
		},
		{
			name:    "non-zero exit is a RunError with the stderr tail",
			command: []string{"exit", "3"},
			check: func(t *testing.T, res Result, err error, rec *recorder, in, out string) {
				var runErr *RunError
				if !errors.As(err, &runErr) || runErr.ExitCode != 3 || res.ExitCode != 3 {
					t.Fatalf("err = %v, result %+v; want a *RunError with exit code 3", err, res)
				}
				want := "trainer exited with code 3: probe: failing on purpose\nprobe: exit code 3"
				if err.Error() != want {
					t.Errorf("message = %q, want %q", err.Error(), want)
				}
			},
		},
		{
			name:    "environment carries the contract, not the worker's",
			command: []string{"env"},
			env:     []string{"KILN_TEST_VAR=forty two", "KILN_IN=/overridden"},
			check: func(t *testing.T, res Result, err error, rec *recorder, in, out string) {
				wantSuccess(t, res, err)
				env := lines(rec.log.String())
				for _, kv := range []string{"KILN_IN=" + in, "KILN_OUT=" + out, "KILN_TEST_VAR=forty two"} {
					if !slices.Contains(env, kv) {
						t.Errorf("environment lacks %s:\n%s", kv, rec.log.String())
					}
				}
				for _, kv := range env {
					if strings.HasPrefix(kv, "KILN_WORKER_SECRET=") || kv == "KILN_IN=/overridden" {
						t.Errorf("environment has %s", kv)
					}
				}
			},
		},
		{
			name:    "descendants are killed when the trainer exits",
			command: []string{"spawn", "60", "0"},
			check: func(t *testing.T, res Result, err error, rec *recorder, in, out string) {
				wantSuccess(t, res, err)
				if res.Duration > time.Second {
					t.Errorf("Run took %v: a leftover child held it open", res.Duration)
				}
				waitDead(t, childPID(t, rec.log.String()))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, out := newDirs(t, "hello kiln")
			var rec recorder
			spec := RunSpec{Image: probeRef, Command: tt.command, InputDir: in, OutputDir: out, Env: tt.env, Timeout: time.Minute}
			rec.attach(&spec)
			res, err := p.Run(context.Background(), spec)
			tt.check(t, res, err, &rec, in, out)
		})
	}
}

func TestProcessInterrupt(t *testing.T) {
	p := newTestProcess(t)
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  bool
	}{
		{name: "timeout", timeout: time.Second},
		{name: "cancel", cancel: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, out := newDirs(t, "")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var rec recorder
			var canceledAt time.Time
			spec := RunSpec{Image: probeRef, Command: []string{"spawn", "60", "60"}, InputDir: in, OutputDir: out, Timeout: tt.timeout, Log: &rec.log}
			if tt.cancel {
				spec.Progress = cancelOnProgress(cancel, &canceledAt)
			}
			start := time.Now()
			_, err := p.Run(ctx, spec)
			elapsed := time.Since(start)
			if tt.cancel {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want context.Canceled", err)
				}
				if late := time.Since(canceledAt); canceledAt.IsZero() || late > 5*time.Second {
					t.Errorf("Run returned %v after cancellation (canceled: %v), want < 5s", late, !canceledAt.IsZero())
				}
			} else {
				var runErr *RunError
				if !errors.As(err, &runErr) || !runErr.TimedOut || err.Error() != "timed out after 1s" {
					t.Fatalf("err = %v, want a *RunError \"timed out after 1s\"", err)
				}
				if elapsed > tt.timeout+5*time.Second {
					t.Errorf("Run took %v with a %v timeout", elapsed, tt.timeout)
				}
			}
			waitDead(t, childPID(t, rec.log.String()))
		})
	}
}

func TestProcessErrors(t *testing.T) {
	p := newTestProcess(t)
	notExec := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.binaries["kiln/not-exec:dev"] = notExec
	tests := []struct {
		name  string
		image string
		want  string
	}{
		{name: "unknown image", image: "kiln/other:dev", want: "process runtime: no local binary for image kiln/other:dev (known: [kiln/not-exec:dev kiln/probe:dev])"},
		{name: "binary not executable", image: "kiln/not-exec:dev", want: "is not an executable file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, out := newDirs(t, "")
			_, err := p.Run(context.Background(), RunSpec{Image: tt.image, Command: []string{"ok"}, InputDir: in, OutputDir: out})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// BenchmarkProcessRunOverhead measures one process-runtime step of the
// trivial "ok" probe, for comparison with BenchmarkDockerRunOverhead.
func BenchmarkProcessRunOverhead(b *testing.B) {
	needProbe(b)
	p := NewProcess(ProcessOptions{Binaries: map[string]string{probeRef: probeBin}})
	in, out := newDirs(b, "bench")
	spec := RunSpec{Image: probeRef, Command: []string{"ok"}, InputDir: in, OutputDir: out}
	for b.Loop() {
		if _, err := p.Run(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
	}
}

// TestProcessIdentify checks that the process runtime identifies an image by
// the hash of its binary, the ImageID Run reports, and that the identity
// follows the binary when it is rebuilt.
func TestProcessIdentify(t *testing.T) {
	p := newTestProcess(t)
	data, err := os.ReadFile(probeBin)
	if err != nil {
		t.Fatal(err)
	}
	rebuilt := filepath.Join(t.TempDir(), "rebuilt")
	if err := os.WriteFile(rebuilt, data, 0o755); err != nil {
		t.Fatal(err)
	}
	p.binaries["kiln/rebuilt:dev"] = rebuilt
	notExec := filepath.Join(t.TempDir(), "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p.binaries["kiln/not-exec:dev"] = notExec
	sumOf := func(b []byte) string {
		s := sha256.Sum256(b)
		return "sha256:" + hex.EncodeToString(s[:])
	}
	changed := append(append([]byte{}, data...), "rebuilt"...)
	tests := []struct {
		name   string
		image  string
		before func(t *testing.T)
		want   string
		err    string
	}{
		{name: "probe", image: probeRef, want: probeDigest(t)},
		{name: "copy of the probe", image: "kiln/rebuilt:dev", want: probeDigest(t)},
		{name: "binary rebuilt", image: "kiln/rebuilt:dev", want: sumOf(changed), before: func(t *testing.T) {
			if err := os.WriteFile(rebuilt, changed, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "unknown image", image: "kiln/other:dev", err: "no local binary for image kiln/other:dev"},
		{name: "binary not executable", image: "kiln/not-exec:dev", err: "is not an executable file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before(t)
			}
			got, err := p.Identify(context.Background(), tt.image)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("Identify(%s) = %q, %v; want an error containing %q", tt.image, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Identify(%s) = %q, %v; want %q", tt.image, got, err, tt.want)
			}
		})
	}
	// Run reports the same identity.
	in, out := newDirs(t, "")
	res, err := p.Run(context.Background(), RunSpec{Image: probeRef, Command: []string{"ok"}, InputDir: in, OutputDir: out})
	if id, _ := p.Identify(context.Background(), probeRef); err != nil || res.ImageID != id {
		t.Errorf("Run reported image %q (%v), Identify %q", res.ImageID, err, id)
	}
}
