package serving

// The Open Inference Protocol v2 (KServe's "V2 inference protocol",
// https://github.com/kserve/kserve/tree/master/docs/predict-api/v2) over
// REST: health, server and model metadata, model readiness and inference,
// with and without /versions/{v}. The tensor checks and the rows they make
// are shared with the gRPC service (grpc.go); every prediction goes through
// Server.predict, so prediction IDs, metrics and the request log are the
// same as the v1 route's.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
)

// ServerName is the server's name in the protocol's server metadata.
const ServerName = "kiln"

// OutputName is the name of the output tensor every model has: its
// predictions, FP64 (for a multiclass model the index of the most probable
// class; see OutputLabel and OutputProbabilities).
const OutputName = "prediction"

// serverVersion is the server's version in the protocol's server metadata:
// the main module's version from the build information, or "devel".
var serverVersion = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
})

// dtypeKind groups the protocol's datatypes by the values they hold.
type dtypeKind int

const (
	kindBool dtypeKind = iota
	kindInt
	kindUint
	kindFloat
	kindBytes
)

// dtype is one of the protocol's tensor datatypes.
type dtype struct {
	name string
	kind dtypeKind
	// size is an element's size in bytes in raw tensor contents (0 for
	// BYTES, whose elements are length-prefixed).
	size int
	// lo and hi bound the values of integer types; max bounds the
	// magnitude of floating-point types.
	lo, hi float64
	max    float64
}

// maxFP16 and maxBF16 are the largest finite half and bfloat16 values.
const (
	maxFP16 = 65504
	maxBF16 = 3.3895313892515355e38
)

// dtypes are the protocol's datatypes, by name.
var dtypes = map[string]*dtype{
	"BOOL":   {name: "BOOL", kind: kindBool, size: 1},
	"INT8":   {name: "INT8", kind: kindInt, size: 1, lo: math.MinInt8, hi: math.MaxInt8},
	"INT16":  {name: "INT16", kind: kindInt, size: 2, lo: math.MinInt16, hi: math.MaxInt16},
	"INT32":  {name: "INT32", kind: kindInt, size: 4, lo: math.MinInt32, hi: math.MaxInt32},
	"INT64":  {name: "INT64", kind: kindInt, size: 8, lo: math.MinInt64, hi: math.MaxInt64},
	"UINT8":  {name: "UINT8", kind: kindUint, size: 1, hi: math.MaxUint8},
	"UINT16": {name: "UINT16", kind: kindUint, size: 2, hi: math.MaxUint16},
	"UINT32": {name: "UINT32", kind: kindUint, size: 4, hi: math.MaxUint32},
	"UINT64": {name: "UINT64", kind: kindUint, size: 8, hi: math.MaxUint64},
	"FP16":   {name: "FP16", kind: kindFloat, size: 2, max: maxFP16},
	"BF16":   {name: "BF16", kind: kindFloat, size: 2, max: maxBF16},
	"FP32":   {name: "FP32", kind: kindFloat, size: 4, max: math.MaxFloat32},
	"FP64":   {name: "FP64", kind: kindFloat, size: 8, max: math.MaxFloat64},
	"BYTES":  {name: "BYTES", kind: kindBytes},
}

// dtypeNames lists the datatypes for error messages.
const dtypeNames = "BOOL, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64, FP16, BF16, FP32, FP64 or BYTES"

// lookupDtype returns the named datatype; "" (no datatype) is nil without
// an error.
func lookupDtype(input, name string) (*dtype, error) {
	if name == "" {
		return nil, nil
	}
	dt := dtypes[name]
	if dt == nil {
		return nil, fmt.Errorf("input %q: unknown datatype %q (want %s)", input, name, dtypeNames)
	}
	return dt, nil
}

// rangeText describes the values dt holds, for errors.
func (dt *dtype) rangeText() string {
	switch dt.kind {
	case kindInt, kindUint:
		return fmt.Sprintf("an integer in %s..%s", strconv.FormatFloat(dt.lo, 'f', -1, 64), strconv.FormatFloat(dt.hi, 'f', -1, 64))
	case kindFloat:
		return fmt.Sprintf("a number of magnitude at most %g", dt.max)
	case kindBool:
		return "true or false"
	}
	return "a string"
}

