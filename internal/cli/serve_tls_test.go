package cli_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kiln-ml/kiln/internal/serving/inferencepb"
)

// TestServeTLS: with --https-cert and --https-key, kiln serve answers HTTPS
// and gRPC over TLS for a client that trusts the certificate, and refuses
// plain HTTP and plaintext gRPC.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	httpAddr, grpcAddr, done, _ := startServe(t, ctx, `model server on https://(\S+) `, `over gRPC \(TLS\) on (\S+)\n`,
		"--addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--https-cert", certFile, "--https-key", keyFile)
	tlsClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}}
	resp, err := tlsClient.Get("https://" + httpAddr + "/v2/health/live")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != `{"live":true}` || resp.TLS == nil {
		t.Errorf("GET https /v2/health/live: %d %s", resp.StatusCode, b)
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + httpAddr + "/v2/health/live"); err == nil {
		if resp.StatusCode == 200 {
			t.Error("plain HTTP was answered")
		}
		resp.Body.Close()
	}

	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if live, err := inferencepb.NewGRPCInferenceServiceClient(conn).ServerLive(rctx, &inferencepb.ServerLiveRequest{}); err != nil || !live.GetLive() {
		t.Errorf("ServerLive over TLS: %v, %v", live, err)
	}
	plain, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	defer pcancel()
	if _, err := inferencepb.NewGRPCInferenceServiceClient(plain).ServerLive(pctx, &inferencepb.ServerLiveRequest{}); err == nil {
		t.Error("plaintext gRPC was answered")
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v after its context ended", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}

	for _, args := range [][]string{
		{"serve", "--admin-token", "tok", "--restore", "", "--https-cert", certFile},
		{"serve", "--admin-token", "tok", "--restore", "", "--https-cert", keyFile, "--https-key", keyFile},
	} {
		if r := kiln(t, args...); r.exitCode() != 2 || !strings.Contains(r.err.Error(), "--https") {
			t.Errorf("kiln %v: exit %d, %v; want exit 2 naming the flags", args, r.exitCode(), r.err)
		}
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key
// and returns their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kiln test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
