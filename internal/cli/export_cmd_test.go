package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"

	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/browsertest"
	"github.com/kiln-ml/kiln/internal/cli"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/gbdt"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/internal/transform"
)

// exportCase is a model bundle and rows to score with it: a CSV (with
// missing values) and the same rows as Parquet.
type exportCase struct {
	name, bundle, csv, parquet string
	// batch are batch scoring's predictions (package scorer, as kiln score
	// and the score step compute them) of the rows, in order.
	batch []float64
}

// TestExportPredictors exports a breast-cancer GBDT and a churn model (with
// imputation and one-hot encoding) as standalone predictors and checks
// that their predictions equal batch scoring's bit for bit: the
// linux/amd64 executable on CSV, JSON Lines and Parquet, from a file and
// from stdin, and over HTTP (--serve); the linux/arm64 and linux/arm
// executables under qemu-user; the wasm module under wazero. An export of
// a registered version shows in its lineage.
func TestExportPredictors(t *testing.T) {
	if testing.Short() {
		t.Skip("builds predictor runtimes")
	}
	rt := predictorRuntimes(t, "linux/amd64", "linux/arm64", "linux/arm", "wasm")
	dir := t.TempDir()
	cases := []*exportCase{breastCancerCase(t, dir), churnCase(t, dir)}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			exe := filepath.Join(dir, c.name+"-amd64")
			r := kiln(t, "export", c.bundle, "--target", "linux/amd64", "-o", exe, "--runtimes", rt)
			if r.err != nil {
				t.Fatalf("kiln export: %v\n%s", r.err, r.stderr)
			}
			if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
				checkExecutable(t, c, dir, exe)
				t.Run("lite", func(t *testing.T) { checkLite(t, c, dir, rt, exe) })
			}
			for _, q := range []struct{ target, qemu string }{{"linux/arm64", "qemu-aarch64-static"}, {"linux/arm", "qemu-arm-static"}} {
				t.Run(strings.ReplaceAll(q.target, "/", "-"), func(t *testing.T) {
					qemu, err := exec.LookPath(q.qemu)
					if err != nil {
						if os.Getenv("KILN_REQUIRE_QEMU") != "" {
							t.Fatalf("%s not found (KILN_REQUIRE_QEMU is set)", q.qemu)
						}
						t.Skipf("%s not found: apt-get install qemu-user-static", q.qemu)
					}
					out := filepath.Join(dir, c.name+"-"+strings.ReplaceAll(q.target, "/", "-"))
					if r := kiln(t, "export", c.bundle, "--target", q.target, "-o", out, "--runtimes", rt); r.err != nil {
						t.Fatalf("kiln export: %v\n%s", r.err, r.stderr)
					}
					got := runCSV(t, []string{qemu, out}, "--passthrough", "id", c.csv)
					samePredictions(t, q.target, got, c.batch)
				})
			}
			t.Run("wasm", func(t *testing.T) {
				out := filepath.Join(dir, c.name+".wasm")
				if r := kiln(t, "export", c.bundle, "--target", "wasm", "-o", out, "--runtimes", rt); r.err != nil {
					t.Fatalf("kiln export: %v\n%s", r.err, r.stderr)
				}
				in, err := os.ReadFile(c.csv)
				if err != nil {
					t.Fatal(err)
				}
				stdout, stderr, code := runWasm(t, out, in, "--passthrough", "id")
				if code != 0 {
					t.Fatalf("wasm exited %d: %s", code, stderr)
				}
				samePredictions(t, "wasm (stdin CSV)", parseScoredCSV(t, []byte(stdout)), c.batch)
				_, stderr, code = runWasm(t, out, nil, "--serve", "127.0.0.1:0")
				if code != 2 || !strings.Contains(stderr, "not available in the wasm build") {
					t.Errorf("wasm --serve: exit %d, %q; want exit 2 naming the limit", code, stderr)
				}
				if c.name == "bc" {
					checkBrowser(t, c, out)
				}
			})
		})
	}

	t.Run("lineage", func(t *testing.T) {
		home := t.TempDir()
		ctx := context.Background()
		reg, err := registry.Open(ctx, filepath.Join(home, "registry.db"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := reg.Register(ctx, registry.Version{Model: "churn", BundleURI: artifact.FileURI(cases[1].bundle)}); err != nil {
			t.Fatal(err)
		}
		reg.Close()
		out := filepath.Join(dir, "churn-registered")
		r := kiln(t, "--home", home, "--json", "export", "churn:1", "--target", "linux/amd64", "-o", out, "--runtimes", rt)
		if r.err != nil {
			t.Fatalf("kiln export: %v\n%s", r.err, r.stderr)
		}
		var res struct {
			SHA256   string `json:"sha256"`
			Recorded bool   `json:"recorded"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || !res.Recorded {
			t.Fatalf("export --json %q: %v; want recorded", r.stdout, err)
		}
		r = kiln(t, "--home", home, "models", "lineage", "churn:1")
		if r.err != nil {
			t.Fatal(r.err)
		}
		for _, want := range []string{"export", out, "executable for linux/amd64", res.SHA256} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("lineage lacks %q:\n%s", want, r.stdout)
			}
		}
		if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
			v, err := exec.Command(out, "--version").Output()
			if err != nil || !strings.Contains(string(v), "model churn:1") || !strings.Contains(string(v), "bundle sha256:") {
				t.Errorf("--version: %q, %v", v, err)
			}
		}
	})

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"export", cases[0].bundle}, "--target is required"},
			{[]string{"export", cases[0].bundle, "--target", "plan9/386"}, "want one of"},
			{[]string{"export", cases[0].bundle, "--target", "linux/amd64", "--runtimes", t.TempDir()}, "make runtimes"},
			{[]string{"export", cases[0].bundle, "--format", "c", "--target", "linux/arm64"}, "portable C"},
		} {
			r := kiln(t, tc.args...)
			if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
				t.Errorf("kiln %v: %v; want an error mentioning %q", tc.args, r.err, tc.want)
			}
		}
	})
}

// checkExecutable runs a native exported predictor on the case's rows in
// every format and over HTTP.
func checkExecutable(t *testing.T, c *exportCase, dir, exe string) {
	cmd := []string{exe}
	samePredictions(t, "CSV file", runCSV(t, cmd, "--passthrough", "id", c.csv), c.batch)

	stdin, err := os.Open(c.csv)
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	out, err := runWith(t, cmd, stdin, "--passthrough", "id")
	if err != nil {
		t.Fatal(err)
	}
	samePredictions(t, "CSV stdin", parseScoredCSV(t, out), c.batch)

	jsonl := filepath.Join(dir, c.name+".jsonl")
	writeJSONL(t, c.csv, jsonl)
	out, err = runWith(t, cmd, nil, "--passthrough", "id", jsonl)
	if err != nil {
		t.Fatal(err)
	}
	samePredictions(t, "JSON Lines", parseScoredJSONL(t, out), c.batch)

	pq := filepath.Join(dir, c.name+"-scored.parquet")
	if _, err := runWith(t, cmd, nil, "--passthrough", "id", "-o", pq, c.parquet); err != nil {
		t.Fatal(err)
	}
	samePredictions(t, "Parquet", readPredictions(t, pq), c.batch)

	pqIn, err := os.Open(c.parquet)
	if err != nil {
		t.Fatal(err)
	}
	defer pqIn.Close()
	out, err = runWith(t, cmd, pqIn, "--format", "parquet", "--output-format", "csv", "--passthrough", "id")
	if err != nil {
		t.Fatal(err)
	}
	samePredictions(t, "Parquet stdin to CSV", parseScoredCSV(t, out), c.batch)

	// A bad input is a clear error, and no output file is left behind.
	bad := filepath.Join(dir, c.name+"-bad.csv")
	if err := os.WriteFile(bad, []byte("id,nothing\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(dir, c.name+"-bad-out.csv")
	_, err = runWith(t, cmd, nil, "-o", outFile, bad)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(ee.Stderr), "the model needs column") {
		t.Errorf("bad input: %v; want exit 1 naming the missing column", err)
	}
	if _, err := os.Stat(outFile); !os.IsNotExist(err) {
		t.Errorf("bad input left %s behind", outFile)
	}

	checkServe(t, c, cmd)
}

// checkServe runs the predictor with --serve and predicts the first rows
// over kiln serve's v1 route.
func checkServe(t *testing.T, c *exportCase, cmd []string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := exec.CommandContext(ctx, cmd[0], append(cmd[1:], "--serve", "127.0.0.1:0")...)
	stderr, err := p.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	defer p.Wait()
	defer cancel()
	sc := bufio.NewScanner(stderr)
	var base, name string
	for sc.Scan() {
		if _, after, ok := strings.Cut(sc.Text(), " on http://"); ok {
			base = "http://" + strings.Fields(after)[0]
			name = strings.SplitN(strings.TrimPrefix(sc.Text(), "serving "), ":", 2)[0]
			break
		}
	}
	go io.Copy(io.Discard, stderr)
	if base == "" {
		t.Fatal("--serve printed no address")
	}
	rows := readCSVRows(t, c.csv)[:50]
	body, _ := json.Marshal(map[string]any{"instances": rows})
	resp, err := http.Post(base+"/v1/models/"+name+":predict", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pr struct {
		Predictions []float64 `json:"predictions"`
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("predict: %s: %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
		t.Fatal(err)
	}
	samePredictions(t, "--serve", pr.Predictions, c.batch[:50])
}

// checkBrowser runs the wasm module in headless Chromium through
// docs/export/kiln-predict.js, as docs/export.md tells users to.
func checkBrowser(t *testing.T, c *exportCase, wasm string) {
	b := browsertest.New(t)
	site := t.TempDir()
	for src, dst := range map[string]string{
		filepath.Join(repoRoot, "docs", "export", "kiln-predict.js"): "kiln-predict.js",
		wasm:  "model.wasm",
		c.csv: "rows.csv",
	} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(site, dst), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The page's <img src="/wait"> holds its load event (after which
	// Chromium dumps the DOM and exits) until the script has posted what
	// the predictor printed to /done.
	page := `<!doctype html><pre id="out">pending</pre><img src="/wait" alt="">
<script type="module">
import { runPredictor } from "./kiln-predict.js";
let text;
try {
  const csv = await (await fetch("rows.csv")).text();
  const wasm = await (await fetch("model.wasm")).arrayBuffer();
  const r = await runPredictor(wasm, { args: ["--passthrough", "id"], stdin: csv });
  text = r.code === 0 ? r.stdout : "exit " + r.code + ": " + r.stderr;
} catch (e) {
  text = "error: " + e;
}
document.getElementById("out").textContent = text;
await fetch("/done", { method: "POST", body: text });
</script>`
	if err := os.WriteFile(filepath.Join(site, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte, 1)
	mux := http.NewServeMux()
	mux.Handle("/", http.FileServer(http.Dir(site)))
	mux.HandleFunc("POST /done", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		select {
		case done <- b:
		default:
		}
	})
	posted := make(chan []byte, 1)
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		select {
		case b := <-done:
			posted <- b
		case <-time.After(2 * time.Minute):
		case <-r.Context().Done():
		}
		w.Header().Set("Content-Type", "image/gif")
		w.Write([]byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	res, err := b.Load(context.Background(), srv.URL+"/index.html", browsertest.Options{Allow: []string{u.Host}, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var result []byte
	select {
	case result = <-posted:
	default:
	}
	if !bytes.HasPrefix(result, []byte("id,prediction")) {
		t.Fatalf("the page posted %.300q\n%s", result, res.Log)
	}
	samePredictions(t, "browser", parseScoredCSV(t, result), c.batch)
	if !strings.Contains(res.DOM, "id,prediction,model,model_version") {
		t.Errorf("the page does not show the predictions: %.300s", res.DOM)
	}
}

// runCSV runs cmd with args and parses its CSV output.
func runCSV(t *testing.T, cmd []string, args ...string) []float64 {
	t.Helper()
	out, err := runWith(t, cmd, nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	return parseScoredCSV(t, out)
}

// runWith runs cmd with args and stdin and returns its stdout.
func runWith(t *testing.T, cmd []string, stdin io.Reader, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := exec.CommandContext(ctx, cmd[0], append(cmd[1:], args...)...)
	p.Stdin = stdin
	out, err := p.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out, err
	}
	if err != nil {
		return nil, fmt.Errorf("%v: %w", cmd, err)
	}
	return out, nil
}

// wasmCache keeps compiled modules, so running one module twice compiles
// it once.
var wasmCache = wazero.NewCompilationCache()

// runWasm runs a WASI module under wazero.
func runWasm(t *testing.T, path string, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx := context.Background()
	bin, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(wasmCache))
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	var out, errb bytes.Buffer
	cfg := wazero.NewModuleConfig().WithArgs(append([]string{"predict.wasm"}, args...)...).
		WithStdin(bytes.NewReader(stdin)).WithStdout(&out).WithStderr(&errb).
		WithSysWalltime().WithSysNanotime()
	_, err = r.InstantiateWithConfig(ctx, bin, cfg)
	var ee *sys.ExitError
	switch {
	case errors.As(err, &ee):
		code = int(ee.ExitCode())
	case err != nil:
		t.Fatalf("running %s: %v\n%s", path, err, errb.String())
	}
	return out.String(), errb.String(), code
}

// samePredictions fails unless got equals want bit for bit.
func samePredictions(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d predictions, want %d", what, len(got), len(want))
	}
	diff := 0
	for i := range got {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			if diff == 0 {
				t.Errorf("%s: row %d: %v, batch scoring %v", what, i, got[i], want[i])
			}
			diff++
		}
	}
	if diff > 0 {
		t.Errorf("%s: %d of %d predictions differ from batch scoring", what, diff, len(got))
	}
}

// parseScoredCSV reads the prediction column of a predictor's CSV output.
func parseScoredCSV(t *testing.T, out []byte) []float64 {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil || len(recs) == 0 {
		t.Fatalf("output is not CSV: %v\n%.300s", err, out)
	}
	if strings.Join(recs[0], ",") != "id,prediction,model,model_version" {
		t.Fatalf("header %v", recs[0])
	}
	var p []float64
	for _, r := range recs[1:] {
		v, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		p = append(p, v)
	}
	return p
}

// parseScoredJSONL reads the predictions of a predictor's JSON Lines output.
func parseScoredJSONL(t *testing.T, out []byte) []float64 {
	t.Helper()
	var p []float64
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var row struct {
			ID         any     `json:"id"`
			Prediction float64 `json:"prediction"`
		}
		if err := dec.Decode(&row); err != nil {
			t.Fatal(err)
		}
		p = append(p, row.Prediction)
	}
	return p
}

// readCSVRows reads a CSV as rows the way a JSON client would send them:
// numbers as numbers, missing values as null.
func readCSVRows(t *testing.T, path string) []map[string]any {
	t.Helper()
	recs := readCSV(t, path)
	var rows []map[string]any
	for _, r := range recs[1:] {
		row := map[string]any{}
		for j, h := range recs[0] {
			switch v := r[j]; {
			case v == "":
				row[h] = nil
			default:
				if x, err := strconv.ParseFloat(v, 64); err == nil {
					row[h] = x
				} else {
					row[h] = v
				}
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// writeJSONL writes the CSV's rows as JSON Lines.
func writeJSONL(t *testing.T, csvPath, path string) {
	t.Helper()
	var b bytes.Buffer
	for _, row := range readCSVRows(t, csvPath) {
		line, err := json.Marshal(row)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(append(line, '\n'))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// finishCase converts the case's CSV to Parquet (ingest's reader) and
// scores it in batch.
func finishCase(t *testing.T, c *exportCase) *exportCase {
	t.Helper()
	ctx := context.Background()
	c.parquet = strings.TrimSuffix(c.csv, ".csv") + ".parquet"
	if _, err := dataset.CSVToParquet(ctx, c.csv, c.parquet, dataset.CSVOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := model.Load(c.bundle)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSuffix(c.csv, ".csv") + "-batch.parquet"
	if _, err := scorer.File(ctx, m, c.name, 0, c.parquet, out, scorer.FileOptions{Passthrough: []string{"id"}}); err != nil {
		t.Fatal(err)
	}
	c.batch = readPredictions(t, out)
	return c
}

// breastCancerCase is a GBDT (100 trees) trained on the breast cancer
// data, scored on its rows with 10% of the values missing.
func breastCancerCase(t *testing.T, dir string) *exportCase {
	t.Helper()
	recs := readCSV(t, filepath.Join(repoRoot, "data", "breast_cancer.csv"))
	header := recs[0]
	target := len(header) - 1
	fitted := &transform.Fitted{}
	d := &gbdt.Data{X: make([][]float64, target)}
	for j := range target {
		fitted.Inputs = append(fitted.Inputs, dataset.Field{Name: header[j], Type: dataset.Float64})
		fitted.Features = append(fitted.Features, header[j])
	}
	rng := rand.New(rand.NewPCG(7, 7))
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(append([]string{"id"}, header[:target]...))
	for i, r := range recs[1:] {
		row := []string{strconv.Itoa(i)}
		for j := range target {
			x, err := strconv.ParseFloat(r[j], 64)
			if err != nil {
				t.Fatal(err)
			}
			d.X[j] = append(d.X[j], x)
			if rng.Float64() < 0.1 {
				row = append(row, "")
			} else {
				row = append(row, r[j])
			}
		}
		y, _ := strconv.ParseFloat(r[target], 64)
		d.Y = append(d.Y, y)
		w.Write(row)
	}
	w.Flush()
	gm, err := gbdt.Train(context.Background(), d, nil, gbdt.DefaultParams(gbdt.BinaryLogistic), nil)
	if err != nil {
		t.Fatal(err)
	}
	est, err := gm.Booster(fitted.Features).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	c := &exportCase{name: "bc", bundle: filepath.Join(dir, "bc-bundle"), csv: filepath.Join(dir, "bc.csv")}
	writeTestBundle(t, c.bundle, "bc", "malignant", model.TaskBinary, model.EstimatorXGBoost, fitted, est)
	if err := os.WriteFile(c.csv, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return finishCase(t, c)
}

// churnCase is a logistic model over churn-like rows, with median and
// most-frequent imputation, one-hot encoding, log1p and standardization, scored
// on rows with missing values and categories unseen in training.
func churnCase(t *testing.T, dir string) *exportCase {
	t.Helper()
	rng := rand.New(rand.NewPCG(8, 8))
	plans := []string{"basic", "pro", "enterprise"}
	regions := []string{"north", "south", "east", "west"}
	var b, tb bytes.Buffer
	w, tw := csv.NewWriter(&b), csv.NewWriter(&tb)
	header := []string{"id", "plan", "region", "tenure", "monthly_charges", "churn"}
	w.Write(header)
	tw.Write(header)
	for i := range 2000 {
		maybe := func(s string) string {
			if rng.Float64() < 0.08 {
				return ""
			}
			return s
		}
		plan := plans[rng.IntN(len(plans))]
		if i >= 1500 && i%7 == 0 {
			plan = "legacy" // a category training (the first 1500 rows) never saw
		}
		row := []string{strconv.Itoa(i), maybe(plan), maybe(regions[rng.IntN(len(regions))]),
			maybe(strconv.Itoa(rng.IntN(72))), maybe(strconv.FormatFloat(20+rng.Float64()*100, 'f', 2, 64)), strconv.Itoa(rng.IntN(2))}
		w.Write(row)
		if i < 1500 {
			tw.Write(row)
		}
	}
	w.Flush()
	tw.Flush()
	c := &exportCase{name: "churn", bundle: filepath.Join(dir, "churn-bundle"), csv: filepath.Join(dir, "churn.csv")}
	trainCSV := filepath.Join(dir, "churn-train.csv")
	if err := os.WriteFile(c.csv, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(trainCSV, tb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	train := filepath.Join(dir, "churn-train.parquet")
	if _, err := dataset.CSVToParquet(context.Background(), trainCSV, train, dataset.CSVOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := dataset.OpenParquet(train)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.ReadAll(context.Background(), nil)
	schema := r.Schema()
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	fitted, err := transform.Fit(transform.Recipe{Target: "churn", Exclude: []string{"id"}, Transforms: []transform.Spec{
		{Kind: "impute", Columns: []string{"*"}},
		{Kind: "onehot", Columns: []string{"plan", "region"}},
		{Kind: "log1p", Columns: []string{"monthly_charges"}},
		{Kind: "standardize", Columns: []string{"tenure", "monthly_charges"}},
	}}, schema, rec)
	if err != nil {
		t.Fatal(err)
	}
	l := model.Logistic{Type: model.EstimatorLogistic, Features: fitted.Features, Intercept: -0.4}
	for j := range fitted.Features {
		l.Weights = append(l.Weights, float64((j*5)%7-3)/3)
	}
	est, err := json.Marshal(l)
	if err != nil {
		t.Fatal(err)
	}
	writeTestBundle(t, c.bundle, "churn", "churn", model.TaskBinary, model.EstimatorLogistic, fitted, est)
	return finishCase(t, c)
}

// writeTestBundle writes a bundle directory.
func writeTestBundle(t *testing.T, dir, name, target, task, estType string, fitted *transform.Fitted, est []byte) {
	t.Helper()
	m := model.Manifest{
		FormatVersion: model.FormatVersion, Name: name, Task: task, Target: target,
		Inputs: fitted.Inputs, Transforms: fitted,
		Estimator: model.Estimator{Type: estType, File: model.DefaultEstimatorFile},
		Output:    model.OutputProbability,
	}
	if err := model.WriteBundle(dir, m, map[string][]byte{model.DefaultEstimatorFile: est}); err != nil {
		t.Fatal(err)
	}
}

// predictorRuntimes returns a directory holding the predictor runtimes of
// targets: $KILN_RUNTIMES (make test builds them with make runtimes), or
// runtimes this test builds.
func predictorRuntimes(t *testing.T, targets ...string) string {
	t.Helper()
	// The lite linux/amd64 runtime too, for checkLite.
	type runtimeFile struct{ target, file, tags string }
	files := []runtimeFile{{"linux/amd64", cli.LiteRuntimeFile("linux/amd64"), "kilnedge kilnlite"}, {"wasm", cli.LiteRuntimeFile("wasm"), "kilnedge kilnlite"}}
	for _, tg := range targets {
		files = append(files, runtimeFile{tg, cli.RuntimeFile(tg), "kilnedge"})
	}
	if dir := os.Getenv("KILN_RUNTIMES"); dir != "" {
		for _, f := range files {
			if _, err := os.Stat(filepath.Join(dir, f.file)); err != nil {
				t.Fatalf("KILN_RUNTIMES=%s lacks the %s runtime %s: %v", dir, f.target, f.file, err)
			}
		}
		return dir
	}
	dir := t.TempDir()
	for _, f := range files {
		goos, goarch, _ := strings.Cut(f.target, "/")
		if f.target == "wasm" {
			goos, goarch = "wasip1", "wasm"
		}
		cmd := exec.Command("go", "build", "-tags", f.tags, "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, f.file), "./cmd/kiln-predict")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOARM=7")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the %s runtime: %v\n%s", f.target, err, out)
		}
	}
	return dir
}

// checkLite exports c with --lite for linux/amd64: it predicts CSV and JSON
// Lines as the full executable does, refuses Parquet and --serve with a
// usage error naming --lite, says "runtime lite" in --version, and is
// smaller than the full executable full.
func checkLite(t *testing.T, c *exportCase, dir, rt, full string) {
	exe := filepath.Join(dir, c.name+"-lite")
	r := kiln(t, "export", c.bundle, "--target", "linux/amd64", "--lite", "-o", exe, "--runtimes", rt, "--json")
	if r.err != nil {
		t.Fatalf("kiln export --lite: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stdout, `"lite": true`) && !strings.Contains(r.stdout, `"lite":true`) {
		t.Errorf("kiln export --lite --json does not say lite: %s", r.stdout)
	}
	samePredictions(t, "lite CSV file", runCSV(t, []string{exe}, "--passthrough", "id", c.csv), c.batch)
	jsonl := filepath.Join(dir, c.name+"-lite.jsonl")
	writeJSONL(t, c.csv, jsonl)
	out, err := runWith(t, []string{exe}, nil, "--passthrough", "id", jsonl)
	if err != nil {
		t.Fatal(err)
	}
	samePredictions(t, "lite JSON Lines", parseScoredJSONL(t, out), c.batch)
	for _, args := range [][]string{{c.parquet}, {"--serve", "127.0.0.1:0"}, {"-o", filepath.Join(dir, "x.parquet"), c.csv}} {
		cmd := exec.Command(exe, args...)
		msg, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(msg), "exported with --lite") {
			t.Errorf("lite %v: %v, %s; want exit 2 naming --lite", args, err, msg)
		}
	}
	if out, err := exec.Command(exe, "--version").Output(); err != nil || !strings.Contains(string(out), "runtime lite") {
		t.Errorf("lite --version: %v\n%s", err, out)
	}
	if out, err := exec.Command(full, "--version").Output(); err != nil || !strings.Contains(string(out), "runtime full") {
		t.Errorf("full --version: %v\n%s", err, out)
	}
	li, err1 := os.Stat(exe)
	fu, err2 := os.Stat(full)
	if err1 != nil || err2 != nil || li.Size() >= fu.Size() {
		t.Errorf("lite executable %v bytes, full %v: want the lite one smaller (%v %v)", li.Size(), fu.Size(), err1, err2)
	} else {
		t.Logf("lite executable %d bytes, full %d", li.Size(), fu.Size())
	}
	if r := kiln(t, "export", c.bundle, "--format", "c", "--lite"); r.exitCode() != 2 {
		t.Errorf("--format c --lite: exit %d, want 2", r.exitCode())
	}
	if c.name != "bc" {
		return
	}
	// The lite WASI module predicts the same, and is under 10 MB with its bundle.
	wasm := filepath.Join(dir, c.name+"-lite.wasm")
	if r := kiln(t, "export", c.bundle, "--target", "wasm", "--lite", "-o", wasm, "--runtimes", rt); r.err != nil {
		t.Fatalf("kiln export --target wasm --lite: %v\n%s", r.err, r.stderr)
	}
	in, err := os.ReadFile(c.csv)
	if err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runWasm(t, wasm, in, "--passthrough", "id")
	if code != 0 {
		t.Fatalf("lite wasm exited %d: %s", code, stderr)
	}
	samePredictions(t, "lite wasm (stdin CSV)", parseScoredCSV(t, []byte(stdout)), c.batch)
	if fi, err := os.Stat(wasm); err == nil {
		t.Logf("lite wasm module %d bytes", fi.Size())
	}
}