// round rounds a finite x to the nearest value of a floating-point dt (as
// the tensor would hold it); x must be within dt.max.
func (dt *dtype) round(x float64) float64 {
	switch dt.name {
	case "FP32":
		return float64(float32(x))
	case "FP16":
		return float64(halfToFloat32(float32ToHalf(float32(x))))
	case "BF16":
		return float64(bf16ToFloat32(float32ToBF16(float32(x))))
	}
	return x
}

// fitsColumn reports whether values of dt can feed a model input of type t:
// numbers feed int64 and float64 columns, BOOL feeds bool, BYTES feeds
// string.
func (dt *dtype) fitsColumn(t dataset.Type) bool {
	switch t {
	case dataset.Int64, dataset.Float64:
		return dt.kind == kindInt || dt.kind == kindUint || dt.kind == kindFloat
	case dataset.Bool:
		return dt.kind == kindBool
	case dataset.String:
		return dt.kind == kindBytes
	}
	return false
}

// datatypeOf is the protocol's datatype of a model input type.
func datatypeOf(t dataset.Type) string {
	switch t {
	case dataset.Int64:
		return "INT64"
	case dataset.Float64:
		return "FP64"
	case dataset.Bool:
		return "BOOL"
	}
	return "BYTES"
}

// tensorIn is one input tensor of an inference request, checked against its
// datatype and shape: its values, flat and in row-major order, are the
// row values a model reads (float64, bool, string, or nil for a missing
// value); an input without a datatype (REST only) holds decoded JSON values
// that the model checks itself.
type tensorIn struct {
	name   string
	dt     *dtype // nil: no datatype given
	shape  []int64
	values []any
}

// inferError is a refused inference request: its HTTP status and message.
type inferError struct {
	code int
	msg  string
}

func (e *inferError) Error() string { return e.msg }

