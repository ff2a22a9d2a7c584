package containers

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
)

// bridgeListener listens on the host and returns the address under which a
// container on the default bridge network reaches it (gateway:port).
func bridgeListener(t *testing.T, d *Docker) string {
	t.Helper()
	nw, err := d.Client().NetworkInspect(context.Background(), "bridge", network.InspectOptions{})
	if err != nil {
		t.Fatalf("inspect bridge network: %v", err)
	}
	var gateway string
	for _, cfg := range nw.IPAM.Config {
		if ip := net.ParseIP(cfg.Gateway); ip != nil && ip.To4() != nil {
			gateway = cfg.Gateway
		}
	}
	if gateway == "" {
		// The default bridge often leaves the gateway out of its IPAM
		// config; the host's bridge interface holds it.
		name := nw.Options["com.docker.network.bridge.name"]
		if name == "" {
			name = "docker0"
		}
		iface, err := net.InterfaceByName(name)
		if err != nil {
			t.Fatalf("bridge network has no IPv4 gateway in %+v and no interface %s: %v", nw.IPAM.Config, name, err)
		}
		addrs, err := iface.Addrs()
		if err != nil {
			t.Fatalf("addresses of %s: %v", name, err)
		}
		for _, a := range addrs {
			if ipNet, ok := a.(*net.IPNet); ok && ipNet.IP.To4() != nil {
				gateway = ipNet.IP.String()
			}
		}
	}
	if gateway == "" {
		t.Fatalf("no IPv4 gateway for the bridge network")
	}
	ln, err := net.Listen("tcp4", gateway+":0")
	if err != nil {
		t.Fatalf("listen on bridge gateway: %v", err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	}()
	return ln.Addr().String()
}

// lines splits a log into lines.
func lines(log string) []string { return strings.Split(strings.TrimSpace(log), "\n") }

func TestDockerRun(t *testing.T) {
	d := needDocker(t)
	hostAddr := bridgeListener(t, d)

	type check func(t *testing.T, res Result, err error, rec *recorder, in, out string)
	wantSuccess := func(t *testing.T, res Result, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if res.ExitCode != 0 || res.OOMKilled || res.Runtime != RuntimeDocker || res.ImageID != probeImageID || res.Duration <= 0 {
			t.Fatalf("result = %+v, want exit 0 in docker with image %s", res, probeImageID)
		}
	}
	wantLines := func(t *testing.T, log string, want ...string) {
		t.Helper()
		got := lines(log)
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("log lacks line %q; log:\n%s", w, log)
			}
		}
	}
	tests := []struct {
		name    string
		command []string
		memory  int64
		pids    int64
		network string
		env     []string
		check   check
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
				wantLines(t, rec.log.String(), "plain stdout line", "probe: copied 10 bytes")
				if strings.Contains(rec.log.String(), ProgressPrefix) {
					t.Errorf("progress lines leaked into the log:\n%s", rec.log.String())
				}
			},
		},
		{
			name:    "non-zero exit is a RunError with the stderr tail",
			command: []string{"exit", "3"},
			check: func(t *testing.T, res Result, err error, rec *recorder, in, out string) {
				var runErr *RunError
				if !errors.As(err, &runErr) {
					t.Fatalf("err = %v, want *RunError", err)
				}
				if runErr.ExitCode != 3 || runErr.OOMKilled || runErr.TimedOut || res.ExitCode != 3 {
					t.Errorf("RunError = %+v, result %+v; want exit code 3", runErr, res)
				}
				want := "trainer exited with code 3: probe: failing on purpose\nprobe: exit code 3"
				if err.Error() != want {
					t.Errorf("message = %q, want %q", err.Error(), want)
				}
			},
		},
		{
			name:    "runs as nobody",
			command: []string{"whoami"},
			check: func(t *testing.T, res Result, err error, rec *recorder, in, out string) {
				wantSuccess(t, res, err)
				wantLines(t, rec.log.String(), "uid=65534 gid=65534")
			},
		},
		{
			name:    "only /kiln/out is writable",
			command: []string{"write-root"},
			check: func(t *testing.T, res Result, err error, rec *recorder, in, out string) {
				wantSuccess(t, res, err)
				wantLines(t, rec.log.String(), "write /kiln/out/x: ok", "write "+ScratchDir+"/tmpdir-x: ok")
				for _, path := range []string{"/x", "/etc/x", "/kiln/in/x", "/tmp/x"} {
					if !strings.Contains(rec.log.String(), "write "+path+": error: ") {
						t.Errorf("writing %s succeeded; log:\n%s", path, rec.log.String())
					}
				}
				if !strings.Contains(rec.log.String(), "write /x: error: open /x: read-only file system") {
					t.Errorf("writing / did not fail with a read-only file system; log:\n%s", rec.log.String())
				}
				if _, err := os.Stat(filepath.Join(out, "x")); err != nil {
					t.Errorf("file written to /kiln/out missing on the host: %v", err)
				}
				if _, err := os.Stat(filepath.Join(in, "x")); err == nil {
					t.Errorf("file written to the input dir")
				}
			},
		},
		{
			name:    "no capabilities, no new privileges, not root",
			command: []string{"status"},
			check: func(t *testing.T, res Result, err error, rec *recorder, in, out string) {
				wantSuccess(t, res, err)
				const none = "0000000000000000"
				wantLines(t, rec.log.String(),
					"Uid: 65534 65534 65534 65534", "Gid: 65534 65534 65534 65534",
					"CapInh: "+none, "CapPrm: "+none, "CapEff: "+none, "CapBnd: "+none, "CapAmb: "+none,
					"NoNewPrivs: 1")
			},
		},
		{
			name:    "pids limit bounds a fork bomb",
			command: []string{"forkbomb", "100"},
			pids:    16,
			check: func(t *testing.T, res Result, err error, rec *recorder, in, out string) {
				// The probe stops at its first failed fork, or the Go
				// runtime dies when it cannot make a thread: either way
				// far fewer than 100 children start.
				log := rec.log.String()
				spawned := 0
				for _, l := range lines(log) {
					if strings.HasPrefix(l, "spawned ") {
						spawned++
					}
				}
				if spawned >= 16 || strings.Contains(log, "spawned 100") {
					t.Errorf("%d children started under a pids limit of 16; log:\n%s", spawned, log)
				}
				if err == nil && !strings.Contains(log, "spawn error: ") {
					t.Errorf("no fork failed under a pids limit of 16; log:\n%s", log)
				}
				t.Logf("fork bomb: %d children before the limit (err %v)", spawned, err)
			},
		},
		{
			name:    "no network by default",
			command: []string{"net", hostAddr},
			check: func(t *testing.T, res Result, err error, rec *recorder, in, out string) {
				wantSuccess(t, res, err)
				log := rec.log.String()
				for _, target := range []string{"udp 1.1.1.1:53", "tcp 1.1.1.1:53", "tcp " + hostAddr} {
					if !strings.Contains(log, target+": error: ") {
						t.Errorf("%s reachable without network; log:\n%s", target, log)
					}
				}
				var ifaces []string
				for _, l := range lines(log) {
					if name, ok := strings.CutPrefix(l, "interface "); ok {
						ifaces = append(ifaces, name)
					}
				}
				if !slices.Equal(ifaces, []string{"lo"}) {
					t.Errorf("interfaces = %v, want only lo", ifaces)
				}
			},
		},
		{
			// Control for the case above: the probe does detect a network.
			name:    "bridge network when asked",
			command: []string{"net", hostAddr},
			network: "bridge",
			check: func(t *testing.T, res Result, err error, rec *recorder, in, out string) {
				wantSuccess(t, res, err)
				wantLines(t, rec.log.String(), "tcp "+hostAddr+": ok")
			},
		},
		{
			name:    "environment is passed",
			command: []string{"env"},
			env:     []string{"KILN_TEST_VAR=forty two"},
			check: func(t *testing.T, res Result, err error, rec *recorder, in, out string) {
				wantSuccess(t, res, err)
				wantLines(t, rec.log.String(), "KILN_TEST_VAR=forty two")
			},
		},
		{
			name:    "memory limit kills with OOM",
			command: []string{"oom"},
			memory:  64 << 20,
			check: func(t *testing.T, res Result, err error, rec *recorder, in, out string) {
				var runErr *RunError
				if !errors.As(err, &runErr) {
					t.Fatalf("err = %v, want *RunError; log:\n%s", err, rec.log.String())
				}
				if !runErr.OOMKilled || !res.OOMKilled || !errors.Is(err, ErrOutOfMemory) {
					t.Fatalf("RunError = %+v, want OOMKilled matching ErrOutOfMemory", runErr)
				}
				if msg := err.Error(); !strings.HasPrefix(msg, "killed: out of memory, limit 64 MiB") {
					t.Errorf("message = %q, want it to start with %q", msg, "killed: out of memory, limit 64 MiB")
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, out := newDirs(t, "hello kiln")
			labels := testLabels(t)
			var rec recorder
			spec := RunSpec{
				Image:       probeImage,
				Command:     tt.command,
				InputDir:    in,
				OutputDir:   out,
				MemoryBytes: tt.memory,
				PidsLimit:   tt.pids,
				Network:     tt.network,
				Env:         tt.env,
				Labels:      labels,
				Timeout:     2 * time.Minute,
			}
			rec.attach(&spec)
			res, err := d.Run(context.Background(), spec)
			tt.check(t, res, err, &rec, in, out)
			if n := countContainers(t, d, labels); n != 0 {
				t.Errorf("%d containers left behind", n)
			}
		})
	}
}

