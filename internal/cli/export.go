package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact/localfs"
	"github.com/kiln-ml/kiln/internal/cexport"
	"github.com/kiln-ml/kiln/internal/edge"
	"github.com/kiln-ml/kiln/internal/edge/pack"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
)

// exportTargets are the targets kiln export writes executables for.
var exportTargets = []string{"linux/amd64", "linux/arm64", "linux/arm", "darwin/arm64", "windows/amd64", "wasm"}

// exportResult is `kiln export --json`'s output.
type exportResult struct {
	Model   string   `json:"model"`
	Version int64    `json:"version,omitempty"`
	Target  string   `json:"target"`
	Format  string   `json:"format"`
	Files   []string `json:"files"`
	SHA256  string   `json:"sha256"`
	Bytes   int64    `json:"bytes"`
	Bundle  string   `json:"bundle_sha256"`
	// Lite is true for a --lite executable (CSV and JSON Lines, no --serve).
	Lite bool `json:"lite,omitempty"`
	// Recorded is true when the export was recorded in the registry's lineage.
	Recorded bool `json:"recorded"`
}

func newExportCmd(cfg *Config) *cobra.Command {
	var target, out, format, runtimes string
	var lite bool
	cmd := &cobra.Command{
		Use:   "export MODEL --target OS/ARCH|wasm [-o FILE]",
		Short: "Export a model version as a standalone predictor for another OS, CPU or language",
		Long: `Write MODEL (name:version, name@alias, name, or a bundle directory) as a
predictor that runs with no Kiln, no server and no network:

  --target linux/amd64, linux/arm64, linux/arm (v7), darwin/arm64, windows/amd64
      one static executable with the bundle inside. It reads CSV, JSON Lines
      or Parquet from a file or stdin and writes predictions in the same
      formats; --serve ADDR serves kiln serve's /v1 and /v2 routes; --version
      prints the model, the bundle hash and Kiln's version.
  --target wasm
      a WASI module with the same command line (wasmtime, wazero, or a
      browser through a WASI shim; docs/export.md).
  --lite
      a smaller executable (about 5 MB instead of 16, wasm 9 MB instead of
      25) that reads and writes CSV and JSON Lines only: no Parquet and no
      --serve, whose libraries (parquet-go with its codecs and protobuf,
      net/http, TLS) are two thirds of the full runtime.
  --format c
      dependency-free C99, one .c and one .h (-o names them: -o churn writes
      churn.c and churn.h): the fitted transforms and the estimator as code
      and tables, a function per row and per batch (docs/export-c.md).

Executables are made without a compiler: kiln writes the bundle into a
prebuilt runtime for the target (make runtimes builds them next to kiln, in
bin/runtimes; --runtimes or KILN_RUNTIMES points elsewhere). Exports of a
registered version are recorded in its lineage (kiln models lineage).`,
		Example: `  kiln export churn@production --target linux/arm64 -o churn-arm64
  ./churn-arm64 --passthrough customer_id rows.csv > scored.csv
  kiln export churn:3 --target linux/arm --lite -o churn-arm   # CSV/JSON Lines only, ~5 MB
  kiln export churn:3 --target wasm -o churn.wasm
  kiln export churn:3 --format c -o churn`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format == "" {
				format = "exe"
			}
			switch format {
			case "exe":
				if target == "" {
					return &exitError{code: 2, err: fmt.Errorf("--target is required: one of %s (or --format c)", strings.Join(exportTargets, ", "))}
				}
				if !slices.Contains(exportTargets, target) {
					return &exitError{code: 2, err: fmt.Errorf("--target %q: want one of %s", target, strings.Join(exportTargets, ", "))}
				}
			case "c":
				if target != "" && target != "c" {
					return &exitError{code: 2, err: fmt.Errorf("--format c writes portable C; drop --target %s", target)}
				}
				if lite {
					return &exitError{code: 2, err: errors.New("--lite picks a smaller executable; C (--format c) has no runtime to trim")}
				}
				target = "c"
			default:
				return &exitError{code: 2, err: fmt.Errorf("--format %q: want exe (the default) or c", format)}
			}
			m, name, version, dir, err := loadScoreModel(cmd, cfg, args[0])
			if err != nil {
				return err
			}
			files, err := edge.ReadBundle(dir)
			if err != nil {
				return err
			}
			res := exportResult{Model: name, Version: version, Target: target, Bundle: model.HashFiles(files), Lite: lite}
			if format == "c" {
				res.Format = "c"
				err = exportC(m, name, out, &res)
			} else {
				res.Format = "executable"
				if target == "wasm" {
					res.Format = "wasm"
				}
				if lite {
					res.Format += "-lite"
				}
				err = exportRuntime(cfg, files, name, version, target, out, runtimes, &res)
			}
			if err != nil {
				return err
			}
			if version > 0 {
				if err := recordExport(cmd, cfg, res); err != nil {
					fmt.Fprintf(cfg.stderr, "warning: the export is written but not recorded in the lineage: %v\n", err)
				} else {
					res.Recorded = true
				}
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, res)
			}
			label := name
			if version > 0 {
				label = fmt.Sprintf("%s:%d", name, version)
			}
			fmt.Fprintf(cfg.stdout, "exported %s for %s → %s (%s, sha256 %s)\n", label, target, strings.Join(res.Files, ", "), humanBytes(res.Bytes), res.SHA256[:12])
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&target, "target", "", "OS/ARCH of the executable ("+strings.Join(exportTargets, ", ")+")")
	f.StringVarP(&out, "output", "o", "", "file to write (default NAME-OS-ARCH, NAME.wasm, or NAME.c and NAME.h)")
	f.StringVar(&format, "format", "", "exe (an executable or wasm module; the default) or c (C99 source)")
	f.StringVar(&runtimes, "runtimes", "", "directory of prebuilt runtimes (env KILN_RUNTIMES; default bin/runtimes beside kiln)")
	f.BoolVar(&lite, "lite", false, "a smaller executable that reads and writes CSV and JSON Lines only (no Parquet, no --serve)")
	return cmd
}

