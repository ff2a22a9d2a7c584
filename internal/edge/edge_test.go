package edge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/model"
)

// TestPayloadRoundTrip encodes a payload, finds it after an executable's
// bytes, and decodes it; a changed byte is caught by the bundle hash.
func TestPayloadRoundTrip(t *testing.T) {
	files := map[string][]byte{"manifest.json": []byte(`{"a":1}`), "model.json": bytes.Repeat([]byte("x"), 5000)}
	p := Payload{Files: files, Header: Header{Model: "churn", Version: 3, BundleSHA256: model.HashFiles(files), Kiln: "test", Target: "linux/amd64", ExportedAt: time.Unix(0, 0).UTC()}}
	b, err := p.Encode()
	if err != nil {
		t.Fatal(err)
	}
	exe := append([]byte("\x7fELF program"), b...)
	exe = binary.LittleEndian.AppendUint64(exe, uint64(len(b)))
	exe = append(exe, TrailerMagic...)
	got, err := payloadAt(bytes.NewReader(exe), int64(len(exe)))
	if err != nil {
		t.Fatal(err)
	}
	q, err := Decode(got)
	if err != nil {
		t.Fatal(err)
	}
	if q.Header != p.Header || !bytes.Equal(q.Files["model.json"], files["model.json"]) || len(q.Files) != 2 {
		t.Errorf("decoded %+v", q.Header)
	}
	got[bytes.Index(got, []byte("xxxx"))+100] ^= 1 // inside model.json's content
	if _, err := Decode(got); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a damaged payload decoded: %v", err)
	}
	if _, err := payloadAt(bytes.NewReader([]byte("\x7fELF bare runtime, no trailer")), 29); !errors.Is(err, ErrNoPayload) {
		t.Errorf("bare runtime: %v, want ErrNoPayload", err)
	}
}

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want Options
		err  string
	}{
		{args: []string{"rows.csv"}, want: Options{Input: "rows.csv", Format: "csv", OutputFormat: "csv"}},
		{args: []string{"--passthrough", "id,ts", "rows.jsonl"}, want: Options{Input: "rows.jsonl", Format: "jsonl", OutputFormat: "jsonl", Passthrough: []string{"id", "ts"}}},
		{args: []string{"-o", "out.parquet", "rows.csv"}, want: Options{Input: "rows.csv", Output: "out.parquet", Format: "csv", OutputFormat: "parquet"}},
		{args: []string{"--format", "jsonl", "--output-format", "csv"}, want: Options{Format: "jsonl", OutputFormat: "csv"}},
		{args: []string{"--format", "parquet", "-o", "out.csv"}, want: Options{Format: "parquet", Output: "out.csv", OutputFormat: "csv"}},
		{args: []string{"-o", "scored", "rows.parquet"}, want: Options{Input: "rows.parquet", Format: "parquet", Output: "scored", OutputFormat: "parquet"}},
		{args: []string{"--output-format", "parquet", "rows.csv"}, err: "Parquet output must be a file"},
		{args: []string{"--format", "xml", "rows.csv"}, err: `unknown format "xml"`},
		{args: []string{"a.csv", "b.csv"}, err: "one input FILE at most"},
		{args: []string{"--nope"}, err: "not defined"},
	} {
		got, err := ParseArgs("p", tc.args, io.Discard)
		if tc.err != "" {
			var ue *UsageError
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.As(err, &ue) {
				t.Errorf("%v: error %v, want a usage error %q", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: %+v, want %+v", tc.args, got, tc.want)
		}
	}
}

// TestRuntimeLinksOnlyPrediction: the predictor runtime links no Temporal,
// Docker, SQL driver, cloud SDK or gRPC (built as make runtimes builds it;
// database/sql itself comes with the Prometheus client, without a driver).
func TestRuntimeLinksOnlyPrediction(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goBin, "list", "-tags", "kilnedge", "-deps", "../../cmd/kiln-predict").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"go.temporal.io/", "github.com/docker/", "modernc.org/sqlite", "github.com/jackc/pgx", "github.com/lib/pq", "github.com/go-sql-driver", "gocloud.dev", "github.com/aws/", "cloud.google.com/", "google.golang.org/grpc", "github.com/kiln-ml/kiln/internal/registry", "github.com/kiln-ml/kiln/activities"} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("the runtime links %s", dep)
			}
		}
	}
}