func TestDockerInterrupt(t *testing.T) {
	d := needDocker(t)
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  bool
	}{
		{name: "timeout", timeout: 2 * time.Second},
		{name: "cancel", cancel: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, out := newDirs(t, "")
			labels := testLabels(t)
			before := countContainers(t, d, labels)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var canceledAt time.Time
			during, duringErr := -1, error(nil)
			spec := RunSpec{
				Image: probeImage, Command: []string{"sleep", "60"},
				InputDir: in, OutputDir: out, Labels: labels, Timeout: tt.timeout,
			}
			// Count while the trainer runs (it has reported progress), so
			// that the count after the run is known to see the container.
			cancelNow := cancelOnProgress(cancel, &canceledAt)
			spec.Progress = func(p Progress) {
				if during < 0 {
					during, duringErr = listContainers(d, labels)
				}
				if tt.cancel {
					cancelNow(p)
				}
			}
			start := time.Now()
			_, err := d.Run(ctx, spec)
			elapsed := time.Since(start)

			if tt.cancel {
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want context.Canceled", err)
				}
				if canceledAt.IsZero() {
					t.Fatal("no progress report before cancellation")
				}
				if late := time.Since(canceledAt); late > 5*time.Second {
					t.Errorf("Run returned %v after cancellation, want < 5s", late)
				}
			} else {
				var runErr *RunError
				if !errors.As(err, &runErr) || !runErr.TimedOut || !errors.Is(err, ErrTimedOut) {
					t.Fatalf("err = %v, want a timed-out *RunError", err)
				}
				if want := "timed out after 2s"; err.Error() != want {
					t.Errorf("message = %q, want %q", err.Error(), want)
				}
				if elapsed > tt.timeout+5*time.Second {
					t.Errorf("Run took %v with a %v timeout, want < timeout+5s", elapsed, tt.timeout)
				}
			}
			if duringErr != nil {
				t.Fatal(duringErr)
			}
			if during != before+1 {
				t.Errorf("%d Kiln containers while running, want %d (before) + 1", during, before)
			}
			if after := countContainers(t, d, labels); after != before {
				t.Errorf("%d Kiln containers after the run, want %d as before it", after, before)
			}
		})
	}
}

