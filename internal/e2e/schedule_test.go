package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/kiln-ml/kiln/activities"
	"github.com/kiln-ml/kiln/internal/demodata"
	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/internal/report"
	"github.com/kiln-ml/kiln/internal/schedule"
	"github.com/kiln-ml/kiln/internal/scorer"
	"github.com/kiln-ml/kiln/workflows"
)

// trainSpec trains and registers a churn model as churn@production (no
// deploy step: nightly scoring only needs the registry).
const trainSpec = `apiVersion: kiln/v1
kind: Pipeline
name: churn-train
steps:
  - {name: ingest, uses: ingest, with: {source: churn.csv}}
  - name: prep
    uses: preprocess
    needs: [ingest]
    with:
      target: churned
      exclude: [customer_id]
      split: {test: 0.2, valid: 0.1, seed: 1}
      transforms:
        - impute: {columns: [tenure, total_charges], strategy: median}
        - impute: {columns: [region], strategy: most_frequent}
        - standardize: {columns: ["*"]}
        - onehot: {columns: [plan, contract, region]}
  - {name: train, uses: train, needs: [prep], container: {memory: 512MiB}, with: {algorithm: logistic}}
  - {name: evaluate, uses: evaluate, needs: [train]}
  - {name: register, uses: register, needs: [evaluate], with: {model: churn, alias: production}}
`

// nightlySpec scores one date partition with churn@production and reports on it.
const nightlySpec = `apiVersion: kiln/v1
kind: Pipeline
name: nightly
schedule:
  cron: "30 2 * * *"
  timezone: Europe/Paris
  catchup_window: 1h
steps:
  - name: score
    uses: score
    with:
      model: churn@production
      input: events/date=${run.logical_date}/
      output: scored/date=${run.logical_date}
      passthrough: [customer_id, tenure, monthly_charges, total_charges, plan, contract, support_calls, region, paperless, churned]
  - name: report
    uses: report
    needs: [score]
    with: {labels: {column: churned}, trend: 7}
`

