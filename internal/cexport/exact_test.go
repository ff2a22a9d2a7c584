package cexport

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/detmath"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
)

// sigmoidLogistic is a logistic model whose score z is the input a
// (weights 1, 2^1000 and -2^1000 over a, b and c, intercept 0; b and c are
// mostly 0), with a drawn over every range of detmath.Exp: around the
// overflow, underflow and 2^-28 thresholds, subnormal results, the points
// where the reduction's k changes, tiny and huge values, random bits.
// Non-zero b and c push z to ±2^1000 and beyond (±Inf, which the sigmoid
// maps to 1 or 0, and Inf-Inf, which Go refuses).
func sigmoidLogistic(t *testing.T) (*model.Model, []map[string]any) {
	rng := rand.New(rand.NewPCG(8, 8))
	schema := dataset.Schema{Fields: []dataset.Field{{Name: "a", Type: dataset.Float64}, {Name: "b", Type: dataset.Float64},
		{Name: "c", Type: dataset.Float64}, {Name: "y", Type: dataset.Float64}}}
	fitted := fit(t, transform.Recipe{Target: "y"}, schema, []map[string]any{{"a": 1.0, "b": 0.0, "c": 0.0, "y": 0.0}})
	est, err := json.Marshal(model.Logistic{Type: model.EstimatorLogistic, Features: fitted.Features,
		Weights: []float64{1, 0x1p1000, -0x1p1000}})
	if err != nil {
		t.Fatal(err)
	}
	m := newModel(t, fitted, "y", model.TaskBinary, model.EstimatorLogistic, est)
	rows := make([]map[string]any, testRows)
	for i := range rows {
		r := map[string]any{"a": expInput(rng), "b": 0.0, "c": 0.0}
		switch u := rng.Float64(); {
		case u < 0.03:
			r["b"] = float64(1 - 2*rng.IntN(2))
		case u < 0.06:
			r["c"] = 0x1p30 * float64(1-2*rng.IntN(2)) // ±Inf
		case u < 0.07:
			r["b"], r["c"] = 0x1p30, 0x1p30 // Inf - Inf
		case u < 0.08:
			r["a"] = nil
		}
		rows[i] = r
	}
	return m, rows
}

// expInput draws an argument for exp over all of its ranges.
func expInput(rng *rand.Rand) float64 {
	const (
		overflow  = 7.09782712893383973096e+02
		underflow = -7.45133219101941108420e+02
		log2e     = 1.44269504088896338700e+00
	)
	specials := []float64{0, math.Copysign(0, -1), 0x1p-28, -0x1p-28, math.Nextafter(0x1p-28, 0), -math.Nextafter(0x1p-28, 0),
		overflow, math.Nextafter(overflow, 1000), math.Nextafter(overflow, 0), underflow, math.Nextafter(underflow, -1000),
		math.Nextafter(underflow, 0), -708.3964185322641, -708.4, -744.44007192138126, -745.1, 1, -1, 0.5, -0.5,
		math.Ln2 / 2, -math.Ln2 / 2, 1e-300, -1e-300, math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64,
		math.MaxFloat64, -math.MaxFloat64, 36.7368005696771, -36.7368005696771}
	v := 0.0
	switch u := rng.Float64(); {
	case u < 0.1:
		v = specials[rng.IntN(len(specials))]
	case u < 0.25:
		// Where the reduction's k = int(log2e*x ± 0.5) changes, and the
		// doubles next to it.
		v = (float64(rng.IntN(2100)-1076) + 0.5) / log2e
		for range rng.IntN(3) {
			v = math.Nextafter(v, math.Inf(1-2*rng.IntN(2)))
		}
	case u < 0.5:
		v = (rng.Float64() - 0.5) * 1600
	case u < 0.75:
		v = (rng.Float64() - 0.5) * 80
	case u < 0.85:
		v = math.Ldexp(rng.Float64()-0.5, -rng.IntN(60))
	case u < 0.95:
		// Subnormal results: e^x below 2^-1022.
		v = -708 - 37.2*rng.Float64()
	default:
		for v = math.NaN(); math.IsNaN(v) || math.IsInf(v, 0); {
			v = math.Float64frombits(rng.Uint64())
		}
	}
	return v
}

