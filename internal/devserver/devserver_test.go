package devserver

import (
	"context"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/sdk/client"
)

// TestRestartKeepsState starts a file-backed server, registers a search
// attribute, restarts it on the same file and checks the attribute and the UI.
func TestRestartKeepsState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Temporal server")
	}
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "temporal.db")
	attrs := map[string]enumspb.IndexedValueType{"KilnTest": enumspb.INDEXED_VALUE_TYPE_KEYWORD}
	for i := 0; i < 2; i++ {
		s, err := Start(ctx, Options{DatabaseFile: db, IP: "127.0.0.1", UI: i == 1, SearchAttributes: attrs})
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		c, err := client.Dial(client.Options{HostPort: s.Address(), Namespace: "default", Logger: quietLogger{}})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := resp.GetCustomAttributes()["KilnTest"]; !ok {
			t.Errorf("start %d: search attribute KilnTest missing: %v", i, resp.GetCustomAttributes())
		}
		if i == 1 {
			var ok bool
			for j := 0; j < 50 && !ok; j++ {
				r, err := http.Get(s.UIURL())
				if err == nil {
					ok = r.StatusCode == http.StatusOK
					r.Body.Close()
				}
				if !ok {
					time.Sleep(100 * time.Millisecond)
				}
			}
			if !ok {
				t.Errorf("UI at %s did not answer 200", s.UIURL())
			}
		}
		c.Close()
		if err := s.Stop(); err != nil {
			t.Errorf("stop %d: %v", i, err)
		}
	}
}
