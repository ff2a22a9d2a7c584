package activities_test

import (
	"math"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/canary"
)

// TestCanaryOutcomes joins pushed labels to request logs of two versions
// and sums each version's accuracy outcomes since the canary started;
// predictions before it and labels of other predictions do not count.
func TestCanaryOutcomes(t *testing.T) {
	f := newMWFixture(t)
	a := f.model(t, "live")
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	before := mwSpread(f.pop, 0, 100, start.Add(-time.Hour), start, "old")
	stable := mwSpread(f.pop, 100, 400, start, start.Add(10*time.Minute), "s")
	cand := mwSpread(f.pop, 500, 300, start, start.Add(10*time.Minute), "c")
	f.writeLog(t, a, "live", start, 0, before)
	f.writeVersionLog(t, a, "live", start.Add(10*time.Minute), 1, stable, 1)
	f.writeVersionLog(t, a, "live", start.Add(10*time.Minute), 2, cand, 2)
	// Every stable row keeps its true label; the candidate's labels are
	// flipped on every third row.
	ls := labelsOf(append(append(append([]mwRow{}, before...), stable...), cand...), time.Minute)
	for k := range cand {
		if k%3 == 0 {
			l := &ls[len(before)+len(stable)+k]
			l.label = 1 - l.label
		}
	}
	f.push(t, "live", start.Add(20*time.Minute), ls)
	out, err := a.CanaryOutcomes(f.e.ctx, activities.CanaryOutcomesInput{Model: "live", Since: start, Metric: canary.LiveAccuracy, Versions: []int64{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	want := func(rows []mwRow, flip bool) canary.Outcomes {
		var o canary.Outcomes
		for k, r := range rows {
			label := r.label()
			if flip && k%3 == 0 {
				label = 1 - label
			}
			o.N++
			if (r.pred() >= 0.5) == (label >= 0.5) {
				o.Sum++
				o.SumSq++
			}
		}
		return o
	}
	if got, w := out.ByVersion[0].Outcomes, want(stable, false); got != w {
		t.Errorf("stable outcomes %+v, want %+v", got, w)
	}
	if got, w := out.ByVersion[1].Outcomes, want(cand, true); got != w {
		t.Errorf("canary outcomes %+v, want %+v", got, w)
	}
	if d := out.ByVersion[0].Outcomes.Mean() - out.ByVersion[1].Outcomes.Mean(); !(d > 0.2) || math.IsNaN(d) {
		t.Errorf("accuracy difference %.3f, want the flipped labels to cost about a third", d)
	}
	// Without labels: zero outcomes, no error.
	b := f.model(t, "unlabelled")
	out, err = b.CanaryOutcomes(f.e.ctx, activities.CanaryOutcomesInput{Model: "unlabelled", Since: start, Metric: canary.LiveAccuracy, Versions: []int64{1, 2}})
	if err != nil || out.ByVersion[0].Outcomes.N != 0 || out.ByVersion[1].Outcomes.N != 0 {
		t.Errorf("no labels: %+v, %v", out, err)
	}
}
