package xgbjson

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

// stump is a valid depth-1 tree on feature f: x < cond → left (lv), else rv;
// NaN goes left when defLeft.
func stump(f int32, cond, lv, rv float32, defLeft bool) Tree {
	return Tree{
		LeftChildren:    []int32{1, -1, -1},
		RightChildren:   []int32{2, -1, -1},
		SplitIndices:    []int32{f, 0, 0},
		SplitConditions: []float32{cond, lv, rv},
		DefaultLeft:     []bool{defLeft, false, false},
		BaseWeights:     []float32{0, lv, rv},
	}
}

// dfsTree is a depth-2 tree numbered depth first, as a recursive trainer
// would: its root's children (1 and 4) are not adjacent.
func dfsTree() Tree {
	return Tree{
		LeftChildren:    []int32{1, 2, -1, -1, 5, -1, -1},
		RightChildren:   []int32{4, 3, -1, -1, 6, -1, -1},
		SplitIndices:    []int32{0, 1, 0, 0, 1, 0, 0},
		SplitConditions: []float32{0, -0.5, 1, 2, 0.5, 3, 4},
		DefaultLeft:     []bool{false, true, false, false, false, false, false},
		BaseWeights:     []float32{0, 0, 1, 2, 0, 3, 4},
		SumHessian:      []float32{7, 3, 1, 2, 4, 2, 2},
	}
}

// TestMarshalRenumbers checks trees whose children are not adjacent are
// written breadth first with the same predictions, and that Parse rejects
// such a layout (XGBoost would mispredict it).
func TestMarshalRenumbers(t *testing.T) {
	b := &Booster{Objective: ObjectiveSquaredError, BaseScore: 0, NumFeature: 2, Trees: []Tree{dfsTree()}}
	data, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(MarshalJSON()): %v", err)
	}
	want := []int32{1, 3, 5, -1, -1, -1, -1}
	if !reflect.DeepEqual(got.Trees[0].LeftChildren, want) {
		t.Errorf("left children %v, want %v", got.Trees[0].LeftChildren, want)
	}
	if h := got.Trees[0].SumHessian; !reflect.DeepEqual(h, []float32{7, 3, 4, 1, 2, 2, 2}) {
		t.Errorf("sum_hessian %v not carried along", h)
	}
	nan := math.NaN()
	for _, x := range [][]float64{{-1, -1}, {-1, 0}, {-1, nan}, {1, 0}, {1, 1}, {nan, nan}, {0, 0.5}} {
		if m, m2 := b.Margin(x), got.Margin(x); m != m2 {
			t.Errorf("Margin(%v) = %v before writing, %v after", x, m, m2)
		}
	}
	bad := strings.Replace(string(data), `"left_children":[1,3,5,`, `"left_children":[2,3,5,`, 1)
	bad = strings.Replace(bad, `"right_children":[2,4,6,`, `"right_children":[1,4,6,`, 1)
	if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "does not follow left child") {
		t.Errorf("Parse of swapped children: error %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		b    *Booster
		// want is text MarshalJSON must write.
		want []string
	}{
		{"binary", &Booster{
			Objective:    ObjectiveBinaryLogistic,
			BaseScore:    0.3,
			NumFeature:   2,
			FeatureNames: []string{"a", "b"},
			Trees:        []Tree{stump(0, 0.5, -0.25, 0.75, true), stump(1, -1, 0.1, -0.2, false)},
		}, []string{`"num_class":"0"`, `"tree_info":[0,0]`, `"reg_loss_param":{"scale_pos_weight":"1"}`}},
		{"multiclass", &Booster{
			Objective:    ObjectiveMultiSoftprob,
			BaseScore:    0.3,
			NumFeature:   2,
			FeatureNames: []string{"a", "b"},
			NumClass:     3,
			TreeInfo:     []int{0, 1, 2, 2, 1, 0},
			Trees: []Tree{stump(0, 0.5, -0.25, 0.75, true), stump(1, -1, 0.1, -0.2, false),
				stump(1, 2, 0.3, -0.1, true), stump(0, 0, -0.5, 0.5, false),
				stump(0, 1, 0.25, 0, true), stump(1, 1, 0, 0.125, false)},
		}, []string{`"num_class":"3"`, `"tree_info":[0,1,2,2,1,0]`, `"objective":{"name":"multi:softprob","softmax_multiclass_param":{"num_class":"3"}}`}},
		{"softmax", &Booster{
			Objective:    ObjectiveMultiSoftmax,
			BaseScore:    0.5,
			NumFeature:   1,
			FeatureNames: []string{"z"},
			NumClass:     2,
			TreeInfo:     []int{1, 0},
			Trees:        []Tree{stump(0, 0.5, -0.25, 0.75, true), stump(0, 0, 1, 2, false)},
		}, []string{`"num_class":"2"`, `"tree_info":[1,0]`, `"objective":{"name":"multi:softmax","softmax_multiclass_param":{"num_class":"2"}}`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			data, err := b.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(data), w) {
					t.Errorf("MarshalJSON wrote no %s:\n%s", w, data)
				}
			}
			got, err := Parse(data)
			if err != nil {
				t.Fatalf("Parse(MarshalJSON()): %v\n%s", err, data)
			}
			// Optional arrays come back as zeros.
			for i := range b.Trees {
				b.Trees[i].SumHessian = make([]float32, 3)
				b.Trees[i].LossChanges = make([]float32, 3)
			}
			b.BaseScore = float64(float32(b.BaseScore))
			if !reflect.DeepEqual(got, b) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, b)
			}
		})
	}
}