func badRequest(format string, args ...any) *inferError {
	return &inferError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

// target is what a request is served by: the model whose deployment
// predict runs (pinned to one version when the request named one) and the
// bundle whose inputs the request is checked against (the stable version's
// when none was named).
type target struct {
	m    *served
	mdl  *model.Model
	dep  Deployment
	name string
}

// resolve finds the model, and the version if one is given, that a request
// names: 404 for an unknown model or a version that is not deployed (as
// stable or canary), 503 for a model without a deployment.
func (s *Server) resolve(name, version string) (target, *inferError) {
	m := s.model(name)
	if m == nil {
		return target{}, &inferError{http.StatusNotFound, fmt.Sprintf("model %q is not served here", name)}
	}
	l := m.cur.Load()
	if l == nil {
		return target{}, &inferError{http.StatusServiceUnavailable, fmt.Sprintf("model %q is not ready: it has no deployment", name)}
	}
	t := target{m: m, mdl: l.stable, dep: l.dep, name: name}
	if version == "" {
		return t, nil
	}
	mdl, vm, ok := deployedVersion(l, version)
	if !ok {
		return target{}, &inferError{http.StatusNotFound, fmt.Sprintf("model %q has no version %q deployed (deployed: %s)", name, version, strings.Join(deployedVersions(l.dep), ", "))}
	}
	// A served of its own, whose only variant is the version asked for, so
	// predict counts and logs the request as that version and variant.
	pinned := &served{name: m.name}
	pinned.cur.Store(&loaded{dep: Deployment{Stable: Target{Version: vm.version}}, stable: mdl, stableM: vm})
	t.m, t.mdl = pinned, mdl
	return t, nil
}

// deployedVersion returns the bundle and metrics of version (a decimal
// version number) in the deployment l, if it is l's stable or canary.
func deployedVersion(l *loaded, version string) (*model.Model, *variantMetrics, bool) {
	v, err := strconv.ParseInt(version, 10, 64)
	if err != nil {
		return nil, nil, false
	}
	if l.dep.Stable.Version == v {
		return l.stable, l.stableM, true
	}
	if l.dep.Canary != nil && l.canary != nil && l.dep.Canary.Version == v {
		return l.canary, l.canaryM, true
	}
	if l.exp != nil {
		for i := range l.exp.arms {
			if a := &l.exp.arms[i]; a.v.Version == v {
				return a.mdl, a.m, true
			}
		}
	}
	return nil, nil, false
}

// deployedVersions are a deployment's versions: stable, then canary, then
// the experiment's variants' (each once).
func deployedVersions(d Deployment) []string {
	vs := []string{strconv.FormatInt(d.Stable.Version, 10)}
	if d.Canary != nil && d.Canary.Version != d.Stable.Version {
		vs = append(vs, strconv.FormatInt(d.Canary.Version, 10))
	}
	if d.Experiment != nil {
		for _, v := range d.Experiment.Variants {
			if s := strconv.FormatInt(v.Version, 10); !slices.Contains(vs, s) {
				vs = append(vs, s)
			}
		}
	}
	return vs
}

// inferRequest is an inference request in the protocol's terms, from REST
// or gRPC.
type inferRequest struct {
	id      string
	inputs  []tensorIn
	ids     []string // parameters.prediction_ids; nil when not given
	outputs []string // the outputs requested; empty for all
	// header reads the request's HTTP headers or gRPC metadata (an
	// experiment's assignment key); nil when there are none.
	header func(string) string
}

// infer checks an inference request against t, builds its rows and
// predicts them. start is when the request arrived.
func (s *Server) infer(t target, req *inferRequest, start time.Time) (PredictResponse, *inferError) {
	for _, o := range req.outputs {
		if names := outputNames(t.mdl); !slices.Contains(names, o) {
			if len(names) == 1 {
				return PredictResponse{}, badRequest("unknown output %q: the model's only output is %q", o, OutputName)
			}
			return PredictResponse{}, badRequest("unknown output %q: the model's outputs are %q", o, names)
		}
	}
	rows, err := s.tensorRows(req.inputs, t.mdl.Manifest.Inputs)
	if err != nil {
		return PredictResponse{}, err
	}
	n := len(rows)
	ids := req.ids
	switch {
	case ids != nil:
		if err := CheckPredictionIDs(ids, n, "parameters.prediction_ids"); err != nil {
			return PredictResponse{}, badRequest("%v", err)
		}
	case req.id != "" && n == 1:
		// The request's ID names its only prediction.
		if err := checkPredictionID(req.id); err != nil {
			return PredictResponse{}, badRequest("id %v (a one-row request's id is its prediction ID)", err)
		}
		ids = []string{req.id}
	}
	resp, code, perr := s.predict(t.m, predictInput{rows: rows}, ids, start, req.header)
	if perr != nil {
		return PredictResponse{}, &inferError{code, perr.Error()}
	}
	return resp, nil
}

// tensorRows turns checked input tensors into rows for a model with the
// given inputs. Each input is one column of shape [n] or [n, 1], named as
// the model's input it feeds (inputs the model does not have are ignored,
// as v1 ignores extra columns), or the request's only input has shape
// [n, k] and its k columns are the model's k inputs in order. A typed
// input must fit its column's type.
func (s *Server) tensorRows(ins []tensorIn, schema []dataset.Field) ([]map[string]any, *inferError) {
	col := make(map[string]int, len(schema))
	for j, f := range schema {
		col[f.Name] = j
	}
	n := -1
	for i, in := range ins {
		for _, prev := range ins[:i] {
			if prev.name == in.name {
				return nil, badRequest("input %q is given twice", in.name)
			}
		}
		switch len(in.shape) {
		case 1:
		case 2:
			if in.shape[1] != 1 {
				if len(ins) != 1 {
					return nil, badRequest("input %q has shape %v: an input of k > 1 columns holds all the model's inputs and must be the request's only input", in.name, in.shape)
				}
				if in.shape[1] != int64(len(schema)) {
					return nil, badRequest("input %q has shape %v: its %d columns must be the model's %d inputs in order (%s)", in.name, in.shape, in.shape[1], len(schema), strings.Join(fieldNames(schema), ", "))
				}
			}
		default:
			return nil, badRequest("input %q has shape %v: want [n] or [n, 1] (one model input), or [n, k] (the model's k inputs in order)", in.name, in.shape)
		}
		rows := int(in.shape[0])
		if n >= 0 && rows != n {
			return nil, badRequest("input %q has %d values, others have %d", in.name, rows, n)
		}
		n = rows
		if in.dt == nil {
			continue
		}
		if len(in.shape) == 2 && in.shape[1] != 1 {
			for _, f := range schema {
				if !in.dt.fitsColumn(f.Type) {
					return nil, badRequest("input %q is %s but the model's input %q is %s (send it as %s)", in.name, in.dt.name, f.Name, f.Type, datatypeOf(f.Type))
				}
			}
		} else if j, ok := col[in.name]; ok && !in.dt.fitsColumn(schema[j].Type) {
			return nil, badRequest("input %q is %s but the model's input %q is %s (send it as %s)", in.name, in.dt.name, in.name, schema[j].Type, datatypeOf(schema[j].Type))
		}
	}
	if n <= 0 {
		return nil, badRequest("request has no inputs")
	}
	if n > s.opts.MaxInstances {
		return nil, &inferError{http.StatusRequestEntityTooLarge, fmt.Sprintf("%d rows, at most %d per request", n, s.opts.MaxInstances)}
	}
	rows := make([]map[string]any, n)
	if len(ins) == 1 && len(ins[0].shape) == 2 && ins[0].shape[1] != 1 {
		k := len(schema)
		for i := range rows {
			r := make(map[string]any, k)
			for j, f := range schema {
				r[f.Name] = ins[0].values[i*k+j]
			}
			rows[i] = r
		}
		return rows, nil
	}
	for i := range rows {
		r := make(map[string]any, len(ins))
		for _, in := range ins {
			r[in.name] = in.values[i]
		}
		rows[i] = r
	}
	return rows, nil
}

func fieldNames(fs []dataset.Field) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Name
	}
	return out
}