// cMathSource calls the generated file's static exp, sigmoid and ldexp
// (the test includes the .c file): each input line is "e BITS", "s BITS"
// or "l BITS E" (BITS a double's bits in hex), each output line the
// result's bits.
const cMathSource = `#include <stdio.h>
#include <stdlib.h>
#include "PREFIX.c"

int main(void)
{
    char op;
    unsigned long long bits;
    int e;
    double x, y;
    while (scanf(" %c %llx", &op, &bits) == 2) {
        memcpy(&x, &bits, sizeof x);
        switch (op) {
        case 'e':
            y = PREFIX_exp(x);
            break;
        case 's':
            y = PREFIX_sigmoid(x);
            break;
        case 'l':
            if (scanf("%d", &e) != 1) {
                return 1;
            }
            y = PREFIX_ldexp(x, e);
            break;
        default:
            return 1;
        }
        memcpy(&bits, &y, sizeof bits);
        printf("%016llx\n", bits);
    }
    return 0;
}
`

// TestCMathMatchesDetmath calls the generated C exp, sigmoid and ldexp
// directly on 400,000 arguments over all their ranges (and special values)
// and checks every result against detmath.Exp, detmath.Sigmoid and
// math.Ldexp bit for bit, also compiled with fused multiply-add available
// and contraction requested on the command line (amd64 with FMA).
func TestCMathMatchesDetmath(t *testing.T) {
	gcc := needGCC(t)
	m, _ := sigmoidLogistic(t)
	f, err := Generate(m, Options{Prefix: "kiln_math"})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(9, 9))
	type call struct {
		op   byte
		x    float64
		e    int
		want float64
	}
	var calls []call
	for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		calls = append(calls, call{'e', x, 0, detmath.Exp(x)}, call{'s', x, 0, detmath.Sigmoid(x)})
	}
	for range 150000 {
		x := expInput(rng)
		calls = append(calls, call{'e', x, 0, detmath.Exp(x)}, call{'s', x, 0, detmath.Sigmoid(x)})
	}
	for range 100000 {
		var x float64
		switch rng.IntN(4) {
		case 0:
			x = math.Float64frombits(rng.Uint64() & 0x800fffffffffffff) // zero or subnormal
		case 1:
			x = math.Float64frombits(rng.Uint64())
		default:
			x = (1 + rng.Float64()) * float64(1-2*rng.IntN(2)) // |x| in [1, 2), as exp's
		}
		e := rng.IntN(2400) - 1200
		if rng.IntN(2) == 0 {
			e = rng.IntN(60) - 1100 // subnormal results: rounding
		}
		calls = append(calls, call{'l', x, e, math.Ldexp(x, e)})
	}
	var in bytes.Buffer
	for _, c := range calls {
		fmt.Fprintf(&in, "%c %x", c.op, math.Float64bits(c.x))
		if c.op == 'l' {
			fmt.Fprintf(&in, " %d", c.e)
		}
		in.WriteByte('\n')
	}
	builds := map[string][]string{"c99 -O2": {"-std=c99", "-O2"}}
	if fmaCPU() {
		builds["gnu99 -O3 -mfma -ffp-contract=fast"] = []string{"-std=gnu99", "-O3", "-mfma", "-ffp-contract=fast"}
	}
	for name, flags := range builds {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			src := strings.ReplaceAll(cMathSource, "PREFIX", "kiln_math")
			for file, data := range map[string][]byte{f.HeaderName: f.Header, f.SourceName: f.Source, "math.c": []byte(src)} {
				if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			bin := filepath.Join(dir, "math")
			args := append(slices.Clone(flags), "-Wall", "-Wextra", "-Werror", "-o", bin, filepath.Join(dir, "math.c"), "-lm")
			if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
				t.Fatalf("gcc %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			cmd := exec.Command(bin)
			cmd.Stdin = bytes.NewReader(in.Bytes())
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(bytes.NewReader(out))
			n := 0
			for ; sc.Scan(); n++ {
				if n >= len(calls) {
					t.Fatal("more results than calls")
				}
				b, err := strconv.ParseUint(sc.Text(), 16, 64)
				if err != nil {
					t.Fatal(err)
				}
				c := calls[n]
				if got := math.Float64frombits(b); !sameBits(got, c.want) {
					t.Fatalf("%c(%v (%#x), %d): C %v (%#x), Go %v (%#x)", c.op, c.x, math.Float64bits(c.x), c.e,
						got, b, c.want, math.Float64bits(c.want))
				}
			}
			if n != len(calls) {
				t.Fatalf("%d results for %d calls", n, len(calls))
			}
		})
	}
}

