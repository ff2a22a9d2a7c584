// Package deploy holds Kiln's deployment files (docker-compose.yml, the
// Kubernetes manifests in k8s/, the Dockerfile). Its test checks them
// without a cluster: the compose file against docker-compose's own schema,
// the manifests' structure and references, and every kiln command line in
// them against the CLI's flags, so a renamed flag breaks the test and not
// a deployment.
package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/internal/cli"
)

// checkKilnArgs fails unless args is a kiln command line the CLI accepts
// (the command exists and every flag parses).
func checkKilnArgs(t *testing.T, where string, args []string) {
	t.Helper()
	if err := cli.CheckArgs(args); err != nil {
		t.Errorf("%s: kiln %s: %v", where, strings.Join(args, " "), err)
	}
}

// docs reads the YAML documents of a file.
func docs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	dec := yaml.NewDecoder(f)
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			out = append(out, d)
		}
	}
}

// get walks a decoded YAML document.
func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func strs(v any) []string {
	var out []string
	for _, x := range asList(v) {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func asList(v any) []any { l, _ := v.([]any); return l }

// envKeys reads the keys of a KEY=value file.
func envKeys(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keys := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = true
		}
	}
	return keys
}

// TestKustomize checks k8s/: every listed resource exists and is a well
// formed object; Deployments select their own pods, run kiln command lines
// the CLI accepts, read only the generated Secret's keys and ConfigMap, and
// mount only claims defined here; a GPU queue worker exists.
func TestKustomize(t *testing.T) {
	k := docs(t, filepath.Join("k8s", "kustomization.yaml"))[0]
	if get(k, "kind") != "Kustomization" {
		t.Fatalf("kustomization.yaml: kind %v", get(k, "kind"))
	}
	secrets, configs := map[string]map[string]bool{}, map[string]bool{}
	for _, g := range asList(get(k, "secretGenerator")) {
		keys := map[string]bool{}
		for _, env := range strs(get(g, "envs")) {
			for key := range envKeys(t, filepath.Join("k8s", env+".example")) {
				keys[key] = true
			}
		}
		secrets[get(g, "name").(string)] = keys
	}
	for _, g := range asList(get(k, "configMapGenerator")) {
		configs[get(g, "name").(string)] = true
	}
	claims := map[string]bool{}
	var deployments []map[string]any
	for _, r := range strs(get(k, "resources")) {
		for _, d := range docs(t, filepath.Join("k8s", r)) {
			if get(d, "apiVersion") == nil || get(d, "kind") == nil || get(d, "metadata", "name") == nil {
				t.Errorf("%s: an object without apiVersion, kind or metadata.name: %v", r, d)
			}
			switch get(d, "kind") {
			case "PersistentVolumeClaim":
				claims[get(d, "metadata", "name").(string)] = true
			case "Deployment":
				deployments = append(deployments, d)
			}
		}
	}
	gpu := false
	for _, d := range deployments {
		name, _ := get(d, "metadata", "name").(string)
		sel, _ := get(d, "spec", "selector", "matchLabels").(map[string]any)
		labels, _ := get(d, "spec", "template", "metadata", "labels").(map[string]any)
		for key, v := range sel {
			if labels[key] != v {
				t.Errorf("%s: selector %s=%v does not match the pod labels %v", name, key, v, labels)
			}
		}
		spec := get(d, "spec", "template", "spec")
		for _, c := range asList(get(spec, "containers")) {
			if get(c, "image") == nil {
				t.Errorf("%s: a container without an image", name)
			}
			args := strs(get(c, "args"))
			checkKilnArgs(t, name, args)
			if len(args) > 2 && args[0] == "worker" && strings.Contains(strings.Join(args, " "), "--queues gpu") {
				gpu = get(c, "resources", "limits", "nvidia.com/gpu") != nil
			}
			for _, e := range asList(get(c, "env")) {
				if ref := get(e, "valueFrom", "secretKeyRef"); ref != nil {
					sname, _ := get(ref, "name").(string)
					key, _ := get(ref, "key").(string)
					if !secrets[sname][key] {
						t.Errorf("%s: env %v reads secret %s key %s, which kustomization.yaml does not generate", name, get(e, "name"), sname, key)
					}
				}
			}
			for _, e := range asList(get(c, "envFrom")) {
				if cm, _ := get(e, "configMapRef", "name").(string); cm != "" && !configs[cm] {
					t.Errorf("%s: envFrom config map %s is not generated", name, cm)
				}
			}
		}
		for _, v := range asList(get(spec, "volumes")) {
			if claim, _ := get(v, "persistentVolumeClaim", "claimName").(string); claim != "" && !claims[claim] {
				t.Errorf("%s: volume claim %s is not defined", name, claim)
			}
		}
	}
	if !gpu {
		t.Error("no worker Deployment on the gpu queue with an nvidia.com/gpu limit")
	}
}

// TestCompose checks docker-compose.yml with docker-compose's own schema
// (config -q) and every kiln command line in it against the CLI.
func TestCompose(t *testing.T) {
	for _, d := range docs(t, "docker-compose.yml") {
		for name, svc := range get(d, "services").(map[string]any) {
			if get(svc, "build", "dockerfile") == "deploy/Dockerfile" || get(svc, "<<") != nil {
				if args := strs(get(svc, "command")); len(args) > 0 {
					checkKilnArgs(t, name, args)
				}
			}
		}
	}
	bin, err := exec.LookPath("docker-compose")
	if err != nil {
		t.Skip("docker-compose not installed: the schema check needs it (apt-get install docker-compose)")
	}
	cmd := exec.Command(bin, "-f", "docker-compose.yml", "config", "-q")
	cmd.Env = append(os.Environ(), "KILN_ADMIN_TOKEN=test")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Errorf("docker-compose config: %v\n%s", err, out.String())
	}
}