// checkCount checks that a tensor's values fill its shape: every dimension
// non-negative and their product the number of values.
func checkCount(name string, shape []int64, count int) error {
	p := int64(1)
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("input %q has shape %v: dimensions must not be negative", name, shape)
		}
		if d != 0 && p > math.MaxInt64/d {
			return fmt.Errorf("input %q has %d values but its shape %v holds more", name, count, shape)
		}
		p *= d
	}
	if p != int64(count) {
		return fmt.Errorf("input %q has %d values but its shape %v holds %d", name, count, shape, p)
	}
	return nil
}

// inIntRange reports whether the integral x is within an integer dt's
// range (the 64-bit bounds 2^63 and 2^64 are exact as float64s, the
// largest values are not).
func (dt *dtype) inIntRange(x float64) bool {
	switch {
	case dt.kind == kindInt && dt.size == 8:
		return x >= -(1<<63) && x < 1<<63
	case dt.kind == kindUint && dt.size == 8:
		return x >= 0 && x < 1<<64
	}
	return x >= dt.lo && x <= dt.hi
}

// numberValue checks a number x (written text in errors) for a numeric dt
// and returns the value a row holds: x itself, rounded to dt's precision
// for FP16, BF16 and FP32.
func numberValue(dt *dtype, x float64, text string) (float64, error) {
	if math.IsInf(x, 0) || math.IsNaN(x) {
		return 0, fmt.Errorf("%s is not a finite number", text)
	}
	switch dt.kind {
	case kindInt, kindUint:
		if x != math.Trunc(x) || !dt.inIntRange(x) {
			return 0, fmt.Errorf("%s does not fit %s (%s)", text, dt.name, dt.rangeText())
		}
		return x, nil
	}
	if math.Abs(x) > dt.max {
		return 0, fmt.Errorf("%s does not fit %s (%s)", text, dt.name, dt.rangeText())
	}
	return dt.round(x), nil
}

// jsonNumber checks one JSON number of a numeric input. The row value is
// the literal parsed as a float64, as encoding/json (and so the v1 route)
// parses it, rounded to dt's precision for FP16, BF16 and FP32.
func jsonNumber(dt *dtype, n json.Number) (float64, error) {
	text := string(n)
	misfit := func() (float64, error) {
		return 0, fmt.Errorf("%s does not fit %s (%s)", text, dt.name, dt.rangeText())
	}
	// Integers are range-checked exactly first: a float64 cannot tell
	// 2^63-1 from 2^63.
	switch dt.kind {
	case kindInt:
		if i, err := strconv.ParseInt(text, 10, 64); err == nil {
			if dt.size < 8 && (i < int64(dt.lo) || i > int64(dt.hi)) {
				return misfit()
			}
			return strconv.ParseFloat(text, 64)
		} else if errors.Is(err, strconv.ErrRange) {
			return misfit()
		}
	case kindUint:
		if u, err := strconv.ParseUint(text, 10, 64); err == nil {
			if dt.size < 8 && u > uint64(dt.hi) {
				return misfit()
			}
			return strconv.ParseFloat(text, 64)
		} else if errors.Is(err, strconv.ErrRange) {
			return misfit()
		}
	}
	// A fraction or an exponent (3.0, 1e3, or anything for floats).
	x, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return misfit()
	}
	return numberValue(dt, x, text)
}

