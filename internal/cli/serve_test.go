package cli_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kiln-ml/kiln/internal/cli"
	"github.com/kiln-ml/kiln/internal/serving/inferencepb"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeGRPC starts kiln serve with --grpc-addr, calls the HTTP and the
// gRPC listener, and checks that cancelling the command stops both and
// returns without an error.
func TestServeGRPC(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	httpAddr, grpcAddr, done, errOut := startServe(t, ctx, `model server on http://(\S+) `, `over gRPC on (\S+)\n`,
		"--addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0")

	resp, err := http.Get("http://" + httpAddr + "/v2/health/live")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"live":true}` {
		t.Errorf("GET /v2/health/live: %d %s", resp.StatusCode, b)
	}

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := inferencepb.NewGRPCInferenceServiceClient(conn)
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	if live, err := client.ServerLive(rctx, &inferencepb.ServerLiveRequest{}); err != nil || !live.GetLive() {
		t.Errorf("ServerLive: %v, %v", live, err)
	}
	if md, err := client.ServerMetadata(rctx, &inferencepb.ServerMetadataRequest{}); err != nil || md.GetName() != "kiln" {
		t.Errorf("ServerMetadata: %v, %v", md, err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v after its context ended\n%s", err, errOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop after its context ended")
	}
}

// startServe runs kiln serve in this process with args (after its admin
// token and an empty --restore) until ctx ends, and waits until it has
// printed the addresses httpRe and grpcRe capture.
func startServe(t *testing.T, ctx context.Context, httpRe, grpcRe string, args ...string) (httpAddr, grpcAddr string, done chan error, errOut *syncBuffer) {
	t.Helper()
	var out syncBuffer
	errOut = &syncBuffer{}
	done = make(chan error, 1)
	go func() {
		done <- cli.Run(ctx, append([]string{"--home", t.TempDir(), "serve", "--admin-token", "tok", "--restore", ""}, args...), &out, errOut)
	}()
	hre, gre := regexp.MustCompile(httpRe), regexp.MustCompile(grpcRe)
	for deadline := time.Now().Add(20 * time.Second); httpAddr == "" || grpcAddr == ""; {
		select {
		case err := <-done:
			t.Fatalf("serve ended: %v\n%s%s", err, out.String(), errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not print its addresses:\n%s%s", out.String(), errOut.String())
		}
		if m := hre.FindStringSubmatch(out.String()); m != nil {
			httpAddr = m[1]
		}
		if m := gre.FindStringSubmatch(out.String()); m != nil {
			grpcAddr = m[1]
		}
		time.Sleep(10 * time.Millisecond)
	}
	return httpAddr, grpcAddr, done, errOut
}

// TestServeHelpGRPC: kiln serve --help documents --grpc-addr.
func TestServeHelpGRPC(t *testing.T) {
	r := kiln(t, "serve", "--help")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, want := range []string{"--grpc-addr", "inference.GRPCInferenceService", "/v2/models/NAME[/versions/V]/infer"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("serve --help does not mention %q:\n%s", want, r.stdout)
		}
	}
}
