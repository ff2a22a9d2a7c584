package serving

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestClient checks the client's calls against a real server, and that a
// non-2xx answer is an *HTTPError with the status and the server's message.
func TestClient(t *testing.T) {
	uri1, dir1 := churnBundle(t, 1)
	uri2, _ := churnBundle(t, 2)
	s := newTestServer(t, Options{AdminToken: "tok"})
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	ctx := context.Background()
	admin := &Client{BaseURL: ts.URL + "/", Token: "tok"}

	if err := admin.SetDeployment(ctx, "churn", withCanary(1, uri1, 2, uri2, 0)); err != nil {
		t.Fatal(err)
	}
	resp, err := admin.Predict(ctx, "churn", instances)
	if err != nil {
		t.Fatal(err)
	}
	if err := samePredictions(resp.Predictions, wantPredictions(t, dir1, instances)); err != nil {
		t.Error(err)
	}
	if resp.ModelName != "churn" || resp.ModelVersion != 1 || resp.Variant != "stable" {
		t.Errorf("answer names %s v%d %s", resp.ModelName, resp.ModelVersion, resp.Variant)
	}
	st, err := admin.Stats(ctx, "churn")
	if err != nil {
		t.Fatal(err)
	}
	checkStats(t, st, []VariantStats{{Version: 1, Requests: 1}})

	tests := []struct {
		name string
		call func(c *Client) error
		c    *Client
		code int
		msg  string
	}{
		{"unknown model", func(c *Client) error { _, err := c.Predict(ctx, "nope", instances); return err },
			admin, 404, `model "nope" is not served here`},
		{"bad instance", func(c *Client) error {
			_, err := c.Predict(ctx, "churn", []map[string]any{{"charges": "x"}})
			return err
		}, admin, 400, `model: transform: row 0: column "charges": want a number, got string "x"`},
		{"empty instances", func(c *Client) error { _, err := c.Predict(ctx, "churn", nil); return err },
			admin, 400, `request has no "instances"`},
		{"no token", func(c *Client) error { return c.SetDeployment(ctx, "churn", stable(3, uri2)) },
			&Client{BaseURL: ts.URL}, 401, "missing or wrong bearer token"},
		{"wrong token", func(c *Client) error { _, err := c.Stats(ctx, "churn"); return err },
			&Client{BaseURL: ts.URL, Token: "nope"}, 401, "missing or wrong bearer token"},
		{"bad deployment", func(c *Client) error {
			return c.SetDeployment(ctx, "churn", withCanary(1, uri1, 2, uri2, 101))
		}, admin, 400, "canary_percent 101 is outside 0..100"},
		{"stats of unknown model", func(c *Client) error { _, err := c.Stats(ctx, "nope"); return err },
			admin, 404, `model "nope" is not served here`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call(tt.c)
			var he *HTTPError
			if !errors.As(err, &he) {
				t.Fatalf("error %v (%T), want an *HTTPError", err, err)
			}
			if he.Code != tt.code || he.Message != tt.msg {
				t.Errorf("HTTPError{%d, %q}, want {%d, %q}", he.Code, he.Message, tt.code, tt.msg)
			}
		})
	}
}

// TestClientNonJSONError checks that a non-JSON error answer becomes the
// message, and that a 2xx answer the client cannot decode is an error.
func TestClientNonJSONError(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/models/bad-json:predict" {
			w.Write([]byte("not json"))
			return
		}
		http.Error(w, "upstream is down", http.StatusBadGateway)
	}))
	defer ts.Close()
	c := &Client{BaseURL: ts.URL}
	_, err := c.Predict(context.Background(), "churn", instances)
	var he *HTTPError
	if !errors.As(err, &he) || he.Code != 502 || he.Message != "upstream is down" {
		t.Errorf("error %#v, want HTTPError{502, upstream is down}", err)
	}
	if _, err := c.Predict(context.Background(), "bad-json", instances); err == nil || errors.As(err, &he) {
		t.Errorf("undecodable 200 answer: error %v", err)
	}
}

// TestHotSwap switches deployments repeatedly while four clients send
// requests: no request may fail, and every answer must come from one of the
// deployed versions, with that version's predictions.
func TestHotSwap(t *testing.T) {
	uris := map[int64]string{}
	want := map[int64][]float64{}
	rows := instances[:2]
	for v := int64(1); v <= 3; v++ {
		uri, dir := churnBundle(t, int(v))
		uris[v] = uri
		want[v] = wantPredictions(t, dir, rows)
	}
	s := newTestServer(t, Options{AdminToken: "tok", RequestLogDir: t.TempDir(), FlushInterval: 10 * time.Millisecond, FlushRows: 50})
	deploy(t, s, "churn", stable(1, uris[1]))
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	ctx := context.Background()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var requests, failures atomic.Int64
	seen := make([]map[int64]int, 4)
	for g := range seen {
		seen[g] = map[int64]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &Client{BaseURL: ts.URL}
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := c.Predict(ctx, "churn", rows)
				requests.Add(1)
				if err != nil {
					if failures.Add(1) <= 5 {
						t.Errorf("request failed during a swap: %v", err)
					}
					continue
				}
				seen[g][resp.ModelVersion]++
				p, ok := want[resp.ModelVersion]
				if !ok {
					if failures.Add(1) <= 5 {
						t.Errorf("answer from undeployed version %d", resp.ModelVersion)
					}
					continue
				}
				if err := samePredictions(resp.Predictions, p); err != nil {
					if failures.Add(1) <= 5 {
						t.Errorf("v%d answer: %v", resp.ModelVersion, err)
					}
				}
			}
		}()
	}
	deployments := []Deployment{
		withCanary(1, uris[1], 2, uris[2], 50),
		stable(2, uris[2]),
		withCanary(2, uris[2], 3, uris[3], 10),
		stable(3, uris[3]),
		stable(1, uris[1]),
	}
	admin := &Client{BaseURL: ts.URL, Token: "tok"}
	for i := range 100 {
		d := deployments[i%len(deployments)]
		var err error
		if i%2 == 0 {
			err = admin.SetDeployment(ctx, "churn", d)
		} else {
			err = s.SetDeployment("churn", d)
		}
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	versions := map[int64]int{}
	for g, m := range seen {
		n := 0
		for v, c := range m {
			versions[v] += c
			n += c
		}
		if n == 0 {
			t.Errorf("client %d got no answer", g)
		}
	}
	if len(versions) < 2 {
		t.Errorf("answers by version %v: the swaps were not seen", versions)
	}
	st, _ := s.Stats("churn")
	var counted int64
	for _, v := range st.Variants {
		counted += v.Requests
		if v.Errors != 0 {
			t.Errorf("v%d counted %d errors", v.Version, v.Errors)
		}
	}
	if counted != requests.Load() {
		t.Errorf("stats count %d requests, clients sent %d", counted, requests.Load())
	}
	t.Logf("%d requests, by version %v", requests.Load(), versions)
}
