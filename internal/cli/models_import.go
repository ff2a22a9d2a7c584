package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/artifact"
	"github.com/kiln-ml/kiln/internal/dataset"
	"github.com/kiln-ml/kiln/internal/model"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/transform"
	"github.com/kiln-ml/kiln/internal/xgbjson"
	"github.com/kiln-ml/kiln/pipelines"
)

// Estimator types kiln models import reads.
const (
	importXGBoost  = "xgboost"
	importLogistic = "logistic"
	importLinear   = "linear"
	// importMultinomial is Kiln's multinomial (softmax) logistic JSON.
	importMultinomial = "multinomial"
)

// importedModel is a model file read for import: its bundle manifest
// fields.
type importedModel struct {
	typ      string // estimator type of the bundle
	task     string
	output   string
	features []string
	classes  int // a multiclass model's number of classes, else 0
}

// readImported reads an estimator file of the given type ("" to detect it
// from the JSON: XGBoost's save_model has a "learner", Kiln's linear
// formats a "type").
func readImported(data []byte, typ string, inputs []string) (importedModel, error) {
	var probe struct {
		Learner json.RawMessage `json:"learner"`
		Type    string          `json:"type"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return importedModel{}, fmt.Errorf("not a JSON model file: %w", err)
	}
	if typ == "" {
		switch {
		case probe.Learner != nil:
			typ = importXGBoost
		case probe.Type == importLogistic || probe.Type == importLinear || probe.Type == importMultinomial:
			typ = probe.Type
		default:
			return importedModel{}, errors.New(`cannot tell the model's type: give --type xgboost, logistic, multinomial or linear`)
		}
	}
	var m importedModel
	switch typ {
	case importXGBoost:
		b, err := xgbjson.Parse(data)
		if err != nil {
			return m, fmt.Errorf("reading the XGBoost model: %w", err)
		}
		m.typ = model.EstimatorXGBoost
		m.task, m.output = model.TaskBinary, model.OutputProbability
		switch b.Objective {
		case xgbjson.ObjectiveSquaredError:
			m.task, m.output = model.TaskRegression, model.OutputValue
		case xgbjson.ObjectiveMultiSoftprob, xgbjson.ObjectiveMultiSoftmax:
			m.task, m.output, m.classes = model.TaskMulticlass, model.OutputProbabilities, b.NumClass
		}
		m.features = b.FeatureNames
		if len(inputs) > 0 {
			if len(inputs) != b.NumFeature {
				return m, fmt.Errorf("--inputs names %d columns but the model has %d features", len(inputs), b.NumFeature)
			}
			m.features = inputs
		}
		if len(m.features) == 0 {
			return m, fmt.Errorf("the model file names no features (trained from arrays): name its %d input columns in order with --inputs", b.NumFeature)
		}
	case importLogistic, importLinear, importMultinomial:
		var lin struct {
			Type       string    `json:"type"`
			Features   []string  `json:"features"`
			Intercepts []float64 `json:"intercepts"`
		}
		if err := json.Unmarshal(data, &lin); err != nil {
			return m, fmt.Errorf("reading the %s model: %w", typ, err)
		}
		if lin.Type != typ {
			return m, fmt.Errorf(`the file's "type" is %q, not %q (Kiln's linear formats: docs/models.md)`, lin.Type, typ)
		}
		m.features = lin.Features
		if len(inputs) > 0 {
			return m, errors.New("--inputs is for XGBoost models: a logistic or linear file names its features")
		}
		switch typ {
		case importLinear:
			m.typ, m.task, m.output = model.EstimatorLinear, model.TaskRegression, model.OutputValue
		case importMultinomial:
			m.typ, m.task, m.output, m.classes = model.EstimatorMultinomial, model.TaskMulticlass, model.OutputProbabilities, len(lin.Intercepts)
		default:
			m.typ, m.task, m.output = model.EstimatorLogistic, model.TaskBinary, model.OutputProbability
		}
	default:
		return m, fmt.Errorf("--type %q: want xgboost, logistic, multinomial or linear", typ)
	}
	seen := map[string]bool{}
	for _, f := range m.features {
		if f == "" || seen[f] {
			return m, fmt.Errorf("feature names must be distinct and not empty, found %q", f)
		}
		seen[f] = true
	}
	return m, nil
}

