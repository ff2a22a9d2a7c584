package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/internal/devstack"
	"github.com/kiln-ml/kiln/internal/registry"
	"github.com/kiln-ml/kiln/worker"
	"github.com/kiln-ml/kiln/workflows"
)

// TestPromoteThroughTheCLI promotes and rolls back against the real embedded
// server and a worker: a plain promotion, one that waits for an approval
// (a second promotion of the alias meanwhile is refused), then a rollback.
func TestPromoteThroughTheCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	ctx := context.Background()
	st, err := devstack.Start(ctx, devstack.Options{
		Home: t.TempDir(), Ephemeral: true, NoServer: true, Worker: worker.Config{NoDocker: true},
	})
	if err != nil {
		t.Fatalf("starting the stack: %v", err)
	}
	t.Cleanup(st.Stop)
	reg := st.Activities.Registry
	for _, v := range []registry.Version{
		{Model: "churn", BundleURI: "file:///b1"},
		{Model: "churn", BundleURI: "file:///b2", RequireApproval: []string{"production"}},
	} {
		if _, _, err := reg.Register(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	production := func() int64 {
		v, _, err := reg.Alias(ctx, "churn", "production")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	out, err := kiln(t, st, st.Home, "models", "promote", "churn", "1", "--to", "production", "--reason", "first release", "--as", "bob")
	if err != nil || !strings.Contains(out, "Promoted churn@production: - → 1") || production() != 1 {
		t.Fatalf("promote 1: %v\n%s", err, out)
	}

	wid := workflows.PromoteID("churn", "production")
	if _, err := kiln(t, st, st.Home, "models", "promote", "churn", "2", "--to", "production", "--reason", "better", "--wait=false"); err != nil {
		t.Fatalf("promote 2: %v", err)
	}
	eventually(t, 30*time.Second, "the promotion to wait for its approval", func() bool {
		v, err := st.Client.QueryWorkflow(ctx, wid, "", workflows.QueryStatus)
		var ps workflows.PromoteStatus
		return err == nil && v.Get(&ps) == nil && ps.State == "waiting"
	})
	if _, err := kiln(t, st, st.Home, "models", "promote", "churn", "1", "--to", "production", "--reason", "race"); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("a second promotion while one runs: %v, want a refusal", err)
	}
	if production() != 1 {
		t.Fatal("production moved before the approval")
	}
	if _, err := kiln(t, st, st.Home, "approve", wid, workflows.PromoteStep, "--reason", "reviewed", "--as", "ana"); err != nil {
		t.Fatalf("kiln approve: %v", err)
	}
	var ps workflows.PromoteStatus
	if err := st.Client.GetWorkflow(ctx, wid, "").Get(ctx, &ps); err != nil {
		t.Fatalf("promotion after the approval: %v", err)
	}
	if ps.To != 2 || ps.Approval == nil || ps.Approval.By != "ana" || production() != 2 {
		t.Fatalf("promotion %+v, production v%d", ps, production())
	}

	out, err = kiln(t, st, st.Home, "models", "rollback", "churn", "--alias", "production", "--reason", "error rate up")
	if err != nil || !strings.Contains(out, "Rolled back churn@production: 2 → 1") || production() != 1 {
		t.Fatalf("rollback: %v\n%s", err, out)
	}

	out, err = kiln(t, st, st.Home, "--json", "models", "history", "churn", "--alias", "production")
	var events []registry.AliasEvent
	if err != nil || json.Unmarshal([]byte(out), &events) != nil || len(events) != 3 {
		t.Fatalf("history: %v\n%s", err, out)
	}
	for i, e := range events {
		if e.RunID != wid {
			t.Errorf("move %d was made by %q, want %s", i, e.RunID, wid)
		}
	}
	if !strings.Contains(events[1].Reason, "approved by ana: reviewed") || events[2].Reason != "error rate up" || events[0].Actor != "bob" {
		t.Errorf("history %+v", events)
	}
}
