//go:build !kilnedge

package serving

// The Open Inference Protocol v2 over gRPC: inference.GRPCInferenceService
// (inferencepb, generated from KServe's grpc_predict_v2.proto) over the
// same models, checks and predict path as the REST routes.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcmd "google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/kiln-ml/kiln/internal/serving/inferencepb"
)

// PredictionIDsParameter is the inference parameter that carries
// prediction IDs: on REST an array of strings, on gRPC (whose parameters
// are scalars) a string_param holding a JSON array of strings.
const PredictionIDsParameter = "prediction_ids"

// GRPCServer returns a gRPC server with the Open Inference Protocol v2
// service (RegisterGRPC) and gRPC server reflection registered. It accepts
// messages up to the REST routes' body limit (32 MiB); opts come after
// that and may override it. Serve it on its own listener; GracefulStop it
// before Close, as the HTTP server is shut down before Close.
func (s *Server) GRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	g := grpc.NewServer(append([]grpc.ServerOption{grpc.MaxRecvMsgSize(maxBodyBytes)}, opts...)...)
	s.RegisterGRPC(g)
	reflection.Register(g)
	return g
}

// RegisterGRPC registers the Open Inference Protocol v2 service
// (inference.GRPCInferenceService) on g.
func (s *Server) RegisterGRPC(g grpc.ServiceRegistrar) {
	inferencepb.RegisterGRPCInferenceServiceServer(g, grpcService{s: s})
}

