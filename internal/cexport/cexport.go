// Package cexport writes a Kiln model as dependency-free C99 source: one
// header and one source file holding the fitted preprocessing as code and
// the estimator (XGBoost trees, logistic or linear weights) as constant
// tables, with a function that scores one row and one that scores a batch.
//
// The generated code computes what Kiln's Go code computes
// (model.Model.PredictRows): the transforms in double precision step by
// step as internal/transform applies them, the linear estimators summed in
// feature order, and the tree ensembles as XGBoost's CPU predictor does
// (features rounded to float32, x < threshold goes left, NaN takes the
// split's default direction, leaf values summed in float32 in tree order
// onto the base margin). Predictions are bit-identical to Go's: constants
// are exact hexadecimal literals, each product is rounded on its own (no
// contraction into fused multiply-adds, as internal/detmath and the Go
// estimators round them), and log1p, exp and the sigmoid are C ports of
// the Go functions Kiln calls (math.Log1p; detmath.Exp and detmath.Sigmoid,
// with math.Ldexp), so no C library function decides a bit. XGBoost's base
// margin is computed in Go (detmath.Log) and emitted as a float literal.
// Inputs for which Go returns an error (an unknown category
// under handle_unknown: error, log1p of a value <= -1 under on_invalid:
// error, a missing feature reaching a linear estimator) make the C
// functions return a non-zero code instead of a value.
//
// Anything the generator cannot express exactly (an unknown estimator,
// objective, transform kind or input type) is refused with an error; a
// model is never exported with different semantics. docs/export-c.md
// documents the generated API.
package cexport

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/transform"
)

// DefaultPrefix is the symbol prefix and file base name when
// Options.Prefix is empty.
const DefaultPrefix = "kiln_model"

// Options configures Generate.
type Options struct {
	// Prefix is the C identifier prefix of every exported symbol and the
	// base name of the files. Default "kiln_model". Macros use it in upper
	// case (KILN_MODEL_OK).
	Prefix string
}

// Files are the generated C99 sources.
type Files struct {
	// Header and Source are the contents of <Prefix>.h and <Prefix>.c.
	Header, Source []byte
	// HeaderName and SourceName are the files' names, <Prefix>.h and
	// <Prefix>.c.
	HeaderName, SourceName string
	// Fields describes the members of the generated row struct, one per
	// raw input column, in input order.
	Fields []Field
}

// Field is one member of the generated struct <prefix>_row: a raw input
// column of the model.
type Field struct {
	// Input is the input column's name in the model.
	Input string
	// Type is the column's type: numeric types (float64, int64, bool) are
	// double members (NaN for missing; a bool is 0 or 1), strings are
	// const char * members (NULL for missing).
	Type dataset.Type
	// Member is the C member name: Input with every character outside
	// [A-Za-z0-9_] replaced by '_', made unique and kept clear of C
	// keywords and common macro names.
	Member string
}

// IsString reports whether the member is a const char * (else a double).
func (f Field) IsString() bool { return f.Type == dataset.String }

// Return codes of the generated functions, in the order the header defines
// them (<PREFIX>_OK = 0, <PREFIX>_EUNKNOWN_CATEGORY = 1, ...).
const (
	codeOK = iota
	codeUnknownCategory
	codeInvalidLog1p
	codeMissing
	codeNonFinite
	codeBadBool
	codeBadArgument
)

// codes names and explains the return codes, indexed by value.
var codes = []struct{ name, doc string }{
	{"OK", "success"},
	{"EUNKNOWN_CATEGORY", "a string input holds a category (or NULL) that a step with handle_unknown: error refuses"},
	{"EINVALID_LOG1P", "a log1p step with on_invalid: error met a value <= -1"},
	{"EMISSING", "a feature is missing (NaN) after the transforms and the linear or logistic estimator cannot score it"},
	{"ENONFINITE", "a feature is infinite, or infinities cancelled, where the estimator cannot score it"},
	{"EBAD_BOOL", "a bool input is neither 0, 1 nor NaN"},
	{"EBAD_ARGUMENT", "a NULL pointer argument"},
}

// identRE matches C identifiers.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reserved are names a generated member must not take: C99 keywords and
// macros of the standard headers a user's file commonly includes.
var reserved = map[string]bool{}

