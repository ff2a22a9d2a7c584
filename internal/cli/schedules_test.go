package cli

import (
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/schedule"
)

func TestLastDates(t *testing.T) {
	c, err := schedule.Parse("30 2 * * *", "Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	paris, _ := time.LoadLocation("Europe/Paris")
	tests := []struct {
		now      time.Time
		n        int
		from, to string
	}{
		// After 02:30 on the 3rd, the latest complete date is the 2nd.
		{time.Date(2026, 12, 3, 10, 0, 0, 0, paris), 3, "2026-11-30", "2026-12-02"},
		// Before 02:30 it is the 1st: the run of the 2nd has not fired yet.
		{time.Date(2026, 12, 3, 1, 0, 0, 0, paris), 1, "2026-12-01", "2026-12-01"},
		// Across the spring-forward night.
		{time.Date(2026, 3, 30, 12, 0, 0, 0, paris), 3, "2026-03-27", "2026-03-29"},
	}
	for _, tt := range tests {
		from, to, err := lastDates(c, tt.now, tt.n)
		if err != nil || from != tt.from || to != tt.to {
			t.Errorf("lastDates(%s, %d) = %s..%s, %v; want %s..%s", tt.now, tt.n, from, to, err, tt.from, tt.to)
		}
	}
}

func TestDecideBackfill(t *testing.T) {
	tests := []struct {
		name       string
		state      dateState
		reprocess  string
		hasReports bool
		run        bool
	}{
		{"never ran", dateState{}, reprocessMissing, true, true},
		{"report exists", dateState{Report: true, Status: "completed"}, reprocessMissing, true, false},
		{"failed without report", dateState{Status: "failed"}, reprocessMissing, true, true},
		{"completed without report step", dateState{Status: "completed"}, reprocessMissing, false, false},
		{"failed only: never ran", dateState{}, reprocessFailed, true, false},
		{"failed only: failed", dateState{Status: "failed"}, reprocessFailed, true, true},
		{"failed only: timed out", dateState{Status: "timedout"}, reprocessFailed, true, true},
		{"all: done", dateState{Report: true, Status: "completed"}, reprocessAll, true, true},
		{"running is never started again", dateState{Status: "running"}, reprocessAll, true, false},
	}
	for _, tt := range tests {
		d := tt.state
		decideBackfill(&d, tt.reprocess, tt.hasReports)
		if d.Run != tt.run || d.Why == "" {
			t.Errorf("%s: run %v (%q), want %v", tt.name, d.Run, d.Why, tt.run)
		}
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{6 * time.Hour: "6h", 90 * time.Minute: "1h30m", 45 * time.Second: "45s", 10 * time.Minute: "10m", time.Hour + time.Second: "1h0m1s"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}