// TestGenerateNoContraction compiles exports with fused multiply-add
// available and contraction requested on the command line (-std=gnu99 -O3
// -mfma -ffp-contract=fast): the file's pragma must keep every product
// rounded, so the model code has no FMA instruction and the predictions
// are Go's bit for bit. Without the pragma gcc would fuse them (logged).
// amd64 with FMA only.
func TestGenerateNoContraction(t *testing.T) {
	gcc := needGCC(t)
	if !fmaCPU() {
		t.Skip("needs amd64 with FMA")
	}
	fmaFlags := slices.Clone(gccFlags)
	fmaFlags[slices.Index(fmaFlags, "-std=c99")] = "-std=gnu99"
	fmaFlags = append(fmaFlags, "-O3", "-mfma", "-ffp-contract=fast")
	for _, tc := range []struct {
		name  string
		build func(t *testing.T) (*model.Model, []map[string]any)
	}{
		{"churn logistic", churnLogistic(false)},
		{"diabetes linear", diabetesLinear},
		{"breast cancer gbdt", breastCancerGBDT},
		{"sigmoid ranges", sigmoidLogistic},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, rows := tc.build(t)
			files, err := Generate(m, Options{Prefix: "kiln_fma"})
			if err != nil {
				t.Fatal(err)
			}
			if n := fmaInstructions(t, gcc, files, files.Source, fmaFlags); n > 0 {
				t.Fatalf("the model code compiles to %d FMA instructions", n)
			}
			var stripped []string
			for _, line := range strings.Split(string(files.Source), "\n") {
				if !strings.Contains(line, "FP_CONTRACT") && !strings.Contains(line, "fp-contract") {
					stripped = append(stripped, line)
				}
			}
			t.Logf("without the pragma: %d FMA instructions", fmaInstructions(t, gcc, files, []byte(strings.Join(stripped, "\n")), fmaFlags))

			bin := buildHarnessFlags(t, gcc, files, fmaFlags, fmaFlags)
			got, _, _ := runPredict(t, bin, writeRows(t, files, rows), len(rows))
			scored := 0
			for i, r := range rows {
				out, err := m.PredictRows([]map[string]any{r})
				want := codeOK
				if err != nil {
					want = goCode(t, err)
				}
				g := got[i]
				if g.code != want {
					t.Fatalf("row %d %v: C returns %d, Go %d (%v)", i, r, g.code, want, err)
				}
				if err != nil {
					continue
				}
				scored++
				if !sameBits(g.value, out[0]) || !sameBits(g.batch, out[0]) {
					t.Fatalf("row %d %v: C %v (batch %v), Go %v: want the same bits", i, r, g.value, g.batch, out[0])
				}
			}
			t.Logf("%d rows, %d scored, all bit-identical to Go", len(rows), scored)
		})
	}
}

// fmaCPU reports whether this is amd64 with FMA instructions.
func fmaCPU() bool {
	if runtime.GOARCH != "amd64" {
		return false
	}
	info, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(info), "\n") {
		if strings.HasPrefix(line, "flags") {
			return slices.Contains(strings.Fields(line), "fma")
		}
	}
	return false
}

// fmaInstructions compiles src (files' source or a variant) to assembly and
// counts its fused multiply-add instructions (vfmadd..., vfmsub...,
// vfnmadd..., vfnmsub...).
func fmaInstructions(t *testing.T, gcc string, files Files, src []byte, flags []string) int {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string][]byte{files.HeaderName: files.Header, files.SourceName: src} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := append(slices.Clone(flags), "-S", "-o", "-", filepath.Join(dir, files.SourceName))
	asm, err := exec.Command(gcc, args...).Output()
	if err != nil {
		t.Fatalf("gcc %s: %v", strings.Join(args, " "), err)
	}
	n := 0
	for _, line := range strings.Split(string(asm), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			for _, op := range []string{"vfmadd", "vfmsub", "vfnmadd", "vfnmsub"} {
				if strings.HasPrefix(f[0], op) {
					n++
				}
			}
		}
	}
	return n
}
