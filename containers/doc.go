// Package containers runs Kiln training steps in sandboxed containers.
//
// # The training-container contract
//
// A trainer is a program packaged as a container image. Kiln runs it with:
//
//   - its inputs mounted read-only at /kiln/in ([InDir]);
//   - an output directory mounted read-write at /kiln/out ([OutDir]), where
//     the trainer writes its model file and metrics.json;
//   - stderr treated as the log;
//   - stdout lines of the form
//     KILN_PROGRESS {"pct": 40, "msg": "tree 40/100"}
//     treated as progress reports (Kiln turns them into Temporal heartbeats);
//     other stdout lines are logged;
//   - exit code 0 meaning success; anything else is a failure reported as a
//     [*RunError].
//
// Trainers should read the environment variables KILN_IN and KILN_OUT
// ([EnvIn], [EnvOut]) and fall back to /kiln/in and /kiln/out when they are
// unset, so that the same binary works under both runtimes below. Images
// should declare the trainer as their ENTRYPOINT: [RunSpec.Command] then
// supplies the arguments, which is also how the process runtime uses it.
//
// # Runtimes
//
// [Docker] runs the image on a Docker engine inside a sandbox: no network,
// user 65534:65534, read-only root filesystem (no tmpfs: /tmp is read-only
// too; HOME and TMPDIR point at [ScratchDir] under /kiln/out), all
// capabilities dropped, no-new-privileges, memory (without swap), CPU and
// pids limits, and GPUs only when asked ([RunSpec.GPUs]). An out-of-memory
// kill or a timeout is a [*RunError] matching [ErrOutOfMemory] or
// [ErrTimedOut]. The container is always removed when Run returns, including
// after cancellation, timeout or a failure; [Docker.Cleanup] removes
// containers left behind by a worker that was killed mid-run.
//
// [Process] is the fallback when no Docker engine is reachable: it runs a
// local build of the trainer binary as a child process under the same
// contract, with KILN_IN and KILN_OUT pointing at the host directories. It
// provides no sandbox and does not enforce resource limits.
//
// [Detect] picks Docker when the engine answers and Process otherwise.
//
// # Images
//
// No image can be pulled: Kiln images are built locally from static binaries
// (FROM scratch) with [BuildImage], which uses the engine's legacy builder.
// [ImageID] resolves a local reference to its image ID; [Runtime.Identify]
// gives the same identity through either runtime (the image ID, or the hash
// of the process runtime's binary), so results can be cached per trainer.
// [ImportImage] creates an image from a root file system tarball (how the
// Python/XGBoost trainer's Debian base is made offline), and
// [Runtime.Labels] reads an image's labels, such as [LabelInputs], through
// which an image asks for CSV copies of its Parquet inputs.
package containers
