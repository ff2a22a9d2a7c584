// Command trainer is Kiln's reference trainer: a static binary run inside a
// container (or as a local process) by the train step.
//
// Contract. Inputs are read from $KILN_IN (default /kiln/in):
//
//   - train.parquet, valid.parquet: float64 columns, the transformed features
//     plus the target; valid may have zero rows. Features may be missing
//     (null or NaN) only for algorithm gbdt.
//   - schema.json: {"features": [...], "target": "malignant", "task": "binary"}
//     (task "binary" or "regression").
//   - params.json: {"algorithm": "logistic", "seed": 42, "params": {...}}
//
// Outputs are written to $KILN_OUT (default /kiln/out), each to a temporary
// name and renamed into place, model.json last:
//
//   - metrics.json: {"train": {"logloss": ..., "auc": ...}, "valid": {...},
//     "iterations": n, "best_iteration": k, "trainer_version": "..."};
//     regression tasks get rmse, mae and r2 instead of logloss and auc; a
//     metric that is undefined (no rows, or one class for AUC) is left out.
//   - model.json: {"type":"logistic","features":[...],"weights":[...],"intercept":...}
//     for logistic, {"type":"linear",...} for ridge, and XGBoost's JSON
//     model format for gbdt.
//
// Progress goes to stdout as lines `KILN_PROGRESS {"pct": 40, "msg": "iteration 4/10"}`;
// everything else goes to stderr. Exit status 0 is success, 2 bad input
// (invalid files, parameters or data: retrying cannot help) and 1 any other
// failure. `trainer --version` prints the version.
//
// Algorithms (docs/containers.md lists their parameters):
//
//   - logistic (binary; multiclass: multinomial, softmax): minimises mean
//     log-loss + l2/2·‖w‖² (the intercepts are not penalised) by Newton's
//     method with a Cholesky solve and a backtracking line search: exact and
//     deterministic. Params: l2 (default 1e-4), max_iter (default 100), tol
//     (default 1e-8, on the gradient's largest component). The seed is
//     unused.
//   - gbdt (binary, multiclass as multi:softprob, or regression): histogram
//     gradient-boosted trees as
//     XGBoost's hist method (internal/gbdt), with XGBoost's parameter names
//     and defaults, missing values and early stopping on the validation
//     rows; the seed drives subsample and colsample_bytree.
//   - ridge (regression): least squares with an L2 penalty l2 (default 1)
//     on the standardized coefficients, in closed form.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is the trainer version; release builds set it with
// -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Default directories inside the container.
const (
	defaultIn  = "/kiln/in"
	defaultOut = "/kiln/out"
)

// Exit statuses.
const (
	exitOK       = 0
	exitFailure  = 1
	exitBadInput = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// cli runs the command line: args are the arguments after the program name
// and getenv reads KILN_IN and KILN_OUT. It returns the exit status.
func cli(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 1 && (args[0] == "--version" || args[0] == "-version"):
		fmt.Fprintln(stdout, version)
		return exitOK
	case len(args) > 0:
		fmt.Fprintf(stderr, "trainer: unexpected arguments %q\nusage: trainer [--version]  (inputs in $KILN_IN, outputs to $KILN_OUT)\n", args)
		return exitBadInput
	}
	in, out := getenv("KILN_IN"), getenv("KILN_OUT")
	if in == "" {
		in = defaultIn
	}
	if out == "" {
		out = defaultOut
	}
	if err := run(ctx, in, out, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "trainer: %v\n", err)
		return exitCode(err)
	}
	return exitOK
}

// inputError marks an error caused by the inputs (files, parameters, data):
// the run exits with status 2 and should not be retried.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// badInput returns an inputError with a formatted message.
func badInput(format string, args ...any) error {
	return &inputError{fmt.Errorf(format, args...)}
}

// exitCode maps an error returned by run to an exit status.
func exitCode(err error) int {
	var ie *inputError
	if errors.As(err, &ie) {
		return exitBadInput
	}
	return exitFailure
}