// grpcService implements inference.GRPCInferenceService.
type grpcService struct {
	inferencepb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

// grpcError converts a refused request's HTTP status to a gRPC status:
// 404 NotFound, 503 Unavailable, 400 and 413 InvalidArgument.
func grpcError(e *inferError) error {
	c := codes.Internal
	switch e.code {
	case http.StatusNotFound:
		c = codes.NotFound
	case http.StatusServiceUnavailable:
		c = codes.Unavailable
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		c = codes.InvalidArgument
	}
	return status.Error(c, e.msg)
}

func (g grpcService) ServerLive(context.Context, *inferencepb.ServerLiveRequest) (*inferencepb.ServerLiveResponse, error) {
	return &inferencepb.ServerLiveResponse{Live: true}, nil
}

func (g grpcService) ServerReady(context.Context, *inferencepb.ServerReadyRequest) (*inferencepb.ServerReadyResponse, error) {
	ok, _ := g.s.serverReady()
	return &inferencepb.ServerReadyResponse{Ready: ok}, nil
}

// ModelReady answers ready for a deployed model (and version), not ready
// for a model without a deployment, and NotFound for an unknown model or a
// version that is not deployed.
func (g grpcService) ModelReady(_ context.Context, req *inferencepb.ModelReadyRequest) (*inferencepb.ModelReadyResponse, error) {
	_, err := g.s.resolve(req.GetName(), req.GetVersion())
	switch {
	case err == nil:
		return &inferencepb.ModelReadyResponse{Ready: true}, nil
	case err.code == http.StatusServiceUnavailable:
		return &inferencepb.ModelReadyResponse{Ready: false}, nil
	}
	return nil, grpcError(err)
}

func (g grpcService) ServerMetadata(context.Context, *inferencepb.ServerMetadataRequest) (*inferencepb.ServerMetadataResponse, error) {
	return &inferencepb.ServerMetadataResponse{Name: ServerName, Version: serverVersion(), Extensions: []string{}}, nil
}

func (g grpcService) ModelMetadata(_ context.Context, req *inferencepb.ModelMetadataRequest) (*inferencepb.ModelMetadataResponse, error) {
	t, err := g.s.resolve(req.GetName(), req.GetVersion())
	if err != nil {
		return nil, grpcError(err)
	}
	md := modelMetadata(t)
	out := &inferencepb.ModelMetadataResponse{Name: md.Name, Versions: md.Versions, Platform: md.Platform}
	for _, in := range md.Inputs {
		out.Inputs = append(out.Inputs, &inferencepb.ModelMetadataResponse_TensorMetadata{Name: in.Name, Datatype: in.Datatype, Shape: in.Shape})
	}
	for _, o := range md.Outputs {
		out.Outputs = append(out.Outputs, &inferencepb.ModelMetadataResponse_TensorMetadata{Name: o.Name, Datatype: o.Datatype, Shape: o.Shape})
	}
	return out, nil
}

// ModelInfer predicts the request's rows. Inputs carry their values in
// contents (the typed field of their datatype) or, for every input at
// once, in raw_input_contents (little-endian; BYTES elements each a 4-byte
// length and the bytes; FP16 and BF16 only this way). A NaN float is a
// missing value (gRPC has no null). The answer's one output, "prediction"
// (FP64, shape [n]), is in raw_output_contents when the request used
// raw_input_contents, else in contents.fp64_contents; parameters
// "prediction_ids" holds the prediction IDs.
func (g grpcService) ModelInfer(ctx context.Context, pr *inferencepb.ModelInferRequest) (*inferencepb.ModelInferResponse, error) {
	start := time.Now()
	t, ierr := g.s.resolve(pr.GetModelName(), pr.GetModelVersion())
	if ierr != nil {
		return nil, grpcError(ierr)
	}
	req := inferRequest{id: pr.GetId(), header: metadataHeader(ctx)}
	if p, ok := pr.GetParameters()[PredictionIDsParameter]; ok {
		js, isStr := p.GetParameterChoice().(*inferencepb.InferParameter_StringParam)
		if !isStr || json.Unmarshal([]byte(js.StringParam), &req.ids) != nil || req.ids == nil {
			return nil, status.Error(codes.InvalidArgument, `parameters.prediction_ids: want a string_param holding a JSON array of strings, e.g. ["a","b"]`)
		}
	}
	for _, o := range pr.GetOutputs() {
		req.outputs = append(req.outputs, o.GetName())
	}
	raw := pr.GetRawInputContents()
	if len(raw) > 0 && len(raw) != len(pr.GetInputs()) {
		return nil, status.Errorf(codes.InvalidArgument, "raw_input_contents has %d entries for %d inputs: give one per input, in the inputs' order", len(raw), len(pr.GetInputs()))
	}
	for i, in := range pr.GetInputs() {
		var ti tensorIn
		var err error
		if len(raw) > 0 {
			if hasContents(in.GetContents()) {
				return nil, status.Errorf(codes.InvalidArgument, "input %q has contents but the request has raw_input_contents: use one or the other", in.GetName())
			}
			ti, err = rawTensor(in, raw[i])
		} else {
			ti, err = typedTensor(in)
		}
		if err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
		req.inputs = append(req.inputs, ti)
	}
	resp, ierr := g.s.infer(t, &req, start)
	if ierr != nil {
		return nil, grpcError(ierr)
	}
	ids, _ := json.Marshal(resp.PredictionIDs)
	out := &inferencepb.ModelInferResponse_InferOutputTensor{Name: OutputName, Datatype: "FP64", Shape: []int64{int64(len(resp.Predictions))}}
	answer := &inferencepb.ModelInferResponse{
		ModelName: pr.GetModelName(), ModelVersion: strconv.FormatInt(resp.ModelVersion, 10), Id: pr.GetId(),
		Parameters: map[string]*inferencepb.InferParameter{
			PredictionIDsParameter: {ParameterChoice: &inferencepb.InferParameter_StringParam{StringParam: string(ids)}},
		},
		Outputs: []*inferencepb.ModelInferResponse_InferOutputTensor{out},
	}
	if len(raw) > 0 {
		answer.RawOutputContents = [][]byte{rawFloat64s(resp.Predictions)}
	} else {
		out.Contents = &inferencepb.InferTensorContents{Fp64Contents: resp.Predictions}
	}
	if resp.Classes != nil {
		grpcClassOutputs(answer, resp, len(raw) > 0)
	}
	if len(req.outputs) > 0 {
		kept := answer.Outputs[:0]
		var keptRaw [][]byte
		for i, o := range answer.Outputs {
			if slices.Contains(req.outputs, o.Name) {
				kept = append(kept, o)
				if len(raw) > 0 {
					keptRaw = append(keptRaw, answer.RawOutputContents[i])
				}
			}
		}
		answer.Outputs, answer.RawOutputContents = kept, keptRaw
	}
	return answer, nil
}

// grpcClassOutputs adds a multiclass answer's label (BYTES) and
// probabilities (FP64, [rows, classes]) tensors, as raw contents (a BYTES
// element is its 4-byte little-endian length, then its bytes) or typed.
func grpcClassOutputs(answer *inferencepb.ModelInferResponse, resp PredictResponse, raw bool) {
	n, k := len(resp.Predictions), len(resp.Classes)
	probs := make([]float64, 0, n*k)
	for _, row := range resp.Probabilities {
		probs = append(probs, row...)
	}
	label := &inferencepb.ModelInferResponse_InferOutputTensor{Name: OutputLabel, Datatype: "BYTES", Shape: []int64{int64(n)}}
	proba := &inferencepb.ModelInferResponse_InferOutputTensor{Name: OutputProbabilities, Datatype: "FP64", Shape: []int64{int64(n), int64(k)}}
	answer.Outputs = append(answer.Outputs, label, proba)
	if raw {
		var b []byte
		for _, l := range resp.Labels {
			b = binary.LittleEndian.AppendUint32(b, uint32(len(l)))
			b = append(b, l...)
		}
		answer.RawOutputContents = append(answer.RawOutputContents, b, rawFloat64s(probs))
		return
	}
	labels := make([][]byte, n)
	for i, l := range resp.Labels {
		labels[i] = []byte(l)
	}
	label.Contents = &inferencepb.InferTensorContents{BytesContents: labels}
	proba.Contents = &inferencepb.InferTensorContents{Fp64Contents: probs}
}

// rawFloat64s encodes vals as little-endian IEEE 754 doubles.
func rawFloat64s(vals []float64) []byte {
	b := make([]byte, 8*len(vals))
	for i, p := range vals {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(p))
	}
	return b
}

