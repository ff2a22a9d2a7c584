package containers

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
)

func TestRunErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  RunError
		want string
	}{
		{name: "exit code with tail", err: RunError{ExitCode: 2, LogTail: "bad input\nabort"}, want: "trainer exited with code 2: bad input\nabort"},
		{name: "exit code without tail", err: RunError{ExitCode: 1}, want: "trainer exited with code 1"},
		{name: "oom", err: RunError{ExitCode: 137, OOMKilled: true, MemoryLimit: 512 << 20}, want: "killed: out of memory, limit 512 MiB"},
		{name: "oom fractional limit", err: RunError{OOMKilled: true, MemoryLimit: 3 << 19}, want: "killed: out of memory, limit 1.5 MiB"},
		{name: "timeout wins over exit code", err: RunError{ExitCode: -1, TimedOut: true, Timeout: 30 * time.Minute, LogTail: "tree 3/100"}, want: "timed out after 30m0s: tree 3/100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseProgress(t *testing.T) {
	tests := []struct {
		line   string
		want   Progress
		wantOK bool
	}{
		{line: `KILN_PROGRESS {"pct": 40, "msg": "tree 40/100"}`, want: Progress{Pct: 40, Msg: "tree 40/100"}, wantOK: true},
		{line: `KILN_PROGRESS {"pct": 12.5}`, want: Progress{Pct: 12.5}, wantOK: true},
		{line: "KILN_PROGRESS\t{\"msg\": \"tab\"}  ", want: Progress{Msg: "tab"}, wantOK: true},
		{line: `KILN_PROGRESS not json`},
		{line: `KILN_PROGRESS`},
		{line: `KILN_PROGRESSX {"pct": 1}`},
		{line: ` KILN_PROGRESS {"pct": 1}`},
		{line: `progress 40`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, ok := parseProgress([]byte(tt.line))
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("parseProgress = %+v, %v; want %+v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestOutputSink(t *testing.T) {
	long := strings.Repeat("x", maxLineBytes+10)
	// "é" is 2 bytes: an odd number of x's puts a rune across each byte limit.
	tailCross := "x" + strings.Repeat("é", tailLineBytes)
	lineCross := "x" + strings.Repeat("é", maxLineBytes/2+5)
	tests := []struct {
		name         string
		stdout       []string // chunks written to stdout
		stderr       []string // chunks written to stderr after stdout
		wantProgress []Progress
		wantLog      string
		wantTail     string
	}{
		{
			name:         "progress split across writes",
			stdout:       []string{"KILN_PROG", "RESS {\"pct\": 1", "0}\nhello\r\n", "KILN_PROGRESS {\"pct\": 20}\n"},
			wantProgress: []Progress{{Pct: 10}, {Pct: 20}},
			wantLog:      "hello\n",
		},
		{
			name:     "unterminated last lines are flushed",
			stdout:   []string{"out"},
			stderr:   []string{"a\nb"},
			wantLog:  "out\na\nb\n",
			wantTail: "a\nb",
		},
		{
			name:     "progress lines on stderr are log lines",
			stderr:   []string{"KILN_PROGRESS {\"pct\": 5}\n"},
			wantLog:  "KILN_PROGRESS {\"pct\": 5}\n",
			wantTail: "KILN_PROGRESS {\"pct\": 5}",
		},
		{
			name:     "tail keeps the last lines",
			stderr:   []string{"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n"},
			wantLog:  "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n",
			wantTail: "3\n4\n5\n6\n7\n8\n9\n10\n11\n12",
		},
		{
			name:     "long lines are split and truncated in the tail",
			stderr:   []string{long + "\n"},
			wantLog:  long[:maxLineBytes] + "\n" + long[maxLineBytes:] + "\n",
			wantTail: long[:tailLineBytes] + "…\n" + long[maxLineBytes:],
		},
		{
			name:     "the tail is cut on a rune boundary",
			stderr:   []string{tailCross + "\n"},
			wantLog:  tailCross + "\n",
			wantTail: tailCross[:tailLineBytes-1] + "…",
		},
		{
			name:     "long lines are split on a rune boundary",
			stderr:   []string{lineCross + "\n"},
			wantLog:  lineCross[:maxLineBytes-1] + "\n" + lineCross[maxLineBytes-1:] + "\n",
			wantTail: lineCross[:tailLineBytes-1] + "…\n" + lineCross[maxLineBytes-1:],
		},
		{
			name:     "invalid UTF-8 is cut at the limit",
			stderr:   []string{strings.Repeat("\x80", tailLineBytes+3) + "\n"},
			wantLog:  strings.Repeat("\x80", tailLineBytes+3) + "\n",
			wantTail: strings.Repeat("\x80", tailLineBytes) + "…",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var progress []Progress
			var log bytes.Buffer
			sink := newOutputSink(RunSpec{Progress: func(p Progress) { progress = append(progress, p) }, Log: &log})
			for _, stream := range []struct {
				chunks []string
				stderr bool
			}{{tt.stdout, false}, {tt.stderr, true}} {
				w := &lineWriter{sink: sink, stderr: stream.stderr}
				for _, c := range stream.chunks {
					if n, err := w.Write([]byte(c)); n != len(c) || err != nil {
						t.Fatalf("Write = %d, %v", n, err)
					}
				}
				w.flush()
			}
			if !slices.Equal(progress, tt.wantProgress) {
				t.Errorf("progress = %+v, want %+v", progress, tt.wantProgress)
			}
			if log.String() != tt.wantLog {
				t.Errorf("log = %q, want %q", log.String(), tt.wantLog)
			}
			if got := sink.logTail(); got != tt.wantTail {
				t.Errorf("tail = %q, want %q", got, tt.wantTail)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct {
		name    string
		spec    RunSpec
		want    RunSpec
		wantErr string
	}{
		{
			name: "defaults",
			spec: RunSpec{Image: "img", InputDir: "/in", OutputDir: "/out"},
			want: RunSpec{Image: "img", InputDir: "/in", OutputDir: "/out", CPUs: 1, MemoryBytes: 1 << 30, PidsLimit: 256, Network: "none"},
		},
		{
			name: "explicit limits kept",
			spec: RunSpec{Image: "img", InputDir: "/in", OutputDir: "/out", CPUs: 0.5, MemoryBytes: 64 << 20, PidsLimit: 10, Network: "bridge"},
			want: RunSpec{Image: "img", InputDir: "/in", OutputDir: "/out", CPUs: 0.5, MemoryBytes: 64 << 20, PidsLimit: 10, Network: "bridge"},
		},
		{name: "no image", spec: RunSpec{InputDir: "/in", OutputDir: "/out"}, wantErr: "image is required"},
		{name: "no output dir", spec: RunSpec{Image: "img", InputDir: "/in"}, wantErr: "directories are required"},
		{name: "negative cpus", spec: RunSpec{Image: "img", InputDir: "/in", OutputDir: "/out", CPUs: -1}, wantErr: "negative limit"},
		{name: "NaN cpus", spec: RunSpec{Image: "img", InputDir: "/in", OutputDir: "/out", CPUs: math.NaN()}, wantErr: "cpus must be a finite number, got NaN"},
		{name: "infinite cpus", spec: RunSpec{Image: "img", InputDir: "/in", OutputDir: "/out", CPUs: math.Inf(1)}, wantErr: "cpus must be a finite number, got +Inf"},
		{name: "bad env", spec: RunSpec{Image: "img", InputDir: "/in", OutputDir: "/out", Env: []string{"=x"}}, wantErr: "not KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.spec.normalize()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.CPUs != tt.want.CPUs || got.MemoryBytes != tt.want.MemoryBytes || got.PidsLimit != tt.want.PidsLimit ||
				got.Network != tt.want.Network || got.InputDir != tt.want.InputDir || got.OutputDir != tt.want.OutputDir {
				t.Errorf("normalize = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestContainerConfig(t *testing.T) {
	spec, err := RunSpec{
		Image: "kiln/trainer:dev", Command: []string{"train", "--trees=10"}, InputDir: "/data/in", OutputDir: "/data/out",
		MemoryBytes: 512 << 20, CPUs: 1.5, Env: []string{"A=1"}, Labels: map[string]string{"kiln.run": "r1", LabelManaged: "false"},
	}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	cfg, host := containerConfig(spec, "sha256:abc")
	checks := []struct {
		name      string
		got, want any
	}{
		{"image pinned by ID", cfg.Image, "sha256:abc"},
		{"command", []string(cfg.Cmd), []string{"train", "--trees=10"}},
		{"env with scratch HOME and TMPDIR", cfg.Env, []string{"A=1", "HOME=/kiln/out/.tmp", "TMPDIR=/kiln/out/.tmp"}},
		{"user", cfg.User, "65534:65534"},
		{"labels", cfg.Labels, map[string]string{"kiln.run": "r1", LabelManaged: "true"}},
		{"network", host.NetworkMode, container.NetworkMode("none")},
		{"read-only rootfs", host.ReadonlyRootfs, true},
		{"capabilities", []string(host.CapDrop), []string{"ALL"}},
		{"security options", host.SecurityOpt, []string{"no-new-privileges"}},
		{"memory", host.Memory, int64(512 << 20)},
		{"no swap", host.MemorySwap, int64(512 << 20)},
		{"cpus", host.NanoCPUs, int64(1_500_000_000)},
		{"pids", *host.PidsLimit, int64(256)},
		{"no tmpfs (/tmp is read-only)", len(host.Tmpfs), 0},
		{"no GPUs unless asked", len(host.DeviceRequests), 0},
		{"mounts", host.Mounts, []mount.Mount{
			{Type: mount.TypeBind, Source: "/data/in", Target: "/kiln/in", ReadOnly: true},
			{Type: mount.TypeBind, Source: "/data/out", Target: "/kiln/out"},
		}},
		{"not auto-removed (Run removes after inspecting)", host.AutoRemove, false},
		{"not privileged", host.Privileged, false},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if !equalJSONish(c.got, c.want) {
				t.Errorf("got %#v, want %#v", c.got, c.want)
			}
		})
	}
	spec.Env = []string{"HOME=/kiln/out/home"}
	if cfg, _ := containerConfig(spec, "sha256:abc"); !slices.Equal(cfg.Env, []string{"HOME=/kiln/out/home", "TMPDIR=/kiln/out/.tmp"}) {
		t.Errorf("Env = %v, want the spec's HOME kept", cfg.Env)
	}
	spec.Command = nil
	if cfg, _ := containerConfig(spec, "sha256:abc"); cfg.Cmd != nil {
		t.Errorf("Cmd = %v without a command, want nil (the image's CMD)", cfg.Cmd)
	}
}

// TestContainerConfigGPUs checks the device requests that RunSpec.GPUs
// produces; they match `docker run --gpus all` and `--gpus 2`. No GPU is
// available here, so only the configuration is tested.
func TestContainerConfigGPUs(t *testing.T) {
	tests := []struct {
		name    string
		gpus    int
		want    []container.DeviceRequest
		wantErr string
	}{
		{name: "none", gpus: 0},
		{name: "all", gpus: GPUsAll, want: []container.DeviceRequest{{Count: -1, Capabilities: [][]string{{"gpu"}}}}},
		{name: "two", gpus: 2, want: []container.DeviceRequest{{Count: 2, Capabilities: [][]string{{"gpu"}}}}},
		{name: "invalid", gpus: -2, wantErr: "gpus must be a count >= 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := RunSpec{Image: "img", InputDir: "/in", OutputDir: "/out", GPUs: tt.gpus}.normalize()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("normalize: err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, host := containerConfig(spec, "sha256:abc")
			if !reflect.DeepEqual(host.DeviceRequests, tt.want) {
				t.Errorf("DeviceRequests = %+v, want %+v", host.DeviceRequests, tt.want)
			}
		})
	}
}

// TestRunErrorIs checks the sentinels a *RunError matches and its messages.
func TestRunErrorIs(t *testing.T) {
	tests := []struct {
		name         string
		err          *RunError
		oom, timeout bool
		want         string
	}{
		{name: "oom", err: &RunError{OOMKilled: true, MemoryLimit: 64 << 20, ExitCode: 137}, oom: true, want: "killed: out of memory, limit 64 MiB"},
		{name: "timeout", err: &RunError{TimedOut: true, Timeout: time.Minute, ExitCode: -1}, timeout: true, want: "timed out after 1m0s"},
		{name: "exit", err: &RunError{ExitCode: 2, LogTail: "bad"}, want: "trainer exited with code 2: bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrapped := fmt.Errorf("training: %w", tt.err)
			if got := errors.Is(wrapped, ErrOutOfMemory); got != tt.oom {
				t.Errorf("errors.Is(ErrOutOfMemory) = %v, want %v", got, tt.oom)
			}
			if got := errors.Is(wrapped, ErrTimedOut); got != tt.timeout {
				t.Errorf("errors.Is(ErrTimedOut) = %v, want %v", got, tt.timeout)
			}
			if tt.err.Error() != tt.want {
				t.Errorf("Error() = %q, want %q", tt.err.Error(), tt.want)
			}
		})
	}
}

// equalJSONish compares the simple values used in TestContainerConfig.
func equalJSONish(a, b any) bool {
	switch a := a.(type) {
	case []string:
		return slices.Equal(a, b.([]string))
	case map[string]string:
		b := b.(map[string]string)
		if len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if bv, ok := b[k]; !ok || bv != v {
				return false
			}
		}
		return true
	case []mount.Mount:
		b := b.([]mount.Mount)
		return slices.EqualFunc(a, b, func(x, y mount.Mount) bool {
			return x.Type == y.Type && x.Source == y.Source && x.Target == y.Target && x.ReadOnly == y.ReadOnly
		})
	default:
		return a == b
	}
}

func TestPrepareDirs(t *testing.T) {
	root := t.TempDir()
	in := filepath.Join(root, "in")
	if err := os.Mkdir(in, 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		in, out  string
		wantErr  string
		wantIn   os.FileMode
		wantOut  os.FileMode
		checkOut bool
	}{
		{name: "creates output and opens input", in: in, out: filepath.Join(root, "a", "out"), wantIn: 0o705, wantOut: 0o777},
		{name: "missing input", in: filepath.Join(root, "nope"), out: filepath.Join(root, "b"), wantErr: "input dir: stat"},
		{name: "input is a file", in: filepath.Join(root, "file"), out: filepath.Join(root, "c"), wantErr: "is not a directory"},
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := prepareDirs(RunSpec{InputDir: tt.in, OutputDir: tt.out})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for dir, want := range map[string]os.FileMode{tt.in: tt.wantIn, tt.out: tt.wantOut} {
				st, err := os.Stat(dir)
				if err != nil || st.Mode().Perm() != want {
					t.Errorf("%s: mode %v, %v; want %v", dir, st.Mode().Perm(), err, want)
				}
			}
		})
	}
}

func TestWriteContextTar(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"Dockerfile": "FROM scratch\n", "bin/trainer": "\x7fELF"}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("bin/trainer", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeContextTar(&buf, dir); err != nil {
		t.Fatal(err)
	}
	type entry struct {
		typ     byte
		content string
		link    string
		mode    int64
	}
	want := map[string]entry{
		"Dockerfile":  {typ: tar.TypeReg, content: files["Dockerfile"], mode: 0o755},
		"bin/":        {typ: tar.TypeDir, mode: 0o755},
		"bin/trainer": {typ: tar.TypeReg, content: files["bin/trainer"], mode: 0o755},
		"link":        {typ: tar.TypeSymlink, link: "bin/trainer", mode: 0o777},
	}
	got := map[string]entry{}
	tr := tar.NewReader(&buf)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Uid != 0 || hdr.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want 0:0", hdr.Name, hdr.Uid, hdr.Gid)
		}
		got[hdr.Name] = entry{typ: hdr.Typeflag, content: string(content), link: hdr.Linkname, mode: hdr.Mode & 0o777}
	}
	if len(got) != len(want) {
		t.Errorf("tar has %d entries %v, want %d", len(got), got, len(want))
	}
	for name, w := range want {
		if g, ok := got[name]; !ok || g != w {
			t.Errorf("%s = %+v (present %v), want %+v", name, g, ok, w)
		}
	}
}