func TestDockerCleanup(t *testing.T) {
	d := needDocker(t)
	ctx := context.Background()
	labels := testLabels(t)
	other := map[string]string{labelTest: labels[labelTest] + ".other"}
	// Simulate the container of a worker that was SIGKILLed mid-run: created
	// with Run's configuration, started, never removed. The second one
	// carries other labels and must survive.
	in, out := newDirs(t, "")
	ids := make([]string, 0, 2)
	for _, l := range []map[string]string{labels, other} {
		spec, err := RunSpec{Image: probeImage, Command: []string{"sleep", "60"}, InputDir: in, OutputDir: out, Labels: l}.normalize()
		if err != nil {
			t.Fatal(err)
		}
		if err := prepareDirs(spec); err != nil {
			t.Fatal(err)
		}
		cfg, hostCfg := containerConfig(spec, probeImageID)
		created, err := d.Client().ContainerCreate(ctx, cfg, hostCfg, nil, nil, "")
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		ids = append(ids, created.ID)
		if err := d.Client().ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
			t.Fatalf("start: %v", err)
		}
	}
	t.Cleanup(func() { d.remove(ctx, ids[1]) })

	n, err := d.Cleanup(ctx, labels)
	if err != nil || n != 1 {
		t.Fatalf("Cleanup = %d, %v; want 1, nil", n, err)
	}
	if n := countContainers(t, d, labels); n != 0 {
		t.Errorf("%d containers left after Cleanup", n)
	}
	if n := countContainers(t, d, other); n != 1 {
		t.Errorf("Cleanup removed a container with other labels (%d left, want 1)", n)
	}
	if n, err := d.Cleanup(ctx, labels); err != nil || n != 0 {
		t.Errorf("second Cleanup = %d, %v; want 0, nil", n, err)
	}
}