// hasContents reports whether c holds any values.
func hasContents(c *inferencepb.InferTensorContents) bool {
	return c != nil && (len(c.BoolContents) > 0 || len(c.IntContents) > 0 || len(c.Int64Contents) > 0 ||
		len(c.UintContents) > 0 || len(c.Uint64Contents) > 0 || len(c.Fp32Contents) > 0 ||
		len(c.Fp64Contents) > 0 || len(c.BytesContents) > 0)
}

// grpcDtype returns a gRPC input's datatype, which is required.
func grpcDtype(in *inferencepb.ModelInferRequest_InferInputTensor) (*dtype, error) {
	if in.GetDatatype() == "" {
		return nil, fmt.Errorf("input %q has no datatype (want %s)", in.GetName(), dtypeNames)
	}
	return lookupDtype(in.GetName(), in.GetDatatype())
}

// typedTensor checks an input whose values are in contents: the field of
// its datatype, no other.
func typedTensor(in *inferencepb.ModelInferRequest_InferInputTensor) (tensorIn, error) {
	name := in.GetName()
	dt, err := grpcDtype(in)
	if err != nil {
		return tensorIn{}, err
	}
	c := in.GetContents()
	if c == nil {
		c = &inferencepb.InferTensorContents{}
	}
	field, count := "", 0
	var values []any
	fail := func(i int, err error) (tensorIn, error) {
		return tensorIn{}, fmt.Errorf("input %q: %s[%d]: %w", name, field, i, err)
	}
	switch dt.name {
	case "BOOL":
		field, count = "bool_contents", len(c.BoolContents)
		for _, b := range c.BoolContents {
			values = append(values, b)
		}
	case "INT8", "INT16", "INT32":
		field, count = "int_contents", len(c.IntContents)
		for i, x := range c.IntContents {
			v, err := numberValue(dt, float64(x), strconv.FormatInt(int64(x), 10))
			if err != nil {
				return fail(i, err)
			}
			values = append(values, v)
		}
	case "INT64":
		field, count = "int64_contents", len(c.Int64Contents)
		for _, x := range c.Int64Contents {
			values = append(values, float64(x))
		}
	case "UINT8", "UINT16", "UINT32":
		field, count = "uint_contents", len(c.UintContents)
		for i, x := range c.UintContents {
			v, err := numberValue(dt, float64(x), strconv.FormatUint(uint64(x), 10))
			if err != nil {
				return fail(i, err)
			}
			values = append(values, v)
		}
	case "UINT64":
		field, count = "uint64_contents", len(c.Uint64Contents)
		for _, x := range c.Uint64Contents {
			values = append(values, float64(x))
		}
	case "FP32":
		field, count = "fp32_contents", len(c.Fp32Contents)
		for i, x := range c.Fp32Contents {
			v, err := floatValue(dt, float64(x))
			if err != nil {
				return fail(i, err)
			}
			values = append(values, v)
		}
	case "FP64":
		field, count = "fp64_contents", len(c.Fp64Contents)
		for i, x := range c.Fp64Contents {
			v, err := floatValue(dt, x)
			if err != nil {
				return fail(i, err)
			}
			values = append(values, v)
		}
	case "BYTES":
		field, count = "bytes_contents", len(c.BytesContents)
		for i, b := range c.BytesContents {
			if !utf8.Valid(b) {
				return fail(i, fmt.Errorf("is not UTF-8 text"))
			}
			values = append(values, string(b))
		}
	default: // FP16, BF16
		return tensorIn{}, fmt.Errorf("input %q is %s, which has no contents field: send it in raw_input_contents", name, dt.name)
	}
	if other := contentsFields(c); len(other) > 1 || (len(other) == 1 && other[0] != field) {
		return tensorIn{}, fmt.Errorf("input %q is %s, whose values go in contents.%s, but contents has %v", name, dt.name, field, other)
	}
	if err := checkCount(name, in.GetShape(), count); err != nil {
		return tensorIn{}, err
	}
	if values == nil {
		values = []any{}
	}
	return tensorIn{name: name, dt: dt, shape: in.GetShape(), values: values}, nil
}