// jsonValue checks one decoded JSON element (decoded with UseNumber) of an
// input of datatype dt (nil: none given) and returns its row value. null is
// a missing value, whatever the datatype.
func jsonValue(dt *dtype, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if dt == nil {
		if n, ok := v.(json.Number); ok {
			x, err := strconv.ParseFloat(string(n), 64)
			if err != nil {
				return nil, fmt.Errorf("%s is out of range", n)
			}
			return x, nil
		}
		return v, nil
	}
	switch dt.kind {
	case kindBool:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case kindBytes:
		if s, ok := v.(string); ok {
			return s, nil
		}
	default:
		if n, ok := v.(json.Number); ok {
			return jsonNumber(dt, n)
		}
	}
	return nil, fmt.Errorf("%s does not fit %s (%s)", describeJSON(v), dt.name, dt.rangeText())
}

// describeJSON names a decoded JSON value for errors.
func describeJSON(v any) string {
	switch x := v.(type) {
	case string:
		if len(x) > 40 {
			x = x[:40] + "..."
		}
		return fmt.Sprintf("string %q", x)
	case bool:
		return fmt.Sprintf("bool %v", x)
	case json.Number:
		return "number " + string(x)
	case float64:
		return "number " + strconv.FormatFloat(x, 'g', -1, 64)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%v", v)
}

// v2InputTensor is a REST input tensor as sent; Data is decoded after, with
// the tensor's datatype and shape.
type v2InputTensor struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters"`
	Data       json.RawMessage `json:"data"`
}

// v2RequestOutput is a REST requested output.
type v2RequestOutput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters"`
}

// v2InferRequest is the REST inference request.
type v2InferRequest struct {
	ID         string            `json:"id"`
	Parameters v2Parameters      `json:"parameters"`
	Inputs     []v2InputTensor   `json:"inputs"`
	Outputs    []v2RequestOutput `json:"outputs"`
}

// restTensor decodes and checks one REST input tensor: its data is a JSON
// array, flat (row-major) or nested as the shape; without a shape (as
// earlier Kiln clients send) the data's own nesting is the shape.
func restTensor(in v2InputTensor) (tensorIn, error) {
	dt, err := lookupDtype(in.Name, in.Datatype)
	if err != nil {
		return tensorIn{}, err
	}
	if len(bytes.TrimSpace(in.Data)) == 0 {
		return tensorIn{}, fmt.Errorf("input %q has no data", in.Name)
	}
	dec := json.NewDecoder(bytes.NewReader(in.Data))
	dec.UseNumber()
	var data any
	if err := dec.Decode(&data); err != nil {
		return tensorIn{}, fmt.Errorf("decoding request body: input %q: data: %w", in.Name, err)
	}
	arr, ok := data.([]any)
	if !ok {
		return tensorIn{}, fmt.Errorf("decoding request body: input %q: data is %s, want an array", in.Name, describeJSON(data))
	}
	flat, nested, err := flatten(arr)
	if err != nil {
		return tensorIn{}, fmt.Errorf("input %q: %w", in.Name, err)
	}
	shape := in.Shape
	switch {
	case shape == nil:
		shape = nested
	case len(nested) > 1 && !slices.Equal(nested, shape):
		return tensorIn{}, fmt.Errorf("input %q: data nested as %v does not match the shape %v", in.Name, nested, shape)
	}
	if err := checkCount(in.Name, shape, len(flat)); err != nil {
		return tensorIn{}, err
	}
	for i, v := range flat {
		if flat[i], err = jsonValue(dt, v); err != nil {
			return tensorIn{}, fmt.Errorf("input %q: data[%d]: %w", in.Name, i, err)
		}
	}
	return tensorIn{name: in.Name, dt: dt, shape: shape, values: flat}, nil
}

