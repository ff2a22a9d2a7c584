package edge

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/kiln-ml/kiln/internal/model"
)

// Formats an exported predictor reads and writes.
const (
	FormatCSV     = "csv"
	FormatJSONL   = "jsonl"
	FormatParquet = "parquet"
)

// UsageError is a bad command line (exit code 2).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{fmt.Errorf(format, args...)}
}

// Options is a predictor's command line.
type Options struct {
	// Input is the rows' file; "" or "-" reads stdin.
	Input string
	// Format is the input's format; "" means from Input's extension (csv
	// on stdin).
	Format string
	// Output is where predictions go; "" or "-" writes stdout.
	Output string
	// OutputFormat is the output's format; "" means Format.
	OutputFormat string
	// Passthrough columns are copied from the input to the output.
	Passthrough []string
	// Serve, when set, serves the model over HTTP at this address.
	Serve string
	// Version prints the model and runtime versions and exits.
	Version bool
}

const usage = `Usage: %[1]s [flags] [FILE]

A Kiln model exported as a standalone predictor: it needs no Kiln, no
network and no Go toolchain. It reads rows from FILE (or stdin) as CSV,
JSON Lines or Parquet, and writes one output row per input row: the
passthrough columns, then prediction, model and model_version, in the
input's format unless --output-format says otherwise. (A predictor
exported with kiln export --lite reads and writes CSV and JSON Lines only
and has no --serve; --version says which runtime this is.)

Examples:
  %[1]s rows.csv > scored.csv
  %[1]s --passthrough id -o scored.parquet rows.parquet
  cat rows.jsonl | %[1]s --format jsonl
  %[1]s --serve 127.0.0.1:8080      # kiln serve's v1 and v2 routes

Flags:
`

// ParseArgs parses a predictor's command line (without the program name).
func ParseArgs(prog string, args []string, stderr io.Writer) (Options, error) {
	var o Options
	var pass string
	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Format, "format", "", "input format: csv, jsonl or parquet (default: from FILE's extension; csv on stdin)")
	fs.StringVar(&o.Output, "o", "", "write predictions to this file (default stdout)")
	fs.StringVar(&o.OutputFormat, "output-format", "", "output format: csv, jsonl or parquet (default: the input's; parquet needs -o)")
	fs.StringVar(&pass, "passthrough", "", "comma-separated input columns copied to the output (e.g. id)")
	fs.StringVar(&o.Serve, "serve", "", "serve the model over HTTP at ADDR (kiln serve's /v1 and /v2 routes) instead of reading rows")
	fs.BoolVar(&o.Version, "version", false, "print the model (name:version and bundle hash) and Kiln's version")
	fs.Usage = func() {
		fmt.Fprintf(stderr, usage, prog)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, &UsageError{err}
	}
	switch fs.NArg() {
	case 0:
	case 1:
		o.Input = fs.Arg(0)
	default:
		return o, usageErrorf("one input FILE at most, got %d: %s", fs.NArg(), strings.Join(fs.Args(), " "))
	}
	if pass != "" {
		o.Passthrough = strings.Split(pass, ",")
	}
	if o.Format == "" {
		o.Format = formatOf(o.Input)
	}
	if o.OutputFormat == "" {
		o.OutputFormat = o.Format
		if f, ok := knownFormat(o.Output); ok {
			o.OutputFormat = f
		}
	}
	for _, f := range []string{o.Format, o.OutputFormat} {
		if f != FormatCSV && f != FormatJSONL && f != FormatParquet {
			return o, usageErrorf("unknown format %q: want csv, jsonl or parquet", f)
		}
	}
	if Flavor == "lite" && (o.Format == FormatParquet || o.OutputFormat == FormatParquet) {
		return o, errNoParquet
	}
	if o.OutputFormat == FormatParquet && (o.Output == "" || o.Output == "-") {
		return o, usageErrorf("Parquet output must be a file: give -o FILE")
	}
	return o, nil
}