// contentsFields names the non-empty fields of c.
func contentsFields(c *inferencepb.InferTensorContents) []string {
	var out []string
	for _, f := range []struct {
		name string
		n    int
	}{
		{"bool_contents", len(c.BoolContents)}, {"int_contents", len(c.IntContents)}, {"int64_contents", len(c.Int64Contents)},
		{"uint_contents", len(c.UintContents)}, {"uint64_contents", len(c.Uint64Contents)}, {"fp32_contents", len(c.Fp32Contents)},
		{"fp64_contents", len(c.Fp64Contents)}, {"bytes_contents", len(c.BytesContents)},
	} {
		if f.n > 0 {
			out = append(out, f.name)
		}
	}
	return out
}

// floatValue checks a floating-point element: NaN is a missing value (nil),
// infinities are refused.
func floatValue(dt *dtype, x float64) (any, error) {
	if math.IsNaN(x) {
		return nil, nil
	}
	v, err := numberValue(dt, x, strconv.FormatFloat(x, 'g', -1, 64))
	if err != nil {
		return nil, err
	}
	return v, nil
}

// rawTensor checks an input whose values are raw bytes: little-endian
// elements of the datatype's size, or for BYTES a 4-byte little-endian
// length before each element.
func rawTensor(in *inferencepb.ModelInferRequest_InferInputTensor, raw []byte) (tensorIn, error) {
	name := in.GetName()
	dt, err := grpcDtype(in)
	if err != nil {
		return tensorIn{}, err
	}
	var values []any
	fail := func(i int, err error) (tensorIn, error) {
		return tensorIn{}, fmt.Errorf("input %q: raw element %d: %w", name, i, err)
	}
	if dt.kind == kindBytes {
		for i := 0; len(raw) > 0; i++ {
			if len(raw) < 4 {
				return tensorIn{}, fmt.Errorf("input %q: raw BYTES element %d: %d bytes left, want a 4-byte length", name, i, len(raw))
			}
			n := binary.LittleEndian.Uint32(raw)
			raw = raw[4:]
			if uint64(n) > uint64(len(raw)) {
				return tensorIn{}, fmt.Errorf("input %q: raw BYTES element %d has length %d but %d bytes are left", name, i, n, len(raw))
			}
			if !utf8.Valid(raw[:n]) {
				return fail(i, fmt.Errorf("is not UTF-8 text"))
			}
			values = append(values, string(raw[:n]))
			raw = raw[n:]
		}
	} else {
		if len(raw)%dt.size != 0 {
			return tensorIn{}, fmt.Errorf("input %q: raw contents of %d bytes is not a whole number of %s elements (%d bytes each)", name, len(raw), dt.name, dt.size)
		}
		values = make([]any, 0, len(raw)/dt.size)
		for i := 0; len(raw) > 0; i++ {
			el := raw[:dt.size]
			raw = raw[dt.size:]
			var v any
			var err error
			switch dt.name {
			case "BOOL":
				if el[0] > 1 {
					return fail(i, fmt.Errorf("byte %d is not a BOOL (0 or 1)", el[0]))
				}
				v = el[0] == 1
			case "INT8":
				v = float64(int8(el[0]))
			case "INT16":
				v = float64(int16(binary.LittleEndian.Uint16(el)))
			case "INT32":
				v = float64(int32(binary.LittleEndian.Uint32(el)))
			case "INT64":
				v = float64(int64(binary.LittleEndian.Uint64(el)))
			case "UINT8":
				v = float64(el[0])
			case "UINT16":
				v = float64(binary.LittleEndian.Uint16(el))
			case "UINT32":
				v = float64(binary.LittleEndian.Uint32(el))
			case "UINT64":
				v = float64(binary.LittleEndian.Uint64(el))
			case "FP16":
				v, err = floatValue(dt, float64(halfToFloat32(binary.LittleEndian.Uint16(el))))
			case "BF16":
				v, err = floatValue(dt, float64(bf16ToFloat32(binary.LittleEndian.Uint16(el))))
			case "FP32":
				v, err = floatValue(dt, float64(math.Float32frombits(binary.LittleEndian.Uint32(el))))
			case "FP64":
				v, err = floatValue(dt, math.Float64frombits(binary.LittleEndian.Uint64(el)))
			}
			if err != nil {
				return fail(i, err)
			}
			values = append(values, v)
		}
	}
	if err := checkCount(name, in.GetShape(), len(values)); err != nil {
		return tensorIn{}, err
	}
	if values == nil {
		values = []any{}
	}
	return tensorIn{name: name, dt: dt, shape: in.GetShape(), values: values}, nil
}

// metadataHeader reads a gRPC request's metadata as HTTP headers are read
// (the first value of a key, matched case-insensitively).
func metadataHeader(ctx context.Context) func(string) string {
	md, ok := grpcmd.FromIncomingContext(ctx)
	if !ok {
		return nil
	}
	return func(name string) string {
		if v := md.Get(name); len(v) > 0 {
			return v[0]
		}
		return ""
	}
}