func newModelsImportCmd(cfg *Config) *cobra.Command {
	var (
		file, typ, target, reason    string
		specFile, dataPath, stepName string
		inputs, classList            []string
	)
	cmd := &cobra.Command{
		Use:   "import NAME --estimator FILE --reason REASON",
		Short: "Register a model trained elsewhere (XGBoost save_model JSON, or Kiln's logistic/multinomial/linear JSON)",
		Long: `Register a model trained outside Kiln, as the next version of NAME, so it can be
scored, served, canaried, monitored and compared like any other.

--estimator is XGBoost's save_model JSON (binary:logistic,
reg:squarederror, multi:softprob or multi:softmax) or Kiln's logistic,
multinomial or linear JSON (docs/models.md); --type says which when the file
does not. A multi-class model's classes are named with --classes (default:
with --spec, the classes of the dataset's target; else 0, 1, ...). The bundle's recipe is the identity over
the model's input columns: their names come from the XGBoost file's
feature_names, or --inputs (in order) for a model trained from arrays; each
is read as a number. The version's lineage says "imported", by whom and why,
the file's path and sha256.

With --spec and --dataset the recipe is instead the spec's preprocess step
(--step names it when the spec has several), fitted by Kiln on the whole
DATA (CSV, JSON Lines or Parquet): the model must read exactly the features
that recipe produces, in order (an XGBoost file without feature names gets
them). The version's lineage then also names the spec and the data.`,
		Example: `  kiln models import churn-xgb --estimator model.json --reason "trained in the notebook, week 49"
  kiln models import churn-xgb --estimator model.json --inputs tenure,monthly_charges,support_calls --reason "baseline"
  kiln models import price --estimator ridge.json --type linear --reason "from scikit-learn" --json
  kiln models import wine-xgb --estimator wine.json --classes class_0,class_1,class_2 --reason "multi:softprob from the notebook"
  kiln models import churn-nb --estimator model.json --spec pipelines/churn.yaml --dataset data/churn.csv --reason "notebook, Kiln's recipe"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, name := cmd.Context(), args[0]
			switch {
			case file == "":
				return &exitError{code: 2, err: errors.New("--estimator FILE is required: the model file to import")}
			case strings.TrimSpace(reason) == "":
				return &exitError{code: 2, err: errors.New(`--reason is required: say where the model comes from (it is kept in its lineage)`)}
			}
			data, err := os.ReadFile(file)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--estimator: %w", err)}
			}
			var cols []string
			for _, s := range inputs {
				for _, c := range strings.Split(s, ",") {
					if c = strings.TrimSpace(c); c != "" {
						cols = append(cols, c)
					}
				}
			}
			var rec *importRecipe
			if specFile != "" || dataPath != "" {
				if specFile == "" || dataPath == "" {
					return &exitError{code: 2, err: errors.New("--spec and --dataset go together: the spec's preprocess recipe is fitted on the dataset")}
				}
				if len(cols) > 0 {
					return &exitError{code: 2, err: errors.New("--inputs and --spec exclude each other: with a spec, the model reads the features its recipe produces")}
				}
				if rec, err = fitImportRecipe(cmd, cfg, specFile, dataPath, stepName); err != nil {
					return err
				}
				if (typ == importXGBoost || typ == "") && unnamedXGBoost(data) {
					cols = rec.fitted.Features // a file without feature names reads the recipe's
				}
			}
			im, err := readImported(data, typ, cols)
			if err != nil && rec != nil && im.typ == model.EstimatorXGBoost {
				return &exitError{code: 2, err: fmt.Errorf("%s: %w (the recipe of %s produces %d features)", file, err, specFile, len(rec.fitted.Features))}
			}
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("%s: %w", file, err)}
			}
			if rec != nil {
				if err := rec.check(im); err != nil {
					return &exitError{code: 2, err: fmt.Errorf("%s: %w", file, err)}
				}
			}
			classes, err := importClasses(im, classList, rec)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("%s: %w", file, err)}
			}
			sum := sha256.Sum256(data)
			fileHash := hex.EncodeToString(sum[:])
			abs, _ := filepath.Abs(file)
			actor := activities.CurrentUser()
			fields := make([]dataset.Field, len(im.features))
			for i, f := range im.features {
				fields[i] = dataset.Field{Name: f, Type: dataset.Float64}
			}
			fitted := &transform.Fitted{Inputs: fields, Features: im.features}
			if rec != nil {
				fitted, fields, target = rec.fitted, rec.fitted.Inputs, rec.target
			}
			man := model.Manifest{
				FormatVersion: model.FormatVersion, Name: name, Task: im.task, Target: target, Output: im.output,
				Classes: classes, Inputs: fields, Transforms: fitted,
				Estimator: model.Estimator{Type: im.typ, File: model.DefaultEstimatorFile},
				Lineage: model.Lineage{Runtime: "imported", CreatedBy: actor, CreatedAt: time.Now().UTC(),
					Params: map[string]any{"imported_from": abs, "estimator_sha256": fileHash}},
			}
			store, err := cfg.openStore(ctx)
			if err != nil {
				return err
			}
			defer store.Close()
			tmp, err := store.TempDir("import-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			dir := filepath.Join(tmp, "bundle")
			err = model.WriteBundle(dir, man, map[string][]byte{model.DefaultEstimatorFile: data})
			if err == nil {
				_, err = model.Load(dir)
			}
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("%s does not load as a %s model: %w", file, im.typ, err)}
			}
			bundleSum, err := activities.HashDir(dir)
			if err != nil {
				return err
			}
			uri, err := store.Publish(ctx, dir, "bundles/"+bundleSum)
			if err != nil {
				return err
			}
			reg, err := registry.Open(cmd.Context(), cfg.registryTarget()) // importing may create the registry
			if err != nil {
				return err
			}
			defer reg.Close()
			version := registry.Version{
				Model: name, BundleURI: uri, Runtime: "imported", Image: "sha256:" + fileHash, Trigger: "import: " + reason,
				CreatedBy: actor, Params: map[string]any{"imported_from": abs, "estimator_type": im.typ, "reason": reason},
				Datasets: []registry.DatasetRef{{Role: registry.DatasetSource, URI: artifact.FileURI(abs), SHA256: fileHash}},
			}
			if rec != nil {
				version.SpecText, version.SpecHash = rec.specText, rec.specHash
				version.DatasetHash = rec.dataHash
				version.Datasets = append(version.Datasets, registry.DatasetRef{Role: registry.DatasetTrain, URI: artifact.FileURI(rec.dataPath), SHA256: rec.dataHash, Rows: rec.rows})
				version.Params["recipe"] = rec.step
			}
			v, _, err := reg.Register(cmd.Context(), version)
			if err != nil {
				return err
			}
			if cfg.JSON {
				return printJSON(cfg.stdout, v)
			}
			fmt.Fprintf(cfg.stdout, "Imported %s as %s:%d (%s, task %s, %d inputs: %s)\n", file, v.Model, v.Version, im.typ, im.task,
				len(im.features), strings.Join(im.features, ", "))
			fmt.Fprintf(cfg.stdout, "Bundle %s\nScore it: kiln score %s:%d DATA OUT; promote it: kiln models promote %s %d --to production --reason ...\n",
				uri, v.Model, v.Version, v.Model, v.Version)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&file, "estimator", "", "the model file: XGBoost save_model JSON, or Kiln's logistic, multinomial or linear JSON (required)")
	f.StringVar(&typ, "type", "", "xgboost, logistic, multinomial or linear (default: read from the file)")
	f.StringArrayVar(&inputs, "inputs", nil, "the model's input columns in order, comma-separated (for an XGBoost model without feature_names)")
	f.StringVar(&target, "target", "label", "the name of the label column (kept in the manifest; scoring does not need it)")
	f.StringVar(&reason, "reason", "", "where the model comes from and why it is imported (required; kept in its lineage)")
	f.StringVar(&specFile, "spec", "", "a pipeline spec whose preprocess recipe the model was trained on (with --dataset)")
	f.StringVar(&dataPath, "dataset", "", "the data (CSV, JSON Lines or Parquet) Kiln fits the spec's recipe on (with --spec)")
	f.StringVar(&stepName, "step", "", "the spec's preprocess step, when it has several")
	f.StringSliceVar(&classList, "classes", nil, "a multi-class model's class names in the order of its outputs, comma-separated (default: the classes of --dataset's target with --spec, else 0,1,...)")
	return cmd
}

// importClasses returns the classes of an imported multi-class model: those
// given (one per model output), else those preprocess finds in the
// recipe's dataset, else "0", "1", ... (XGBoost's labels). A model of
// another task takes none.
func importClasses(im importedModel, given []string, rec *importRecipe) ([]string, error) {
	if im.classes == 0 {
		if len(given) > 0 {
			return nil, fmt.Errorf("--classes is for multi-class models; this one does task %q", im.task)
		}
		return nil, nil
	}
	classes := given
	switch {
	case len(given) > 0:
	case rec != nil && rec.classes != nil:
		classes = rec.classes
	default:
		for k := range im.classes {
			classes = append(classes, strconv.Itoa(k))
		}
	}
	if len(classes) != im.classes {
		return nil, fmt.Errorf("the model has %d classes but %d class names are given (%s)", im.classes, len(classes), strings.Join(classes, ", "))
	}
	return classes, nil
}

// importRecipe is a spec's preprocess recipe fitted for kiln models import.
type importRecipe struct {
	step, target, task string
	classes            []string // a multiclass step's classes in the dataset
	fitted             *transform.Fitted
	specText, specHash string
	dataPath, dataHash string
	rows               int64
	specFile           string
}

// fitImportRecipe fits the preprocess step of specFile (stepName, or its
// only one) on every row of dataPath.
func fitImportRecipe(cmd *cobra.Command, cfg *Config, specFile, dataPath, stepName string) (*importRecipe, error) {
	specSrc, err := os.ReadFile(specFile)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("--spec: %w", err)}
	}
	spec, err := pipelines.Parse(specFile, specSrc, nil)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	var steps []pipelines.Step
	for _, s := range spec.Steps {
		if s.Uses == pipelines.StepPreprocess && s.Preprocess != nil && (stepName == "" || s.Name == stepName) {
			steps = append(steps, s)
		}
	}
	switch {
	case len(steps) == 0 && stepName != "":
		return nil, &exitError{code: 2, err: fmt.Errorf("%s has no preprocess step %q", specFile, stepName)}
	case len(steps) == 0:
		return nil, &exitError{code: 2, err: fmt.Errorf("%s has no preprocess step: its recipe is what --spec imports", specFile)}
	case len(steps) > 1:
		names := make([]string, len(steps))
		for i, s := range steps {
			names[i] = s.Name
		}
		return nil, &exitError{code: 2, err: fmt.Errorf("%s has %d preprocess steps (%s): name one with --step", specFile, len(steps), strings.Join(names, ", "))}
	}
	st := steps[0]
	r, err := openData(cmd.Context(), cfg, dataPath)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rec, err := r.ReadAll(cmd.Context(), nil)
	if err != nil {
		return nil, fmt.Errorf("--dataset %s: %w", dataPath, err)
	}
	defer rec.Release()
	fitted, err := transform.Fit(st.Preprocess.Recipe(), r.Schema(), rec)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("fitting step %q of %s on %s: %w", st.Name, specFile, dataPath, err)}
	}
	dataHash, err := dataset.HashFile(dataPath)
	if err != nil {
		return nil, err
	}
	abs, _ := filepath.Abs(dataPath)
	task := st.Preprocess.Task
	if task == "" {
		task = model.TaskBinary
	}
	var classes []string
	if task == model.TaskMulticlass {
		if classes, err = activities.TargetClasses(rec, st.Preprocess.Target); err != nil {
			return nil, &exitError{code: 2, err: fmt.Errorf("--dataset %s: %w", dataPath, err)}
		}
	}
	return &importRecipe{
		step: st.Name, target: st.Preprocess.Target, task: task, fitted: fitted, classes: classes,
		specText: string(specSrc), specHash: spec.Hash, dataPath: abs, dataHash: dataHash, rows: rec.NumRows(), specFile: specFile,
	}, nil
}

// check verifies that the imported model reads the recipe's features, in
// order, and does the spec's task.
func (r *importRecipe) check(im importedModel) error {
	if im.task != r.task {
		return fmt.Errorf("the model does task %q but step %q of %s declares task %q", im.task, r.step, r.specFile, r.task)
	}
	want := r.fitted.Features
	if len(im.features) != len(want) {
		return fmt.Errorf("the model reads %d features but the recipe of step %q produces %d: %s", len(im.features), r.step, len(want), strings.Join(want, ", "))
	}
	for i := range want {
		if im.features[i] != want[i] {
			return fmt.Errorf("the model's feature %d is %q but the recipe of step %q produces %q there (its features: %s)", i, im.features[i], r.step, want[i], strings.Join(want, ", "))
		}
	}
	return nil
}

// unnamedXGBoost reports whether data is an XGBoost model file that does
// not name its features (one that does has them checked against a recipe's,
// not replaced by them).
func unnamedXGBoost(data []byte) bool {
	b, err := xgbjson.Parse(data)
	return err == nil && len(b.FeatureNames) == 0
}
