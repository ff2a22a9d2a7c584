package suggest

import "testing"

func TestDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"needs", "needs", 0}, {"need", "needs", 1}, {"nedes", "needs", 1},
		{"trian", "train", 1}, {"kitten", "sitting", 3}, {"Europe/Pari", "Europe/Paris", 1}, {"é", "e", 1},
	}
	for _, tt := range tests {
		if got := Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := Distance(tt.b, tt.a); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d (symmetry)", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestClosest(t *testing.T) {
	known := []string{"needs", "uses", "with", "retry", "container", "foreach"}
	tests := []struct{ name, want string }{
		{"need", "needs"}, {"Needs", "needs"}, {"wiht", "with"}, {"contianer", "container"},
		{"needs", ""}, {"xyz", ""}, {"timeout", ""},
	}
	for _, tt := range tests {
		if got := Closest(tt.name, known); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
