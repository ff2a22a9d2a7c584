package pipelines

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestRegisterRequireApproval decodes register.require_approval and rejects
// bad alias names and an alias the step itself would move.
func TestRegisterRequireApproval(t *testing.T) {
	src, err := os.ReadFile("breast_cancer.yaml")
	if err != nil {
		t.Fatal(err)
	}
	orig := "with: {model: breast-cancer, alias: staging}"
	if !strings.Contains(string(src), orig) {
		t.Fatalf("breast_cancer.yaml no longer has %q", orig)
	}
	tests := []struct {
		with    string
		want    []string
		wantErr string
	}{
		{"with: {model: breast-cancer, alias: staging, require_approval: [production, prod-eu]}", []string{"production", "prod-eu"}, ""},
		{"with: {model: breast-cancer, require_approval: [Production]}", nil, `invalid alias "Production" in require_approval`},
		{"with: {model: breast-cancer, alias: staging, require_approval: [staging]}", nil, "cannot move it"},
		{"with: {model: breast-cancer, require_approval: production}", []string{"production"}, ""}, // a scalar is a one-item list
	}
	for _, tt := range tests {
		t.Run(tt.with, func(t *testing.T) {
			spec, err := Parse("breast_cancer.yaml", []byte(strings.Replace(string(src), orig, tt.with, 1)), nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Parse error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := spec.Step("register").Register.RequireApproval; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("require_approval = %v, want %v", got, tt.want)
			}
		})
	}
}
