package serving

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Client calls a Kiln model server.
type Client struct {
	// BaseURL is the server's base URL, e.g. http://127.0.0.1:8080.
	BaseURL string
	// Token is the admin bearer token (admin routes only).
	Token string
	// HTTP is the underlying client; nil means http.DefaultClient.
	HTTP *http.Client
}

// SetDeployment sets a model's traffic split (admin).
func (c *Client) SetDeployment(ctx context.Context, model string, d Deployment) error {
	return c.do(ctx, http.MethodPut, "/admin/v1/models/"+url.PathEscape(model)+"/deployment", d, nil)
}

// Stats reads a model's per-version counters (admin).
func (c *Client) Stats(ctx context.Context, model string) (Stats, error) {
	var st Stats
	err := c.do(ctx, http.MethodGet, "/admin/v1/models/"+url.PathEscape(model)+"/stats", nil, &st)
	return st, err
}

// Predict asks for predictions of instances (maps of column to value).
func (c *Client) Predict(ctx context.Context, model string, instances []map[string]any) (PredictResponse, error) {
	var resp PredictResponse
	err := c.do(ctx, http.MethodPost, "/v1/models/"+url.PathEscape(model)+":predict", map[string]any{"instances": instances}, &resp)
	return resp, err
}

// PredictIDs asks for predictions of instances with the client's own
// prediction IDs (one per instance; see CheckPredictionIDs), which the
// answer echoes and the request log records.
func (c *Client) PredictIDs(ctx context.Context, model string, instances []map[string]any, ids []string) (PredictResponse, error) {
	var resp PredictResponse
	err := c.do(ctx, http.MethodPost, "/v1/models/"+url.PathEscape(model)+":predict", map[string]any{"instances": instances, "ids": ids}, &resp)
	return resp, err
}

// HTTPError is a non-2xx answer from the server.
type HTTPError struct {
	Code    int
	Message string
}

// Error says the status code and the server's message.
func (e *HTTPError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Message) }

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.Token != "" && strings.HasPrefix(path, "/admin/") {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &HTTPError{Code: resp.StatusCode, Message: msg}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decoding %s %s: %w", method, path, err)
		}
	}
	return nil
}