func TestDockerErrors(t *testing.T) {
	d := needDocker(t)
	tests := []struct {
		name   string
		modify func(spec *RunSpec)
		want   string
	}{
		{
			name:   "missing image",
			modify: func(spec *RunSpec) { spec.Image = "kiln-test/missing:" + testRunID },
			want:   "image kiln-test/missing:" + testRunID + " not found: run `make images`",
		},
		{
			name:   "missing input dir",
			modify: func(spec *RunSpec) { spec.InputDir = filepath.Join(spec.InputDir, "missing") },
			want:   "input dir: stat ",
		},
		{
			name:   "malformed env",
			modify: func(spec *RunSpec) { spec.Env = []string{"NOVALUE"} },
			want:   `env entry "NOVALUE" is not KEY=VALUE`,
		},
		{
			name:   "negative limit",
			modify: func(spec *RunSpec) { spec.MemoryBytes = -1 },
			want:   "negative limit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, out := newDirs(t, "")
			labels := testLabels(t)
			spec := RunSpec{Image: probeImage, Command: []string{"ok"}, InputDir: in, OutputDir: out, Labels: labels}
			tt.modify(&spec)
			_, err := d.Run(context.Background(), spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
			if n := countContainers(t, d, labels); n != 0 {
				t.Errorf("%d containers left behind", n)
			}
		})
	}
}

func TestImageID(t *testing.T) {
	d := needDocker(t)
	id, err := ImageID(context.Background(), d.Client(), probeImage)
	if err != nil || id != probeImageID || !strings.HasPrefix(id, "sha256:") {
		t.Errorf("ImageID = %q, %v; want %q", id, err, probeImageID)
	}
}

// TestDockerIdentify checks that the Docker runtime identifies an image by
// its image ID, and explains how to build a missing one.
func TestDockerIdentify(t *testing.T) {
	d := needDocker(t)
	tests := []struct {
		name  string
		image string
		want  string
		err   string
	}{
		{name: "probe image", image: probeImage, want: probeImageID},
		{name: "missing image", image: "kiln-test/missing:" + testRunID, err: "run `make images`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := d.Identify(context.Background(), tt.image)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("Identify(%s) = %q, %v; want an error containing %q", tt.image, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want || !strings.HasPrefix(got, "sha256:") {
				t.Errorf("Identify(%s) = %q, %v; want %q", tt.image, got, err, tt.want)
			}
		})
	}
}

func TestBuildImageErrors(t *testing.T) {
	d := needDocker(t)
	tests := []struct {
		name       string
		dockerfile string
		want       string
	}{
		{name: "missing Dockerfile", want: "dockerfile:"},
		{name: "COPY of a missing file", dockerfile: "FROM scratch\nCOPY missing /missing\n", want: "missing"},
		{name: "unknown instruction", dockerfile: "FROM scratch\nFROBNICATE x\n", want: "frobnicate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.dockerfile != "" {
				if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(tt.dockerfile), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			id, err := BuildImage(context.Background(), d.Client(), BuildOptions{ContextDir: dir})
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), tt.want) {
				t.Errorf("BuildImage = %q, %v; want an error containing %q", id, err, tt.want)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	needProbe(t)
	binaries := map[string]string{"kiln/probe:dev": probeBin}
	unreachable := DockerOptions{Host: "unix://" + filepath.Join(t.TempDir(), "no-docker.sock"), PingTimeout: time.Second}
	tests := []struct {
		name     string
		docker   DockerOptions
		binaries map[string]string
		want     string // runtime name, or "" for an error
	}{
		{name: "engine reachable", want: RuntimeDocker},
		{name: "no engine", docker: unreachable, binaries: binaries, want: RuntimeProcess},
		{name: "no engine and no binaries", docker: unreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == RuntimeDocker {
				needDocker(t)
			}
			rt, err := Detect(context.Background(), tt.docker, ProcessOptions{Binaries: tt.binaries})
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), "no container runtime") {
					t.Fatalf("Detect = %v, %v; want a no-runtime error", rt, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			if rt.Name() != tt.want {
				t.Errorf("runtime = %s, want %s", rt.Name(), tt.want)
			}
			if d, ok := rt.(*Docker); ok {
				_ = d.Close()
			}
		})
	}
}

func TestNewDockerUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "no-docker.sock")
	start := time.Now()
	_, err := NewDocker(context.Background(), DockerOptions{Host: "unix://" + sock, PingTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "docker engine unreachable at unix://"+sock) {
		t.Errorf("err = %v, want an unreachable error naming the socket", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("NewDocker took %v, want it bounded by the ping timeout", elapsed)
	}
}

// BenchmarkDockerRunOverhead measures one container step (create, start,
// wait, inspect, remove) of the trivial "ok" probe.
func BenchmarkDockerRunOverhead(b *testing.B) {
	d := needDocker(b)
	in, out := newDirs(b, "bench")
	spec := RunSpec{Image: probeImage, Command: []string{"ok"}, InputDir: in, OutputDir: out, Labels: testLabels(b)}
	for b.Loop() {
		if _, err := d.Run(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
	}
}

// TestImportImage imports a root file system holding only the probe, with
// configuration changes, runs it in the sandbox and reads its labels; a
// missing tarball and a missing tag are errors.
func TestImportImage(t *testing.T) {
	d := needDocker(t)
	ctx := context.Background()
	data, err := os.ReadFile(probeBin)
	if err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	f, err := os.Create(tarball)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	if err := tw.WriteHeader(&tar.Header{Name: "probe", Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	ref := "kiln-test/imported:" + testRunID
	var log bytes.Buffer
	id, err := ImportImage(ctx, d.Client(), ImportOptions{
		Tarball: tarball, Ref: ref, Log: &log,
		Changes: []string{`ENTRYPOINT ["/probe"]`, `LABEL ` + LabelInputs + `=csv`},
	})
	if err != nil {
		t.Fatalf("ImportImage: %v\n%s", err, log.String())
	}
	t.Cleanup(func() {
		_, _ = d.Client().ImageRemove(context.Background(), id, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	if got, err := d.Identify(ctx, ref); err != nil || got != id {
		t.Errorf("Identify(%s) = %q, %v; want %q", ref, got, err, id)
	}
	labels, err := d.Labels(ctx, ref)
	if err != nil || labels[LabelInputs] != "csv" {
		t.Errorf("Labels(%s) = %v, %v; want %s=csv", ref, labels, err, LabelInputs)
	}
	in, out := newDirs(t, "")
	var rec recorder
	spec := RunSpec{Image: ref, Command: []string{"whoami"}, InputDir: in, OutputDir: out, Labels: testLabels(t)}
	rec.attach(&spec)
	if _, err := d.Run(ctx, spec); err != nil {
		t.Fatalf("running the imported image: %v", err)
	}
	if !slices.Contains(lines(rec.log.String()), "uid=65534 gid=65534") {
		t.Errorf("imported image's log:\n%s", rec.log.String())
	}

	for _, tt := range []struct {
		name string
		opts ImportOptions
		want string
	}{
		{name: "missing tarball", opts: ImportOptions{Tarball: filepath.Join(t.TempDir(), "none.tar"), Ref: ref + "-x"}, want: "none.tar: no such file"},
		{name: "missing tag", opts: ImportOptions{Tarball: tarball}, want: "a reference (tag) is required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ImportImage(ctx, d.Client(), tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ImportImage = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestDockerImageAliases: a reference mapped by DockerOptions.Images is
// identified, inspected and run as the image it maps to.
func TestDockerImageAliases(t *testing.T) {
	needDocker(t)
	d, err := NewDocker(context.Background(), DockerOptions{Images: map[string]string{"kiln-test/alias:" + testRunID: probeImage}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	got, err := d.Identify(context.Background(), "kiln-test/alias:"+testRunID)
	if err != nil || got != probeImageID {
		t.Errorf("Identify(alias) = %q, %v; want the probe image %q", got, err, probeImageID)
	}
	if _, err := d.Labels(context.Background(), "kiln-test/alias:"+testRunID); err != nil {
		t.Errorf("Labels(alias): %v", err)
	}
	if got, err := d.Identify(context.Background(), "kiln-test/unmapped:"+testRunID); err == nil {
		t.Errorf("an unmapped missing image identified as %q", got)
	}
}
