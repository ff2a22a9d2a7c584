// Package inferencepb is the Open Inference Protocol v2 (KServe's "V2
// inference protocol") gRPC service, inference.GRPCInferenceService,
// generated from grpc_predict_v2.proto.
//
// grpc_predict_v2.proto is KServe's published definition, copied unchanged
// from github.com/kserve/kserve docs/predict-api/v2/grpc_predict_v2.proto
// (commit aaac4e294dae2c7b1aa1886447793f3aa1c30912). It is Copyright 2020
// kubeflow.org and licensed under the Apache License, Version 2.0
// (http://www.apache.org/licenses/LICENSE-2.0), as its header says.
//
// The *.pb.go files are generated: run `make proto` (protoc from Debian's
// protobuf-compiler, protoc-gen-go and protoc-gen-go-grpc at the versions
// the Makefile names) to regenerate them. The proto has no go_package
// option; the Makefile maps it to this package.
package inferencepb
