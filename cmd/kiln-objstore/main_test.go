package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob"
)

// TestMain lets the tests run this binary as the store: with
// KILN_OBJSTORE_MAIN set, the test binary is kiln-objstore.
func TestMain(m *testing.M) {
	if os.Getenv("KILN_OBJSTORE_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// startStore runs the store as its own process on addr and returns it
// with the address it listens on, or nil when it exited at once (its port
// still held by a killed predecessor).
func startStore(t *testing.T, addr, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "--addr", addr, "--dir", dir, "--bucket", "kiln,other")
	cmd.Env = append(os.Environ(), "KILN_OBJSTORE_MAIN=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, out)
	}()
	var s string
	select {
	case s = <-line:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("kiln-objstore did not start in 30s")
	}
	_, rest, ok := strings.Cut(s, "http://")
	if !ok {
		_ = cmd.Wait()
		return nil, ""
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd, strings.Fields(rest)[0]
}

// bucketURL is the gocloud.dev URL of the kiln bucket under prefix
// artifacts/, as Kiln's KILN_ARTIFACTS names it.
func bucketURL(addr string) string {
	q := url.Values{}
	q.Set("endpoint", "http://"+addr)
	q.Set("use_path_style", "true")
	q.Set("disable_https", "true")
	q.Set("region", "us-east-1")
	q.Set("prefix", "artifacts/")
	return "s3://kiln?" + q.Encode()
}

func TestStoreSurvivesKill(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "kiln")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "kiln-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()

	cmd, addr := startStore(t, "127.0.0.1:0", dir)
	if cmd == nil {
		t.Fatal("kiln-objstore exited at start")
	}
	b, err := blob.OpenBucket(ctx, bucketURL(addr))
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	objects := map[string]string{"a/one.txt": "one", "a/two.txt": "two", "b/big.bin": big}
	for k, v := range objects {
		if err := b.WriteAll(ctx, k, []byte(v), nil); err != nil {
			t.Fatalf("writing %s: %v", k, err)
		}
	}
	check := func(b *blob.Bucket) {
		t.Helper()
		for k, v := range objects {
			got, err := b.ReadAll(ctx, k)
			if err != nil {
				t.Fatalf("reading %s: %v", k, err)
			}
			if string(got) != v {
				t.Fatalf("%s: read %d bytes, want %d", k, len(got), len(v))
			}
		}
		var keys []string
		it := b.List(&blob.ListOptions{Prefix: "a/"})
		for {
			o, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, o.Key)
		}
		if fmt.Sprint(keys) != "[a/one.txt a/two.txt]" {
			t.Fatalf("listed %v", keys)
		}
		if ok, err := b.Exists(ctx, "missing"); err != nil || ok {
			t.Fatalf("Exists(missing) = %v, %v", ok, err)
		}
	}
	check(b)
	b.Close()

	// kill -9, then start again on the same port and directory.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for i := 0; ; i++ {
		if c, _ := startStore(t, addr, dir); c != nil {
			break
		}
		if i == 50 {
			t.Fatalf("kiln-objstore did not start again on %s", addr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b2, err := blob.OpenBucket(ctx, bucketURL(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	check(b2)
}
