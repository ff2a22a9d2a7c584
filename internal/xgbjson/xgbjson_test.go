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
	b := &Booster{
		Objective:    ObjectiveBinaryLogistic,
		BaseScore:    0.3,
		NumFeature:   2,
		FeatureNames: []string{"a", "b"},
		Trees:        []Tree{stump(0, 0.5, -0.25, 0.75, true), stump(1, -1, 0.1, -0.2, false)},
	}
	data, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
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
	b.BaseScore = float64(float32(0.3))
	if !reflect.DeepEqual(got, b) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, b)
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
		{"objective", `"binary:logistic"`, `"multi:softprob"`, `objective "multi:softprob" is not supported`},
		{"feature range", `"split_indices":[0,`, `"split_indices":[2,`, "split feature 2 is out of range"},
		{"child range", `"left_children":[1,`, `"left_children":[7,`, "child 7 is out of range"},
		{"half leaf", `"left_children":[1,-1,-1]`, `"left_children":[1,2,-1]`, "left child 2 and right child -1"},
		{"root child", `"right_children":[2,`, `"right_children":[0,`, "the root is its child"},
		{"lengths", `"split_conditions":[0.5,`, `"split_conditions":[`, "split_conditions has 2 entries for 3 nodes"},
		{"num_trees", `"num_trees":"1"`, `"num_trees":"2"`, "num_trees is 2 but there are 1 trees"},
		{"base_score", `"base_score":"0.5"`, `"base_score":"1.5"`, "not a probability"},
		{"no learner", `{"learner"`, `{"lerner"`, `no "learner"`},
		{"multiclass", `"num_class":"0"`, `"num_class":"3"`, "multi-class"},
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