// formatOf guesses a file's format from its extension: csv unless .jsonl,
// .ndjson, .json or .parquet.
func formatOf(path string) string {
	if f, ok := knownFormat(path); ok {
		return f
	}
	return FormatCSV
}

// knownFormat is the format a file's extension names, if it names one.
func knownFormat(path string) (string, bool) {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv", ".tsv", ".txt":
		return FormatCSV, true
	case ".jsonl", ".ndjson", ".json":
		return FormatJSONL, true
	case ".parquet", ".pq":
		return FormatParquet, true
	}
	return "", false
}

// Main runs an exported predictor with the command line args (without the
// program name) and returns the process's exit code: 0, 1 for a failure,
// 2 for a bad command line.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	prog := filepath.Base(os.Args[0])
	o, err := ParseArgs(prog, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil {
		err = run(ctx, o, stdin, stdout, stderr)
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	var ue *UsageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func run(ctx context.Context, o Options, stdin io.Reader, stdout, stderr io.Writer) error {
	p, err := Load()
	if err != nil {
		return err
	}
	if o.Version {
		h := p.Header
		ref := h.Model
		if h.Version > 0 {
			ref = fmt.Sprintf("%s:%d", h.Model, h.Version)
		}
		fmt.Fprintf(stdout, "model %s\nbundle sha256:%s\nkiln %s\ntarget %s (running on %s/%s)\nruntime %s\nexported %s\n",
			ref, h.BundleSHA256, h.Kiln, h.Target, runtime.GOOS, runtime.GOARCH, Flavor, h.ExportedAt.Format("2006-01-02T15:04:05Z"))
		return nil
	}
	m, err := p.Model()
	if err != nil {
		return err
	}
	if o.Serve != "" {
		return serve(ctx, o.Serve, p.Header, m, stderr)
	}
	return Score(ctx, m, p.Header.Model, p.Header.Version, o, stdin, stdout)
}

// Score predicts the rows o names with m (registered as name:version) and
// writes them where o says.
func Score(ctx context.Context, m *model.Model, name string, version int64, o Options, stdin io.Reader, stdout io.Writer) error {
	var in io.Reader = stdin
	if o.Input != "" && o.Input != "-" && o.Format != FormatParquet {
		// A Parquet file is read by path (from its end); Parquet on stdin is
		// copied to a temporary file first (scoreViaParquet).
		f, err := os.Open(o.Input)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	out, commit, abort, err := openOutput(o, stdout)
	if err != nil {
		return err
	}
	defer abort()
	s := &rowScorer{m: m, name: name, version: version, pass: o.Passthrough}
	if o.Format == FormatParquet || o.OutputFormat == FormatParquet {
		err = scoreViaParquet(ctx, s, o, in, out)
	} else {
		err = s.stream(ctx, o.Format, o.OutputFormat, in, out)
	}
	if err != nil {
		return err
	}
	return commit()
}

// openOutput opens o's output: stdout, or a temporary file renamed into
// place by commit (abort removes it unless committed). A Parquet output is
// written by the scorer itself: out is nil then.
func openOutput(o Options, stdout io.Writer) (out io.Writer, commit func() error, abort func(), err error) {
	if o.Output == "" || o.Output == "-" {
		return stdout, func() error { return nil }, func() {}, nil
	}
	if o.OutputFormat == FormatParquet {
		return nil, func() error { return nil }, func() {}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(o.Output), "."+filepath.Base(o.Output)+".tmp-*")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("creating %s: %w", o.Output, err)
	}
	done := false
	commit = func() error {
		if err := f.Close(); err != nil {
			return fmt.Errorf("writing %s: %w", o.Output, err)
		}
		if err := os.Rename(f.Name(), o.Output); err != nil {
			return fmt.Errorf("writing %s: %w", o.Output, err)
		}
		done = true
		return nil
	}
	abort = func() {
		if !done {
			f.Close()
			os.Remove(f.Name())
		}
	}
	return f, commit, abort, nil
}