// nightlyStack starts a stack, trains churn@production and writes the
// nightly spec next to 30 days of partitions ending at the schedule's latest
// complete logical date, which it returns with the spec's path.
func nightlyStack(t *testing.T) (st *devstack.Stack, dir, spec, last string) {
	t.Helper()
	st = startStack(t, false)
	dir = t.TempDir()
	f, err := os.Create(filepath.Join(dir, "churn.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := demodata.WriteChurnCSV(f, demodata.ChurnOptions{Rows: 3000, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	f.Close()
	writeFile(t, filepath.Join(dir, "train.yaml"), trainSpec)
	if rs := runPipeline(t, st, st.Home, filepath.Join(dir, "train.yaml")); rs.Status != workflows.StatusCompleted {
		t.Fatalf("training: %s %s", rs.Status, rs.Error)
	}
	spec = filepath.Join(dir, "nightly.yaml")
	writeFile(t, spec, nightlySpec)
	c, err := schedule.Parse("30 2 * * *", "Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	run, err := c.Logical(time.Now(), true)
	if err != nil {
		t.Fatal(err)
	}
	last = run.Key
	out, err := kiln(t, st, st.Home, "demo-data", "--days", "30", "--partitions", filepath.Join(dir, "events"),
		"--end", last, "--timezone", "Europe/Paris", "--rows", "400", "--drift", "1", "--json")
	if err != nil {
		t.Fatalf("demo-data: %v\n%s", err, out)
	}
	return st, dir, spec, last
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dates returns the n dates ending at last, oldest first.
func dates(t *testing.T, last string, n int) []string {
	t.Helper()
	end, err := time.Parse(time.DateOnly, last)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, n)
	for i := range out {
		out[i] = end.AddDate(0, 0, i-n+1).Format(time.DateOnly)
	}
	return out
}

// pipelineRuns lists the executions of a pipeline's runs: workflow ID → run IDs.
func pipelineRuns(t *testing.T, c client.Client, pipeline string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	var token []byte
	for {
		resp, err := c.ListWorkflow(context.Background(), &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: "default", PageSize: 1000, NextPageToken: token,
			Query: fmt.Sprintf("WorkflowType = '%s' AND KilnPipeline = '%s'", activities.WorkflowPipeline, pipeline),
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range resp.GetExecutions() {
			out[e.GetExecution().GetWorkflowId()] = append(out[e.GetExecution().GetWorkflowId()], e.GetExecution().GetRunId())
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return out
		}
	}
}

// TestScheduleBackfillAndTrigger is the nightly-report must-show against the
// real embedded Temporal server: a schedule created from a spec; a 30-day
// backfill over date partitions giving exactly 30 dated outputs and 30
// reports, each run with its own logical date; the same backfill with
// --reprocess missing starting nothing; --reprocess all replacing every
// output and report while readers never see a partial one; and a manual
// trigger running the latest complete date, not the wall-clock date.
func TestScheduleBackfillAndTrigger(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	st, dir, spec, last := nightlyStack(t)
	ctx := context.Background()
	reg := st.Activities.Registry
	home := st.Home

	if out, err := kiln(t, st, home, "schedules", "create", spec); err != nil {
		t.Fatalf("schedules create: %v\n%s", err, out)
	}
	out, err := kiln(t, st, home, "schedules", "list", "--json")
	if err != nil || !strings.Contains(out, `"cron": "30 2 * * *"`) || !strings.Contains(out, `"timezone": "Europe/Paris"`) {
		t.Fatalf("schedules list (the cron must come back from the memo): %v\n%s", err, out)
	}

	days := dates(t, last, 30)
	from, to := days[0], days[29]
	// Dry run: 30 dates to run, none run.
	out, err = kiln(t, st, home, "schedules", "backfill", "nightly", "--from", from, "--to", to, "--dry-run", "--json")
	if err != nil {
		t.Fatalf("backfill --dry-run: %v\n%s", err, out)
	}
	var plan struct {
		ToRun int `json:"to_run"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil || plan.ToRun != 30 {
		t.Fatalf("dry run plans %d dates (%v), want 30:\n%s", plan.ToRun, err, out)
	}
	if n := len(pipelineRuns(t, st.Client, "nightly")); n != 0 {
		t.Fatalf("the dry run started %d runs", n)
	}

	start := time.Now()
	if out, err := kiln(t, st, home, "schedules", "backfill", "nightly", "--from", from, "--to", to, "--wait", "--timeout", "10m"); err != nil {
		t.Fatalf("backfill: %v\n%s", err, out)
	}
	t.Logf("30-day backfill took %s", time.Since(start).Round(time.Millisecond))
	runs := pipelineRuns(t, st.Client, "nightly")
	if len(runs) != 30 {
		t.Fatalf("%d pipeline runs after the backfill, want 30: %v", len(runs), runs)
	}
	committed := map[string]time.Time{}
	for _, d := range days {
		id := activities.PipelineID("nightly", d)
		if len(runs[id]) != 1 {
			t.Errorf("date %s ran %d times", d, len(runs[id]))
		}
		// The run used its logical date, not the wall clock.
		var rs workflows.RunStatus
		if err := st.Client.GetWorkflow(ctx, id, "").Get(ctx, &rs); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if rs.LogicalDate != d || rs.TriggeredBy != activities.TriggerBackfill {
			t.Errorf("%s: logical date %q trigger %q", id, rs.LogicalDate, rs.TriggeredBy)
		}
		man, err := scorer.ReadSuccess(filepath.Join(dir, "scored", "date="+d))
		if err != nil {
			t.Fatalf("dated output of %s: %v", d, err)
		}
		if man.Rows != 400 || man.Model != "churn" {
			t.Errorf("output of %s: %d rows by %s", d, man.Rows, man.Model)
		}
		committed[d] = man.Committed
		e, err := reg.Report(ctx, "nightly", "report", d)
		if err != nil {
			t.Fatalf("report of %s: %v", d, err)
		}
		if e.Trigger != activities.TriggerBackfill || e.Rows != 400 || e.Schedule != "nightly" {
			t.Errorf("report of %s: %+v", d, e)
		}
	}
	recordHistory(t, st.Client, activities.PipelineID("nightly", last), "", "pipeline_scheduled_report")
	if l := listWorkflows(t, st.Client, fmt.Sprintf("WorkflowType = '%s' AND TemporalScheduledById = 'nightly'", activities.WorkflowScheduledRun)); len(l) > 0 {
		i := strings.LastIndex(l[0], "/")
		recordHistory(t, st.Client, l[0][:i], l[0][i+1:], "scheduled_run_backfill")
	}
	entries, err := reg.Reports(ctx, registry.ReportFilter{Pipeline: "nightly"})
	if err != nil || len(entries) != 30 {
		t.Fatalf("%d reports indexed (%v), want 30", len(entries), err)
	}
	// The drift grows over the days (demo-data): the last report sees it,
	// with a trend over the earlier ones.
	s := readSummary(t, entries[29])
	if !s.Drift.Drifted || len(s.Trend) != 8 || s.Performance == nil || s.Performance.LabeledRows != 400 {
		t.Errorf("last report: drifted %v, trend %d points, performance %+v", s.Drift.Drifted, len(s.Trend), s.Performance)
	}
	if first := readSummary(t, entries[0]); first.Drift.Drifted {
		t.Errorf("the first day (no drift) reports dataset drift: %d of %d features", first.Drift.DriftedColumns, len(first.Drift.Columns))
	}
	out, err = kiln(t, st, home, "runs", "list", "--pipeline", "nightly", "--trigger", "backfill", "--limit", "100", "--json")
	if err != nil || strings.Count(out, `"workflow_id"`) != 30 {
		t.Errorf("runs list --trigger backfill: %v, %d runs", err, strings.Count(out, `"workflow_id"`))
	}

	// Again with --reprocess missing: nothing to do, no run started.
	out, err = kiln(t, st, home, "schedules", "backfill", "nightly", "--from", from, "--to", to, "--wait")
	if err != nil || !strings.Contains(out, "Nothing to backfill") {
		t.Errorf("second backfill: %v\n%s", err, out)
	}
	if n := countRuns(pipelineRuns(t, st.Client, "nightly")); n != 30 {
		t.Errorf("%d runs after backfilling done dates, want still 30", n)
	}

	// --reprocess all replaces every output and report, atomically.
	stop := make(chan struct{})
	var partial atomic.Int64
	var reads atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, d := range days {
				reads.Add(1)
				if msg := checkComplete(dir, d, entries[0].URI); msg != "" {
					partial.Add(1)
					t.Log(msg)
				}
			}
		}
	}()
	out, err = kiln(t, st, home, "schedules", "backfill", "nightly", "--from", from, "--to", to, "--reprocess", "all", "--wait", "--timeout", "10m")
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backfill --reprocess all: %v\n%s", err, out)
	}
	if n := partial.Load(); n > 0 {
		t.Errorf("readers saw %d partial outputs or reports in %d reads", n, reads.Load())
	}
	t.Logf("%d complete reads while 30 dates were replaced", reads.Load())
	runs = pipelineRuns(t, st.Client, "nightly")
	for _, d := range days {
		if n := len(runs[activities.PipelineID("nightly", d)]); n != 2 {
			t.Errorf("date %s ran %d times after --reprocess all, want 2", d, n)
		}
		man, err := scorer.ReadSuccess(filepath.Join(dir, "scored", "date="+d))
		if err != nil || !man.Committed.After(committed[d]) {
			t.Errorf("output of %s was not replaced (%v)", d, err)
		}
	}

	// A manual trigger runs the latest complete date (not today's).
	out, err = kiln(t, st, home, "schedules", "trigger", "nightly", "--json")
	if err != nil {
		t.Fatalf("trigger: %v\n%s", err, out)
	}
	var trig struct {
		LogicalDate string `json:"logical_date"`
		WorkflowID  string `json:"workflow_id"`
	}
	if err := json.Unmarshal([]byte(out), &trig); err != nil || trig.LogicalDate != last {
		t.Fatalf("trigger ran logical date %q (%v), want %s", trig.LogicalDate, err, last)
	}
	if today := time.Now().In(mustZone(t, "Europe/Paris")).Format(time.DateOnly); last == today {
		t.Fatalf("the latest complete logical date %s is today's date: the cron rule is wrong", last)
	}
	eventually(t, 2*time.Minute, "the triggered run", func() bool {
		return len(pipelineRuns(t, st.Client, "nightly")[trig.WorkflowID]) == 3
	})
	var rs workflows.RunStatus
	if err := st.Client.GetWorkflow(ctx, trig.WorkflowID, "").Get(ctx, &rs); err != nil {
		t.Fatal(err)
	}
	if rs.LogicalDate != last || rs.TriggeredBy != activities.TriggerManual {
		t.Errorf("triggered run: logical date %q, trigger %q", rs.LogicalDate, rs.TriggeredBy)
	}
	out, err = kiln(t, st, home, "schedules", "describe", "nightly")
	if err != nil || !strings.Contains(out, "Next 10 firings") || !strings.Contains(out, last) {
		t.Errorf("describe: %v\n%s", err, out)
	}
	out, err = kiln(t, st, home, "reports", "show", "nightly", last)
	if err != nil || !strings.Contains(out, "Feature drift") {
		t.Errorf("reports show: %v\n%s", err, out)
	}
	// The local page lists the reports and serves them.
	resp, err := http.Get(st.ReportsURL + "/reports/nightly/report/" + last)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("<svg")) {
		t.Errorf("report page: HTTP %d, %d bytes", resp.StatusCode, len(body))
	}
	if out, err := kiln(t, st, home, "schedules", "delete", "nightly"); err != nil {
		t.Errorf("delete: %v\n%s", err, out)
	}
}

func countRuns(m map[string][]string) int {
	n := 0
	for _, r := range m {
		n += len(r)
	}
	return n
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func readSummary(t *testing.T, e registry.ReportEntry) report.Summary {
	t.Helper()
	p := strings.TrimPrefix(e.URI, "file://")
	b, err := os.ReadFile(filepath.Join(p, "summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s report.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkComplete reads a date's output and report as a consumer would and
// returns what was partial, or "".
func checkComplete(dir, date, anyReport string) string {
	out := filepath.Join(dir, "scored", "date="+date)
	man, err := scorer.ReadSuccess(out)
	if err != nil {
		return fmt.Sprintf("output %s: %v", date, err)
	}
	for _, p := range man.Parts {
		if _, err := os.Stat(filepath.Join(out, p.File)); err != nil {
			return fmt.Sprintf("output %s: part %s: %v", date, p.File, err)
		}
	}
	rep := filepath.Join(filepath.Dir(strings.TrimPrefix(anyReport, "file://")), date)
	for _, f := range []string{"summary.json", "report.html"} {
		if _, err := os.Stat(filepath.Join(rep, f)); err != nil {
			return fmt.Sprintf("report %s: %v", date, err)
		}
	}
	return ""
}

// TestScheduleDSTOnRealServer runs daily schedules through Temporal's own
// schedule evaluation across the 2026 DST transitions (a backfill over whole
// windows is the schedule's clock moved through those days): a 02:30
// Europe/Paris schedule over both transitions, its spring-forward run shifted
// to 03:30 and its fall-back night's 02:30 run once, at its first occurrence;
// and a 01:30 America/New_York schedule over the fall-back night, where
// Temporal fires 01:30 EDT and 01:30 EST and the launcher skips the second.
// Each gives exactly one pipeline run per local day.
func TestScheduleDSTOnRealServer(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	st := startStack(t, false)
	dir := t.TempDir()
	ctx := context.Background()
	paris, ny := mustZone(t, "Europe/Paris"), mustZone(t, "America/New_York")
	cases := []struct {
		name, cron string
		loc        *time.Location
		windows    [][2]time.Time
		want       []string
		skips      int
	}{
		{
			name: "dst-paris", cron: "30 2 * * *", loc: paris,
			windows: [][2]time.Time{
				{time.Date(2026, 3, 27, 0, 0, 0, 0, paris), time.Date(2026, 3, 31, 12, 0, 0, 0, paris)},
				{time.Date(2026, 10, 23, 0, 0, 0, 0, paris), time.Date(2026, 10, 27, 12, 0, 0, 0, paris)},
			},
			want: []string{"2026-03-26", "2026-03-27", "2026-03-28", "2026-03-29", "2026-03-30",
				"2026-10-22", "2026-10-23", "2026-10-24", "2026-10-25", "2026-10-26"},
		},
		{
			name: "dst-ny", cron: "30 1 * * *", loc: ny,
			windows: [][2]time.Time{{time.Date(2026, 10, 30, 12, 0, 0, 0, ny), time.Date(2026, 11, 3, 12, 0, 0, 0, ny)}},
			want:    []string{"2026-10-30", "2026-10-31", "2026-11-01", "2026-11-02"},
			skips:   1,
		},
	}
	for _, tc := range cases {
		spec := filepath.Join(dir, tc.name+".yaml")
		writeFile(t, spec, fmt.Sprintf(`apiVersion: kiln/v1
kind: Pipeline
name: %s
schedule: {cron: %q, timezone: %s}
steps:
  - {name: mark, uses: noop}
`, tc.name, tc.cron, tc.loc))
		if out, err := kiln(t, st, st.Home, "schedules", "create", spec, "--paused"); err != nil {
			t.Fatalf("create %s: %v\n%s", tc.name, err, out)
		}
		var windows []client.ScheduleBackfill
		for _, w := range tc.windows {
			windows = append(windows, client.ScheduleBackfill{Start: w[0], End: w[1], Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL})
		}
		if err := st.Client.ScheduleClient().GetHandle(ctx, tc.name).Backfill(ctx, client.ScheduleBackfillOptions{Backfill: windows}); err != nil {
			t.Fatal(err)
		}
	}
	// Pause and unpause keep a note of who and why.
	for _, verb := range []string{"unpause", "pause"} {
		if out, err := kiln(t, st, st.Home, "schedules", verb, "dst-paris", "--reason", "e2e"); err != nil || !strings.Contains(out, verb+"d by") {
			t.Errorf("%s: %v\n%s", verb, err, out)
		}
	}
	if d, err := st.Client.ScheduleClient().GetHandle(ctx, "dst-paris").Describe(ctx); err != nil || !d.Schedule.State.Paused || !strings.HasSuffix(d.Schedule.State.Note, ": e2e") {
		t.Errorf("after pause: %+v, %v", d.Schedule.State, err)
	}
	for _, tc := range cases {
		keys := func() []string {
			var got []string
			for id, rr := range pipelineRuns(t, st.Client, tc.name) {
				for range rr {
					got = append(got, strings.TrimPrefix(id, "pipeline/"+tc.name+"/"))
				}
			}
			sort.Strings(got)
			return got
		}
		eventually(t, 2*time.Minute, tc.name+"'s runs", func() bool { return len(keys()) >= len(tc.want) })
		time.Sleep(2 * time.Second) // an extra run would show up now
		if got := keys(); strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%s: runs by logical date:\n got %v\nwant %v", tc.name, got, tc.want)
		}
		// Every firing Temporal made is a launcher.
		resp, err := st.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default",
			Query: fmt.Sprintf("WorkflowType = '%s' AND TemporalScheduledById = '%s'", activities.WorkflowScheduledRun, tc.name)})
		if err != nil {
			t.Fatal(err)
		}
		skipped, shifted := 0, false
		for _, e := range resp.GetExecutions() {
			var res workflows.ScheduledRunResult
			if err := st.Client.GetWorkflow(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId()).Get(ctx, &res); err != nil {
				t.Fatalf("%s: %v", e.GetExecution().GetWorkflowId(), err)
			}
			if res.Skipped != "" {
				skipped++
				t.Logf("%s: firing %s skipped: %s", tc.name, e.GetExecution().GetWorkflowId(), res.Skipped)
				recordHistory(t, st.Client, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), "scheduled_run_skipped_dst")
				continue
			}
			if tc.name == "dst-paris" && res.Run.Key == "2026-03-28" {
				local := res.Run.Nominal.In(paris)
				shifted = local.Hour() == 3 && local.Minute() == 30
			}
		}
		if skipped != tc.skips {
			t.Errorf("%s: %d firings skipped, want %d", tc.name, skipped, tc.skips)
		}
		if tc.name == "dst-paris" && !shifted {
			t.Error("dst-paris: the firing of 2026-03-29 (logical date 2026-03-28) did not run at 03:30 CEST")
		}
	}
}

// TestScheduleDeadlineAlert pauses a schedule with a report deadline and a
// webhook: although no run starts, the missing report raises an alert that
// the webhook receives, describe shows and /metrics exports.
func TestScheduleDeadlineAlert(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	st := startStack(t, false)
	var mu sync.Mutex
	var got []activities.MissingReportAlert
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a activities.MissingReportAlert
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		mu.Lock()
		got = append(got, a)
		mu.Unlock()
	}))
	defer hook.Close()
	dir := t.TempDir()
	spec := filepath.Join(dir, "deadline.yaml")
	writeFile(t, spec, fmt.Sprintf(`apiVersion: kiln/v1
kind: Pipeline
name: watched
schedule: {cron: "@every 10s", deadline: 3s, webhook: %q}
steps:
  - {name: score, uses: score, with: {model: nothing@production, input: none.parquet}}
  - {name: report, uses: report, needs: [score]}
`, hook.URL+"/alerts"))
	if out, err := kiln(t, st, st.Home, "schedules", "create", spec, "--paused"); err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	eventually(t, 45*time.Second, "the webhook to receive a missing-report alert", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	mu.Lock()
	a := got[0]
	mu.Unlock()
	if a.Schedule != "watched" || a.Kind != registry.AlertMissingReport || a.RunKey == "" || len(a.Missing) != 1 || a.Missing[0] != "report" {
		t.Errorf("alert = %+v", a)
	}
	out, err := kiln(t, st, st.Home, "schedules", "describe", "watched", "--json")
	if err != nil {
		t.Fatalf("describe: %v\n%s", err, out)
	}
	var v struct {
		Paused bool             `json:"paused"`
		Alerts []registry.Alert `json:"alerts"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || !v.Paused || len(v.Alerts) == 0 || !strings.HasPrefix(v.Alerts[len(v.Alerts)-1].Delivery, "delivered") {
		t.Errorf("describe: paused %v, alerts %+v (%v)", v.Paused, v.Alerts, err)
	}
	resp, err := http.Get(st.ReportsURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(body, []byte(`kiln_schedule_missing_reports{schedule="watched"}`)) {
		t.Errorf("/metrics lacks the missing-report gauge:\n%s", body)
	}
	recordHistory(t, st.Client, activities.DeadlineID("watched"), "", "deadline_missing_report")
	if n := countRuns(pipelineRuns(t, st.Client, "watched")); n != 0 {
		t.Errorf("a paused schedule ran %d times", n)
	}
	if out, err := kiln(t, st, st.Home, "schedules", "delete", "watched"); err != nil {
		t.Errorf("delete: %v\n%s", err, out)
	}
}
