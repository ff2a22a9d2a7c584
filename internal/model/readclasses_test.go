package model

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReadClasses reads a bundle's classes from its manifest alone: a
// multiclass manifest's classes, nil for another task, and errors for a
// missing or malformed manifest or bad classes.
func TestReadClasses(t *testing.T) {
	for _, tc := range []struct {
		name, manifest string
		want           []string
		err            string
	}{
		{"multiclass", `{"task":"multiclass","classes":["a","b","c"]}`, []string{"a", "b", "c"}, ""},
		{"binary", `{"task":"binary"}`, nil, ""},
		{"duplicate class", `{"task":"multiclass","classes":["a","a"]}`, nil, `class "a" is listed twice`},
		{"malformed", `{"task":`, nil, "manifest.json"},
		{"missing", "", nil, "reading bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.manifest != "" {
				if err := os.WriteFile(filepath.Join(dir, ManifestFile), []byte(tc.manifest), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ReadClasses(dir)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one naming %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Errorf("ReadClasses = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