// flatten returns the elements of nested JSON arrays in row-major order and
// the arrays' shape; the nesting must be regular (every array at one depth
// of one length, elements at the last depth not arrays).
func flatten(arr []any) ([]any, []int64, error) {
	shape := []int64{int64(len(arr))}
	for cur := arr; len(cur) > 0; {
		sub, ok := cur[0].([]any)
		if !ok {
			break
		}
		shape = append(shape, int64(len(sub)))
		cur = sub
	}
	if len(shape) == 1 {
		for _, v := range arr {
			if _, ok := v.([]any); ok {
				return nil, nil, errors.New("data mixes arrays and values at one depth")
			}
		}
		return arr, shape, nil
	}
	flat := []any{}
	var walk func(a []any, d int) error
	walk = func(a []any, d int) error {
		if int64(len(a)) != shape[d] {
			return fmt.Errorf("data is ragged: an array of %d elements where its depth has %d", len(a), shape[d])
		}
		for _, v := range a {
			sub, isArr := v.([]any)
			switch {
			case d == len(shape)-1 && isArr, d < len(shape)-1 && !isArr:
				return errors.New("data is ragged: arrays and values mixed at one depth")
			case isArr:
				if err := walk(sub, d+1); err != nil {
					return err
				}
			default:
				flat = append(flat, v)
			}
		}
		return nil
	}
	if err := walk(arr, 0); err != nil {
		return nil, nil, err
	}
	return flat, shape, nil
}

// inferV2 answers a REST inference request for model name (and version,
// when not empty).
func (s *Server) inferV2(w http.ResponseWriter, r *http.Request, name, version string) {
	start := time.Now()
	t, ierr := s.resolve(name, version)
	if ierr != nil {
		writeError(w, ierr.code, ierr.msg)
		return
	}
	var body v2InferRequest
	if err := decodeBody(r, &body); err != nil {
		bodyError(w, err)
		return
	}
	req := inferRequest{id: body.ID, ids: body.Parameters.PredictionIDs, header: r.Header.Get}
	for _, o := range body.Outputs {
		req.outputs = append(req.outputs, o.Name)
	}
	for _, in := range body.Inputs {
		ti, err := restTensor(in)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		req.inputs = append(req.inputs, ti)
	}
	resp, ierr := s.infer(t, &req, start)
	if ierr != nil {
		writeError(w, ierr.code, ierr.msg)
		return
	}
	setWarnings(w, resp)
	writeJSON(w, http.StatusOK, v2InferResponse{
		ID: body.ID, ModelName: name, ModelVersion: strconv.FormatInt(resp.ModelVersion, 10),
		Parameters: v2Parameters{PredictionIDs: resp.PredictionIDs},
		Outputs:    v2Outputs(resp, req.outputs),
	})
}

// Output tensors a multiclass model has besides OutputName (which then
// holds the index of the most probable class).
const (
	// OutputLabel is the most probable class's name (BYTES, one per row).
	OutputLabel = "label"
	// OutputProbabilities are the class probabilities (FP64, shape [rows,
	// classes], row-major, in the bundle's class order).
	OutputProbabilities = "probabilities"
)

// outputNames lists a model's output tensors.
func outputNames(m *model.Model) []string {
	if m.NumClass() > 0 {
		return []string{OutputName, OutputLabel, OutputProbabilities}
	}
	return []string{OutputName}
}

// v2Outputs builds an answer's output tensors: those requested, or all
// when none are.
func v2Outputs(resp PredictResponse, requested []string) []v2Tensor {
	want := func(name string) bool { return len(requested) == 0 || slices.Contains(requested, name) }
	n := len(resp.Predictions)
	var out []v2Tensor
	if want(OutputName) {
		data := make([]any, n)
		for i, p := range resp.Predictions {
			data[i] = p
		}
		out = append(out, v2Tensor{Name: OutputName, Shape: []int{n}, Datatype: "FP64", Data: data})
	}
	if resp.Classes == nil {
		return out
	}
	if want(OutputLabel) {
		data := make([]any, n)
		for i, l := range resp.Labels {
			data[i] = l
		}
		out = append(out, v2Tensor{Name: OutputLabel, Shape: []int{n}, Datatype: "BYTES", Data: data})
	}
	if want(OutputProbabilities) {
		k := len(resp.Classes)
		data := make([]any, 0, n*k)
		for _, row := range resp.Probabilities {
			for _, p := range row {
				data = append(data, p)
			}
		}
		out = append(out, v2Tensor{Name: OutputProbabilities, Shape: []int{n, k}, Datatype: "FP64", Data: data})
	}
	return out
}