func init() {
	for _, s := range strings.Fields(`auto break case char const continue default do double else enum extern
		float for goto if inline int long register restrict return short signed sizeof static struct switch
		typedef union unsigned void volatile while _Bool _Complex _Imaginary
		bool true false complex imaginary I NULL EOF errno assert offsetof stdin stdout stderr
		NAN INFINITY HUGE_VAL HUGE_VALF HUGE_VALL FP_NAN FP_INFINITE FP_ZERO FP_SUBNORMAL FP_NORMAL
		FP_ILOGB0 FP_ILOGBNAN FP_FAST_FMA FP_FAST_FMAF FP_FAST_FMAL MATH_ERRNO MATH_ERREXCEPT math_errhandling
		BUFSIZ FILENAME_MAX RAND_MAX EXIT_SUCCESS EXIT_FAILURE CHAR_BIT SIZE_MAX PTRDIFF_MAX
		INT_MAX INT_MIN UINT_MAX LONG_MAX LONG_MIN ULONG_MAX
		linux unix i386 _GNU_SOURCE`) {
		reserved[s] = true
	}
}

// checkPrefix checks that p can prefix C identifiers and name files.
func checkPrefix(p string) error {
	switch {
	case !identRE.MatchString(p):
		return fmt.Errorf("prefix %q is not a C identifier ([A-Za-z_][A-Za-z0-9_]*)", p)
	case strings.HasPrefix(p, "__") || len(p) > 1 && p[0] == '_' && p[1] >= 'A' && p[1] <= 'Z':
		return fmt.Errorf("prefix %q is reserved to the C implementation (it starts with __ or _ and a capital)", p)
	case reserved[p]:
		return fmt.Errorf("prefix %q is a C keyword or a standard macro", p)
	case len(p) > 48:
		return fmt.Errorf("prefix %q is longer than 48 characters", p)
	}
	return nil
}

// members maps input names to distinct C member names.
func members(inputs []dataset.Field) []Field {
	used := map[string]bool{}
	out := make([]Field, len(inputs))
	for i, in := range inputs {
		b := []byte(in.Name)
		for k, c := range b {
			if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				b[k] = '_'
			}
		}
		name := string(b)
		if name == "" || name[0] >= '0' && name[0] <= '9' || name[0] == '_' {
			// Leading underscores are reserved (_X, __x); digits cannot start.
			name = "f_" + name
		}
		if reserved[name] {
			name += "_"
		}
		base := name
		for k := 2; used[name]; k++ {
			name = fmt.Sprintf("%s_%d", base, k)
		}
		used[name] = true
		out[i] = Field{Input: in.Name, Type: in.Type, Member: name}
	}
	return out
}

// Generate writes m as C99 code. A transform or estimator it cannot express
// exactly is refused with an error naming it (never exported wrong).
func Generate(m *model.Model, opts Options) (Files, error) {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if err := checkPrefix(prefix); err != nil {
		return Files{}, fmt.Errorf("cexport: %w", err)
	}
	if m == nil {
		return Files{}, fmt.Errorf("cexport: nil model")
	}
	t := m.Manifest.Transforms
	if t == nil {
		return Files{}, fmt.Errorf("cexport: the model has no transforms")
	}
	if err := t.Validate(); err != nil {
		return Files{}, fmt.Errorf("cexport: the model's transforms: %w", err)
	}
	cols, err := planColumns(t)
	if err != nil {
		return Files{}, fmt.Errorf("cexport: %w", err)
	}
	est, err := newEstimator(m, t.Features)
	if err != nil {
		return Files{}, fmt.Errorf("cexport: %w", err)
	}
	g := &gen{
		p:      prefix,
		P:      strings.ToUpper(prefix),
		m:      m,
		t:      t,
		fields: members(t.Inputs),
		cols:   cols,
		est:    est,
	}
	f := Files{
		HeaderName: prefix + ".h",
		SourceName: prefix + ".c",
		Fields:     slices.Clone(g.fields),
	}
	f.Header = g.header()
	f.Source = g.source()
	return f, nil
}

// gen holds what the generator emits from.
type gen struct {
	p, P   string // the prefix, as is and in upper case
	m      *model.Model
	t      *transform.Fitted
	fields []Field
	cols   []inputPlan
	est    estimator
	// helpers records the static helper functions the source uses.
	helpers map[string]bool
}

// estimator emits the C code of a model's estimator.
type estimator interface {
	// describe is a one-line description for comments.
	describe() string
	// output names the prediction: "probability" or "value".
	output() string
	// tables writes the estimator's constant tables and static functions.
	tables(g *gen, w *writer)
	// predict writes the public functions <prefix>_predict and
	// <prefix>_predict_batch.
	predict(g *gen, w *writer)
	// stack estimates the bytes of stack the batch function uses.
	stack(g *gen) int
}

// writer accumulates C source.
type writer struct{ bytes.Buffer }

// f writes a formatted line part.
func (w *writer) f(format string, args ...any) { fmt.Fprintf(&w.Buffer, format, args...) }

// l writes a formatted line.
func (w *writer) l(format string, args ...any) {
	fmt.Fprintf(&w.Buffer, format, args...)
	w.WriteByte('\n')
}