// TestMargins checks a multi-class model's per-class margins (base_score
// added to every class, each tree to its tree_info class), probabilities
// and predicted class.
func TestMargins(t *testing.T) {
	b := &Booster{
		Objective:  ObjectiveMultiSoftprob,
		BaseScore:  0.5,
		NumFeature: 2,
		NumClass:   3,
		TreeInfo:   []int{0, 1, 2, 0, 2, 1},
		Trees: []Tree{stump(0, 0.5, -0.25, 0.75, true), stump(1, -1, 0.1, -0.2, false),
			stump(0, 0, 1, -1, false), stump(1, 0, 0.5, 0.25, true), stump(1, 0, 2, 0, true),
			stump(0, 100, 0, 0, true)}, // adds 0
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	nan := math.NaN()
	tests := []struct {
		x     []float64
		want  [3]float64
		class float64
	}{
		{[]float64{0, 0}, [3]float64{0.5 - 0.25 + 0.25, 0.5 - 0.2, 0.5 - 1 + 0}, 0},
		{[]float64{1, -2}, [3]float64{0.5 + 0.75 + 0.5, 0.5 + 0.1, 0.5 - 1 + 2}, 0},
		{[]float64{nan, nan}, [3]float64{0.5 - 0.25 + 0.5, 0.5 - 0.2, 0.5 - 1 + 2}, 2},
		{[]float64{-1}, [3]float64{0.5 - 0.25 + 0.5, 0.5 - 0.2, 0.5 + 1 + 2}, 2}, // feature 1 missing
		{[]float64{-1, 5}, [3]float64{0.5 - 0.25 + 0.25, 0.5 - 0.2, 0.5 + 1 + 0}, 2},
	}
	for _, tt := range tests {
		got := make([]float64, 3)
		b.Margins(tt.x, got)
		for k := range got {
			if math.Abs(got[k]-tt.want[k]) > 1e-6 {
				t.Errorf("Margins(%v) = %v, want %v", tt.x, got, tt.want)
				break
			}
		}
		if m := b.Margin(tt.x); m != got[0] {
			t.Errorf("Margin(%v) = %v, want class 0's %v", tt.x, m, got[0])
		}
		p := make([]float64, 3)
		b.PredictProba(tt.x, p)
		var sum, den float64
		for _, m := range got {
			den += math.Exp(m)
		}
		for k := range p {
			sum += p[k]
			if want := math.Exp(got[k]) / den; math.Abs(p[k]-want) > 1e-15 {
				t.Errorf("PredictProba(%v)[%d] = %v, want %v", tt.x, k, p[k], want)
			}
		}
		if math.Abs(sum-1) > 1e-15 {
			t.Errorf("PredictProba(%v) sums to %v", tt.x, sum)
		}
		if c := b.Predict(tt.x); c != tt.class {
			t.Errorf("Predict(%v) = %v, want class %v", tt.x, c, tt.class)
		}
	}
}

// TestSoftmax checks the softmax against direct formulas, including
// margins whose plain exponentials would overflow.
func TestSoftmax(t *testing.T) {
	for _, tt := range []struct {
		z, want []float64
	}{
		{[]float64{0, 0}, []float64{0.5, 0.5}},
		{[]float64{1, 2, 3}, []float64{1 / (1 + math.E + math.E*math.E), math.E / (1 + math.E + math.E*math.E), math.E * math.E / (1 + math.E + math.E*math.E)}},
		{[]float64{1000, 1000, 1000, 1000}, []float64{0.25, 0.25, 0.25, 0.25}},
		{[]float64{-800, 0}, []float64{0, 1}},
		{[]float64{710, 711}, []float64{1 / (1 + math.E), math.E / (1 + math.E)}},
		{[]float64{7}, []float64{1}},
	} {
		got := append([]float64(nil), tt.z...)
		Softmax(got)
		for k := range got {
			if math.Abs(got[k]-tt.want[k]) > 1e-15 {
				t.Errorf("Softmax(%v) = %v, want %v", tt.z, got, tt.want)
				break
			}
		}
	}
}

func TestMargin(t *testing.T) {
	b := &Booster{
		Objective:  ObjectiveSquaredError,
		BaseScore:  0.5,
		NumFeature: 2,
		Trees:      []Tree{stump(0, 0.5, -0.25, 0.75, true), stump(1, -1, 0.1, -0.2, false)},
	}
	nan := math.NaN()
	tests := []struct {
		x    []float64
		want float64
	}{
		{[]float64{0, 0}, 0.5 - 0.25 - 0.2},
		{[]float64{0.5, -2}, 0.5 + 0.75 + 0.1},
		{[]float64{nan, nan}, 0.5 - 0.25 - 0.2},
		{[]float64{math.Inf(1), math.Inf(-1)}, 0.5 + 0.75 + 0.1},
		// 0.49999999 rounds to float32 0.5, which is not < 0.5.
		{[]float64{0.49999999, 0}, 0.5 + 0.75 - 0.2},
		{[]float64{0.4999}, 0.5 - 0.25 - 0.2}, // feature 1 missing
	}
	for _, tt := range tests {
		got := b.Margin(tt.x)
		if math.Abs(got-tt.want) > 1e-6 {
			t.Errorf("Margin(%v) = %v, want %v", tt.x, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good := func() *Booster {
		return &Booster{Objective: ObjectiveBinaryLogistic, BaseScore: 0.5, NumFeature: 2,
			Trees: []Tree{stump(0, 0.5, -0.25, 0.75, true)}}
	}
	data, err := good().MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	tests := []struct {
		name, old, new, want string
	}{
		{"gblinear", `"name":"gbtree"`, `"name":"gblinear"`, "gblinear"},
		{"dart", `"name":"gbtree"`, `"name":"dart"`, "dart"},
		{"objective", `"binary:logistic"`, `"rank:pairwise"`, `objective "rank:pairwise" is not supported`},
		{"softprob one class", `"binary:logistic"`, `"multi:softprob"`, `num_class is 0: objective "multi:softprob" needs from 2 to 65536 classes`},
		{"feature range", `"split_indices":[0,`, `"split_indices":[2,`, "split feature 2 is out of range"},
		{"child range", `"left_children":[1,`, `"left_children":[7,`, "child 7 is out of range"},
		{"half leaf", `"left_children":[1,-1,-1]`, `"left_children":[1,2,-1]`, "left child 2 and right child -1"},
		{"root child", `"right_children":[2,`, `"right_children":[0,`, "the root is its child"},
		{"lengths", `"split_conditions":[0.5,`, `"split_conditions":[`, "split_conditions has 2 entries for 3 nodes"},
		{"num_trees", `"num_trees":"1"`, `"num_trees":"2"`, "num_trees is 2 but there are 1 trees"},
		{"base_score", `"base_score":"0.5"`, `"base_score":"1.5"`, "not a probability"},
		{"no learner", `{"learner"`, `{"lerner"`, `no "learner"`},
		{"binary with classes", `"num_class":"0"`, `"num_class":"3"`, `num_class is 3 but objective "binary:logistic" has a single output`},
		{"binary tree_info", `"tree_info":[0]`, `"tree_info":[1]`, `tree_info[0] is 1 but objective "binary:logistic" has a single output`},
		{"categorical", `"split_type":[0,`, `"split_type":[1,`, "categorical"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(s, tt.old) {
				t.Fatalf("%q not in %s", tt.old, s)
			}
			_, err := Parse([]byte(strings.Replace(s, tt.old, tt.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestParseMulticlassErrors checks what Parse refuses in multi-class files.
func TestParseMulticlassErrors(t *testing.T) {
	good := &Booster{Objective: ObjectiveMultiSoftprob, BaseScore: 0.5, NumFeature: 2, NumClass: 3,
		TreeInfo: []int{0, 1, 2}, Trees: []Tree{stump(0, 0.5, -0.25, 0.75, true), stump(1, 0, 1, 2, false), stump(0, 1, 0, 1, true)}}
	data, err := good.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	if _, err := Parse(data); err != nil {
		t.Fatalf("Parse of the good file: %v", err)
	}
	tests := []struct {
		name, old, new, want string
	}{
		{"tree_info range", `"tree_info":[0,1,2]`, `"tree_info":[0,3,2]`, "tree_info[1] is 3, not a class from 0 to 2"},
		{"tree_info length", `"tree_info":[0,1,2]`, `"tree_info":[0,1]`, "tree_info has 2 entries for 3 trees"},
		{"one class", `"num_class":"3","num_feature"`, `"num_class":"1","num_feature"`, `num_class is 1: objective "multi:softprob" needs from 2 to 65536 classes`},
		{"objective num_class", `"softmax_multiclass_param":{"num_class":"3"}`, `"softmax_multiclass_param":{"num_class":"4"}`, "softmax_multiclass_param.num_class is 4 but learner_model_param.num_class is 3"},
		{"huge num_class", `"num_class":"3","num_feature"`, `"num_class":"100000000","num_feature"`, `num_class is 100000000: objective "multi:softprob" needs from 2 to 65536 classes`},
		{"multi-target", `"num_target":"1"`, `"num_target":"3"`, "multi-target models are not supported"},
		{"vector leaves", `"size_leaf_vector":"0"},"tree_info"`, `"size_leaf_vector":"3"},"tree_info"`, "vector leaves are not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(s, tt.old) {
				t.Fatalf("%q not in %s", tt.old, s)
			}
			_, err := Parse([]byte(strings.Replace(s, tt.old, tt.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: error %v, want one containing %q", err, tt.want)
			}
		})
	}
	// Written by XGBoost without the objective's parameters: accepted.
	if _, err := Parse([]byte(strings.Replace(s, `,"softmax_multiclass_param":{"num_class":"3"}`, "", 1))); err != nil {
		t.Errorf("Parse without softmax_multiclass_param: %v", err)
	}
}

// TestValidateClasses checks num_class and tree_info against the
// objective and the trees.
func TestValidateClasses(t *testing.T) {
	trees := func(n int) []Tree {
		ts := make([]Tree, n)
		for i := range ts {
			ts[i] = stump(0, 0.5, -1, 1, true)
		}
		return ts
	}
	for _, tt := range []struct {
		name      string
		objective string
		numClass  int
		treeInfo  []int
		trees     int
		want      string
	}{
		{"multiclass", ObjectiveMultiSoftprob, 3, []int{0, 1, 2, 2, 1, 0}, 6, ""},
		{"no trees", ObjectiveMultiSoftprob, 3, nil, 0, ""},
		{"softmax", ObjectiveMultiSoftmax, 2, []int{1, 1}, 2, ""},
		{"binary", ObjectiveBinaryLogistic, 0, nil, 2, ""},
		{"binary one class", ObjectiveBinaryLogistic, 1, []int{0, 0}, 2, ""},
		{"partial round", ObjectiveMultiSoftprob, 3, []int{0, 1, 2, 0}, 4, "4 trees are not whole rounds of 3 classes (XGBoost would ignore the last 1)"},
		{"no tree_info", ObjectiveMultiSoftprob, 3, nil, 3, "tree_info has 0 entries for 3 trees"},
		{"class range", ObjectiveMultiSoftprob, 3, []int{0, 1, 3}, 3, "tree_info[2] is 3, not a class from 0 to 2"},
		{"negative class", ObjectiveMultiSoftprob, 3, []int{0, -1, 2}, 3, "tree_info[1] is -1"},
		{"one class", ObjectiveMultiSoftprob, 1, []int{0}, 1, `num_class is 1: objective "multi:softprob" needs from 2 to 65536 classes`},
		{"too many classes", ObjectiveMultiSoftprob, MaxNumClass + 1, nil, 0, "num_class is 65537"},
		{"regression with classes", ObjectiveSquaredError, 2, []int{0, 1}, 2, `num_class is 2 but objective "reg:squarederror" has a single output`},
		{"binary tree_info", ObjectiveBinaryLogistic, 0, []int{0, 1}, 2, `tree_info[1] is 1 but objective "binary:logistic" has a single output`},
		{"binary tree_info length", ObjectiveBinaryLogistic, 0, []int{0}, 2, "tree_info has 1 entries for 2 trees"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := &Booster{Objective: tt.objective, BaseScore: 0.5, NumFeature: 1, NumClass: tt.numClass, TreeInfo: tt.treeInfo, Trees: trees(tt.trees)}
			err := b.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate: error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestValidateTreeShape(t *testing.T) {
	leaf := func(n int) Tree {
		return Tree{
			LeftChildren: make([]int32, n), RightChildren: make([]int32, n), SplitIndices: make([]int32, n),
			SplitConditions: make([]float32, n), DefaultLeft: make([]bool, n), BaseWeights: make([]float32, n),
		}
	}
	tests := []struct {
		name        string
		left, right []int32
		want        string
	}{
		{"ok", []int32{1, -1, -1}, []int32{2, -1, -1}, ""},
		{"unreachable leaves", []int32{1, -1, -1, -1}, []int32{2, -1, -1, -1}, ""},
		{"two parents", []int32{1, 2, -1}, []int32{2, 2, -1}, "child of both"},
		{"self loop", []int32{1, 1, -1}, []int32{2, 2, -1}, "child of both"},
		{"unreachable cycle", []int32{-1, 2, 1, -1, -1}, []int32{-1, 3, 4, -1, -1}, "in a cycle"},
		{"root is a child", []int32{-1, 0, -1}, []int32{-1, 2, -1}, "the root is its child"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := leaf(len(tt.left))
			tr.LeftChildren, tr.RightChildren = tt.left, tt.right
			err := tr.validate(1)
			if tt.want == "" {
				if err != nil {
					t.Errorf("validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("validate: error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
