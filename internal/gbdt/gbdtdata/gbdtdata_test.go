package gbdtdata

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteRead(t *testing.T) {
	d := Synthetic(10, 500, 12, 3)
	missing := 0
	for _, v := range d.X[8] {
		if math.IsNaN(v) {
			missing++
		}
	}
	if missing == 0 || missing > 100 {
		t.Errorf("feature 8 has %d missing values in 500 rows, want about 5%%", missing)
	}
	// Row i does not depend on the range it is drawn in.
	if again := Synthetic(12, 1, 12, 3); again.X[0][0] != d.X[0][2] || again.Y[0] != d.Y[2] {
		t.Errorf("row 12 differs between ranges")
	}
	path := filepath.Join(t.TempDir(), "d.bin")
	if err := Write(path, d); err != nil {
		t.Fatal(err)
	}
	back, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	for j := range d.X {
		for i, v := range d.X[j] {
			if w := back.X[j][i]; w != v && !(math.IsNaN(v) && math.IsNaN(w)) {
				t.Fatalf("feature %d row %d: %v, want %v", j, i, w, v)
			}
		}
	}
	for i, y := range d.Y {
		if back.Y[i] != y {
			t.Fatalf("label %d: %v, want %v", i, back.Y[i], y)
		}
	}
	b, _ := os.ReadFile(path)
	if err := os.WriteFile(path, b[:len(b)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(path); err == nil {
		t.Error("a truncated file read without error")
	}
}

func TestBreastCancerSplit(t *testing.T) {
	train, test, names, err := BreastCancer(filepath.Join("..", "..", "..", "data", "breast_cancer.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 30 || train.Rows()+test.Rows() != 569 || test.Rows() < 100 || test.Rows() > 190 {
		t.Errorf("%d features, %d train + %d test rows", len(names), train.Rows(), test.Rows())
	}
}