// v2MetadataTensor describes one input or output in model metadata.
type v2MetadataTensor struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// v2ModelMetadata is the protocol's model metadata.
type v2ModelMetadata struct {
	Name string `json:"name"`
	// Versions are the deployed versions (stable, then canary), which
	// /versions/{v} routes accept.
	Versions []string `json:"versions"`
	// Platform is "kiln_" and the bundle's estimator type, e.g.
	// "kiln_logistic" (the protocol's "<project>_<format>").
	Platform string             `json:"platform"`
	Inputs   []v2MetadataTensor `json:"inputs"`
	Outputs  []v2MetadataTensor `json:"outputs"`
}

// v2ServerMetadata is the protocol's server metadata.
type v2ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// modelMetadata describes the model t resolves to: the inputs of the
// version asked for, or of the stable version.
func modelMetadata(t target) v2ModelMetadata {
	md := v2ModelMetadata{
		Name: t.name, Versions: deployedVersions(t.dep), Platform: "kiln_" + t.mdl.Manifest.Estimator.Type,
		Inputs:  []v2MetadataTensor{},
		Outputs: []v2MetadataTensor{{Name: OutputName, Datatype: "FP64", Shape: []int64{-1}}},
	}
	if k := t.mdl.NumClass(); k > 0 {
		md.Outputs = append(md.Outputs,
			v2MetadataTensor{Name: OutputLabel, Datatype: "BYTES", Shape: []int64{-1}},
			v2MetadataTensor{Name: OutputProbabilities, Datatype: "FP64", Shape: []int64{-1, int64(k)}})
	}
	for _, f := range t.mdl.Manifest.Inputs {
		md.Inputs = append(md.Inputs, v2MetadataTensor{Name: f.Name, Datatype: datatypeOf(f.Type), Shape: []int64{-1}})
	}
	return md
}

// serverReady reports whether every served model has a deployment, and
// the first that has none.
func (s *Server) serverReady() (bool, string) {
	for _, n := range s.names() {
		if m := s.model(n); m != nil && m.cur.Load() == nil {
			return false, n
		}
	}
	return true, ""
}

func (s *Server) handleServerLive(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]bool{"live": true})
}

func (s *Server) handleServerReady(w http.ResponseWriter, r *http.Request) {
	if ok, name := s.serverReady(); !ok {
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("model %q is not ready: it has no deployment", name))
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
}

func (s *Server) handleServerMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, v2ServerMetadata{Name: ServerName, Version: serverVersion(), Extensions: []string{}})
}

func (s *Server) handleModelMetadata(w http.ResponseWriter, r *http.Request) {
	t, err := s.resolve(r.PathValue("name"), r.PathValue("version"))
	if err != nil {
		writeError(w, err.code, err.msg)
		return
	}
	writeJSON(w, http.StatusOK, modelMetadata(t))
}

func (s *Server) handleModelReady(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.resolve(name, r.PathValue("version")); err != nil {
		writeError(w, err.code, err.msg)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "ready": true})
}

// float32ToHalf rounds f to the nearest IEEE 754 half-precision value
// (ties to even), returning its bits.
func float32ToHalf(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23&0xff) - 127 + 15
	mant := b & 0x7fffff
	switch {
	case b&0x7fffffff == 0:
		return sign
	case exp >= 0x1f: // overflow (callers pass finite values within range)
		return sign | 0x7c00
	case exp <= 0: // subnormal half
		if exp < -10 {
			return sign
		}
		mant |= 0x800000
		shift := uint32(14 - exp)
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, as rounding should
	}
	return sign | uint16(h)
}

// halfToFloat32 converts half-precision bits to a float32 (exactly).
func halfToFloat32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp == 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		f := float32(mant) / (1 << 24)
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
}

// float32ToBF16 rounds f to the nearest bfloat16 (ties to even).
func float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// bf16ToFloat32 converts bfloat16 bits to a float32 (exactly).
func bf16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
