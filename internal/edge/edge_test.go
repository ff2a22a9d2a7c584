package edge

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
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

// TestLiteRuntimeLinks: the lite runtime (kiln export --lite, -tags
// kilnlite) links neither Parquet (parquet-go, its codecs, protobuf, Kiln's
// dataset package) nor an HTTP server (net/http, TLS, package serving): what
// halves its size.
func TestLiteRuntimeLinks(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goBin, "list", "-tags", "kilnedge kilnlite", "-deps", "../../cmd/kiln-predict").Output()
	if err != nil {
		t.Fatal(err)
	}
	deps := strings.Fields(string(out))
	for _, banned := range []string{"github.com/parquet-go/parquet-go", "github.com/andybalholm/brotli", "google.golang.org/protobuf",
		"github.com/kiln-ml/kiln/internal/dataset", "net/http", "crypto/tls", "github.com/kiln-ml/kiln/internal/serving",
		"github.com/kiln-ml/kiln/internal/scorer", "github.com/prometheus/client_golang/prometheus"} {
		if slices.Contains(deps, banned) {
			t.Errorf("the lite runtime links %s", banned)
		}
	}
	if !slices.Contains(deps, "github.com/kiln-ml/kiln/internal/model") {
		t.Errorf("the lite runtime does not link the model package: %v", deps)
	}
}

// TestScoreMulticlass scores a multinomial model's rows from CSV into CSV,
// JSON Lines and (through Parquet) CSV again: each output row holds the most
// probable class's name and one probability column per class, equal to
// the model's own probabilities.
func TestScoreMulticlass(t *testing.T) {
	est := []byte(`{"type":"multinomial","features":["a","b"],"weights":[[1,0],[0,1],[-1,-1]],"intercepts":[0,0.5,0]}`)
	fields := []dataset.Field{{Name: "a", Type: dataset.Float64}, {Name: "b", Type: dataset.Float64}}
	m, err := model.New(model.Manifest{
		FormatVersion: model.FormatVersion, Name: "m", Task: model.TaskMulticlass, Output: model.OutputProbabilities,
		Classes: []string{"x", "y", "z"}, Inputs: fields,
		Transforms: &transform.Fitted{Inputs: fields, Features: []string{"a", "b"}},
		Estimator:  model.Estimator{Type: model.EstimatorMultinomial, File: "model.json"},
	}, map[string][]byte{"model.json": est})
	if err != nil {
		t.Fatal(err)
	}
	rows := []map[string]any{{"a": 2.0, "b": 0.0}, {"a": 0.0, "b": 3.0}, {"a": -2.0, "b": -1.5}}
	sc, err := m.ScoreRows(rows)
	if err != nil {
		t.Fatal(err)
	}
	wantCSV := "id,prediction,probability_x,probability_y,probability_z,model,model_version\n"
	wantJSON := ""
	for i := range rows {
		p := sc.Proba[3*i : 3*i+3]
		f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
		label := m.ClassOf(sc.Values[i])
		wantCSV += fmt.Sprintf("%d,%s,%s,%s,%s,m,4\n", i, label, f(p[0]), f(p[1]), f(p[2]))
		wantJSON += fmt.Sprintf(`{"id":"%d","prediction":%q,"probability_x":%s,"probability_y":%s,"probability_z":%s,"model":"m","model_version":4}`+"\n", i, label, f(p[0]), f(p[1]), f(p[2]))
	}
	if got := []string{m.ClassOf(sc.Values[0]), m.ClassOf(sc.Values[1]), m.ClassOf(sc.Values[2])}; !slices.Equal(got, []string{"x", "y", "z"}) {
		t.Fatalf("classes %q, want x y z", got)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "rows.csv")
	if err := os.WriteFile(in, []byte("id,a,b\n0,2,0\n1,0,3\n2,-2,-1.5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"csv", Options{Input: in, Format: FormatCSV, OutputFormat: FormatCSV}, wantCSV},
		{"jsonl", Options{Input: in, Format: FormatCSV, OutputFormat: FormatJSONL}, wantJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Passthrough = []string{"id"}
			var out bytes.Buffer
			if err := Score(t.Context(), m, "m", 4, tc.o, nil, &out); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("output\n%s\nwant\n%s", out.String(), tc.want)
			}
		})
	}
	checkMulticlassParquet(t, m, dir, in, wantCSV)
}
