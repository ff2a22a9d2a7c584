package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestLabelsPushAndList(t *testing.T) {
	home := t.TempDir()
	populate(t, home)
	dir := t.TempDir()
	file := filepath.Join(dir, "outcomes.csv")
	if err := os.WriteFile(file, []byte("prediction_id,churned,at\n007,1,2026-12-01T10:00:00Z\n008,0,\n,1,\n009,maybe,\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	push := []string{"--home", home, "labels", "push", "churn", file, "--id-column", "prediction_id", "--label-column", "churned", "--time-column", "at", "--as", "ada"}

	r := kiln(t, push...)
	if r.err != nil {
		t.Fatalf("push: %v\n%s", r.err, r.stderr)
	}
	for _, want := range []string{
		"outcomes.csv for churn: 2 of 4 rows accepted, 2 rejected.",
		"missing id", "line 4: no id",
		"invalid label", `line 5 (id 009): label "maybe" is not a finite number or a boolean`,
		"1 row had no time and takes the push time.",
		"Pushed as batch 1.",
		filepath.Join(home, "artifacts", "labels", "churn"),
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("push output lacks %q:\n%s", want, r.stdout)
		}
	}

	r = kiln(t, append(push, "--json")...)
	var got struct {
		Batch struct {
			ID       int64  `json:"id"`
			SHA256   string `json:"sha256"`
			Rows     int64  `json:"rows"`
			PushedBy string `json:"pushed_by"`
		} `json:"batch"`
		Report struct {
			Accepted      int64 `json:"accepted"`
			Rejected      int64 `json:"rejected"`
			AlreadyPushed bool  `json:"already_pushed"`
		} `json:"report"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || r.err != nil {
		t.Fatalf("push --json: %v, %v\n%s", err, r.err, r.stdout)
	}
	if got.Batch.ID != 1 || got.Batch.Rows != 2 || got.Batch.PushedBy != "ada" || !got.Report.AlreadyPushed || got.Report.Rejected != 2 {
		t.Errorf("second push --json: %+v", got)
	}
	r = kiln(t, push...)
	if r.err != nil || !strings.Contains(r.stdout, "Already pushed as batch 1 (") || !strings.Contains(r.stdout, "by ada") {
		t.Errorf("third push: %v\n%s", r.err, r.stdout)
	}

	// A second file: defaults for the column names.
	other := filepath.Join(dir, "more.jsonl")
	os.WriteFile(other, []byte(`{"id":"010","label":true,"time":1796119200}`+"\n"), 0o644)
	if r := kiln(t, "--home", home, "labels", "push", "churn", other); r.err != nil || !strings.Contains(r.stdout, "Pushed as batch 2.") {
		t.Fatalf("push jsonl: %v\n%s", r.err, r.stdout)
	}

	r = kiln(t, "--home", home, "labels", "list", "churn")
	if r.err != nil {
		t.Fatal(r.err)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	row := regexp.MustCompile(`^1 +\S+ \S+ +ada +2 +2 +` + got.Batch.SHA256[:12] + ` +outcomes\.csv$`)
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "BATCH") || !row.MatchString(lines[1]) || !strings.HasPrefix(lines[2], "2 ") ||
		lines[3] != "2 batches, 3 labels (2 rows rejected)." {
		t.Errorf("list:\n%s", r.stdout)
	}
	r = kiln(t, "--home", home, "--json", "labels", "list", "churn", "--since", "1h")
	var batches []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &batches); err != nil || len(batches) != 2 || batches[0]["source"] != file {
		t.Errorf("list --json --since 1h: %v\n%s", err, r.stdout)
	}
	for _, since := range []string{"2099-01-01", "2099-01-01T00:00:00Z"} {
		r = kiln(t, "--home", home, "labels", "list", "churn", "--since", since)
		if r.err != nil || !strings.HasPrefix(r.stdout, "No label batches for churn since "+since) {
			t.Errorf("list --since %s: %v\n%s", since, r.err, r.stdout)
		}
	}
	r = kiln(t, "--home", home, "--json", "labels", "list", "breast-cancer", "--since", "7d")
	if r.err != nil || strings.TrimSpace(r.stdout) != "[]" {
		t.Errorf("list of a model without batches --json: %v %q", r.err, r.stdout)
	}
}

func TestLabelsErrors(t *testing.T) {
	home := t.TempDir()
	populate(t, home)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.csv", "id,label\na,1\n")
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"labels", "push", "nope", good}, 1, `model "nope" not found`},
		{[]string{"labels", "push", "churn", filepath.Join(dir, "missing.csv")}, 2, "missing.csv"},
		{[]string{"labels", "push", "churn", write("labels.txt", "id,label\n")}, 2, "unknown format"},
		{[]string{"labels", "push", "churn", dir + "/"}, 2, "unknown format"},
		{[]string{"labels", "push", "churn", write("bad.csv", "id,label\na,x\nb,\n")}, 1, "bad.csv:2: column label"},
		{[]string{"labels", "push", "churn", write("key.csv", "key,label\na,1\n")}, 2, "--id-column"},
		{[]string{"labels", "push", "churn", good, "--time-column", "ts"}, 2, `no time column "ts"`},
		{[]string{"labels", "push", "churn"}, 2, "arg"},
		{[]string{"labels", "list", "nope"}, 1, `model "nope" not found`},
		{[]string{"labels", "list", "churn", "--since", "last tuesday"}, 2, "--since"},
	}
	for _, tt := range tests {
		r := kiln(t, append([]string{"--home", home}, tt.args...)...)
		if r.exitCode() != tt.code || r.err == nil || !strings.Contains(r.err.Error(), tt.want) {
			t.Errorf("kiln %v: exit %d, %v; want exit %d mentioning %q", tt.args, r.exitCode(), r.err, tt.code, tt.want)
		}
	}
}