// RuntimeFile is the file name of the prebuilt predictor runtime for a
// target ("linux/amd64", "wasm", ...), as make runtimes names it.
func RuntimeFile(target string) string { return runtimeFile(target, false) }

// LiteRuntimeFile is the file name of the prebuilt lite runtime (-tags
// kilnlite: CSV and JSON Lines only, no --serve) for a target.
func LiteRuntimeFile(target string) string { return runtimeFile(target, true) }

func runtimeFile(target string, lite bool) string {
	prefix := "kiln-predict-"
	if lite {
		prefix = "kiln-predict-lite-"
	}
	if target == "wasm" {
		return prefix + "wasip1-wasm.wasm"
	}
	name := prefix + strings.ReplaceAll(target, "/", "-")
	if strings.HasPrefix(target, "windows/") {
		name += ".exe"
	}
	return name
}

// runtimeDir finds the prebuilt runtimes: --runtimes, KILN_RUNTIMES, or
// runtimes/ beside the kiln executable.
func runtimeDir(flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if env := os.Getenv("KILN_RUNTIMES"); env != "" {
		return env, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the runtimes beside kiln: %w (use --runtimes)", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	return filepath.Join(filepath.Dir(exe), "runtimes"), nil
}

// exportRuntime writes the bundle into the prebuilt runtime for target.
func exportRuntime(cfg *Config, files map[string][]byte, name string, version int64, target, out, runtimes string, res *exportResult) error {
	dir, err := runtimeDir(runtimes)
	if err != nil {
		return err
	}
	rtPath := filepath.Join(dir, runtimeFile(target, res.Lite))
	rt, err := os.ReadFile(rtPath)
	if err != nil {
		kind := "runtime"
		if res.Lite {
			kind = "lite runtime"
		}
		return fmt.Errorf("no %s for %s: %w (build them with make runtimes, or point --runtimes at them)", kind, target, err)
	}
	p := edge.Payload{Files: files, Header: edge.Header{
		Model: name, Version: version, BundleSHA256: res.Bundle, Kiln: kilnVersion(), Target: target, ExportedAt: time.Now().UTC(),
	}}
	payload, err := p.Encode()
	if err != nil {
		return err
	}
	var data []byte
	if target == "wasm" {
		data, err = pack.Wasm(rt, payload)
	} else {
		data, err = pack.Executable(rt, payload)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", rtPath, err)
	}
	if out == "" {
		out = name + "-" + strings.ReplaceAll(target, "/", "-")
		switch {
		case target == "wasm":
			out = name + ".wasm"
		case strings.HasPrefix(target, "windows/"):
			out += ".exe"
		}
	}
	if err := localfs.WriteFileMode(out, data, 0o755); err != nil {
		return err
	}
	abs, _ := filepath.Abs(out)
	sum := sha256.Sum256(data)
	res.Files, res.SHA256, res.Bytes = []string{abs}, hex.EncodeToString(sum[:]), int64(len(data))
	return nil
}

// nonIdent matches what a C identifier cannot hold.
var nonIdent = regexp.MustCompile(`[^A-Za-z0-9_]`)

// exportC writes the model as C99 (package cexport).
func exportC(m *model.Model, name, out string, res *exportResult) error {
	if out == "" {
		out = name
	}
	out = strings.TrimSuffix(strings.TrimSuffix(out, ".c"), ".h")
	prefix := nonIdent.ReplaceAllString(filepath.Base(out), "_")
	if prefix == "" || (prefix[0] >= '0' && prefix[0] <= '9') {
		prefix = "m_" + prefix
	}
	files, err := cexport.Generate(m, cexport.Options{Prefix: prefix})
	if err != nil {
		return fmt.Errorf("exporting %s as C: %w", name, err)
	}
	dir := filepath.Dir(out)
	cPath, hPath := filepath.Join(dir, files.SourceName), filepath.Join(dir, files.HeaderName)
	if err := localfs.WriteFileMode(hPath, files.Header, 0o644); err != nil {
		return err
	}
	if err := localfs.WriteFileMode(cPath, files.Source, 0o644); err != nil {
		return err
	}
	h := sha256.New()
	h.Write(files.Source)
	h.Write(files.Header)
	ca, _ := filepath.Abs(cPath)
	ha, _ := filepath.Abs(hPath)
	res.Files, res.SHA256, res.Bytes = []string{ca, ha}, hex.EncodeToString(h.Sum(nil)), int64(len(files.Source)+len(files.Header))
	return nil
}

// humanBytes formats a size: 16.6 MB.
func humanBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// recordExport records the export in the registry's lineage.
func recordExport(cmd *cobra.Command, cfg *Config, res exportResult) error {
	reg, err := cfg.openRegistry(cmd)
	if err != nil {
		return err
	}
	defer reg.Close()
	return reg.RecordExport(cmd.Context(), registry.Export{
		Model: res.Model, Version: res.Version, Target: res.Target, Format: res.Format,
		Path: res.Files[0], SHA256: res.SHA256, Bytes: res.Bytes, By: activities.CurrentUser(),
	})
}

// kilnVersion is this kiln's version: the module version, or the VCS
// revision it was built from.
func kilnVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel+" + rev
}
