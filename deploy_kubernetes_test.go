package wsdest_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/wsdest/wsdest/internal/config"
)

// The Kubernetes manifests in deploy/kubernetes are checked here, offline:
// parsed, and held to what the service needs (the probes on the right
// endpoints, a grace period that fits the shutdown, non-root, read-only,
// no capabilities, secrets only by reference, every variable one wsdest
// reads, the selectors and ports matching across the objects).

// k8sObject is the part of a manifest the checks read; the rest stays in
// Raw.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Raw  map[string]any    `yaml:"-"`
	File string            `yaml:"-"`
}

type k8sContainer struct {
	Name  string `yaml:"name"`
	Image string `yaml:"image"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `yaml:"name"`
				Key      string `yaml:"key"`
				Optional bool   `yaml:"optional"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	ReadinessProbe k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  k8sProbe `yaml:"livenessProbe"`
	Lifecycle      struct {
		PreStop struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool  `yaml:"readOnlyRootFilesystem"`
		Capabilities             struct {
			Drop []string `yaml:"drop"`
		} `yaml:"capabilities"`
	} `yaml:"securityContext"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	PeriodSeconds    int `yaml:"periodSeconds"`
	FailureThreshold int `yaml:"failureThreshold"`
}

type k8sDeployment struct {
	Spec struct {
		Replicas int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				TerminationGracePeriodSeconds int  `yaml:"terminationGracePeriodSeconds"`
				AutomountServiceAccountToken  bool `yaml:"automountServiceAccountToken"`
				SecurityContext               struct {
					RunAsNonRoot bool `yaml:"runAsNonRoot"`
					RunAsUser    int  `yaml:"runAsUser"`
				} `yaml:"securityContext"`
				Containers []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

const k8sDir = "deploy/kubernetes"

// k8sObjects parses every manifest in deploy/kubernetes, by kind.
func k8sObjects(t *testing.T) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", k8sDir, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var o k8sObject
		if err := yaml.Unmarshal(b, &o); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if o.Kind == "" || o.APIVersion == "" {
			t.Fatalf("%s: no kind or apiVersion", f)
		}
		if _, dup := out[o.Kind]; dup {
			t.Fatalf("%s: a second %s", f, o.Kind)
		}
		out[o.Kind] = b
	}
	return out
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestKubernetesManifests(t *testing.T) {
	objs := k8sObjects(t)
	for _, kind := range []string{"Kustomization", "ConfigMap", "Secret", "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceMonitor"} {
		if objs[kind] == nil {
			t.Fatalf("%s: no %s", k8sDir, kind)
		}
	}

	// The kustomization names files that exist; what it leaves out is the
	// example Secret and the optional objects.
	kust := decode[struct {
		Resources []string `yaml:"resources"`
	}](t, objs["Kustomization"])
	for _, r := range kust.Resources {
		if _, err := os.Stat(filepath.Join(k8sDir, r)); err != nil {
			t.Errorf("kustomization.yaml: %v", err)
		}
	}
	if want := []string{"configmap.yaml", "deployment.yaml", "service.yaml", "pdb.yaml"}; !slices.Equal(kust.Resources, want) {
		t.Errorf("kustomization.yaml resources %q, want %q", kust.Resources, want)
	}

	d := decode[k8sDeployment](t, objs["Deployment"])
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("deployment: %d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	labels := d.Spec.Template.Metadata.Labels
	if !subset(d.Spec.Selector.MatchLabels, labels) || len(d.Spec.Selector.MatchLabels) == 0 {
		t.Errorf("deployment selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, labels)
	}
	if d.Spec.Replicas < 2 {
		t.Errorf("deployment: %d replicas; with a PodDisruptionBudget of one, want at least 2", d.Spec.Replicas)
	}

	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	cm := decode[k8sObject](t, objs["ConfigMap"])
	settings := map[string]string{}
	for k, v := range cm.Data {
		settings[k] = v
	}
	for _, e := range c.Env {
		switch {
		case e.Value != nil:
			settings[e.Name] = *e.Value
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Optional:
			// Unset unless the Secret has the key.
		default:
			settings[e.Name] = "(secret)"
		}
	}
	port := 8000
	if v, ok := settings[config.EnvPort]; ok {
		port, _ = strconv.Atoi(v)
	}
	if ports["http"] != port {
		t.Errorf("container port http = %d, want PORT %d", ports["http"], port)
	}
	if addr := settings[config.EnvMetricsAddr]; !strings.HasSuffix(addr, ":"+strconv.Itoa(ports["metrics"])) || ports["metrics"] == 0 {
		t.Errorf("METRICS_ADDR %q and container port metrics %d do not match", addr, ports["metrics"])
	}

	// Probes on the right endpoints and port.
	if p := c.ReadinessProbe.HTTPGet; p == nil || p.Path != "/readyz" || p.Port != "http" {
		t.Errorf("readiness probe %+v, want GET /readyz on http", p)
	}
	if p := c.LivenessProbe.HTTPGet; p == nil || p.Path != "/healthz" || p.Port != "http" {
		t.Errorf("liveness probe %+v, want GET /healthz on http", p)
	}

	// The grace period covers the preStop sleep, SHUTDOWN_TIMEOUT and a
	// margin for the Kafka client's close.
	shutdown := config.DefaultShutdownTimeout
	if v, ok := settings[config.EnvShutdownTimeout]; ok {
		var err error
		if shutdown, err = time.ParseDuration(v); err != nil {
			t.Fatalf("SHUTDOWN_TIMEOUT %q: %v", v, err)
		}
	}
	if c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds < 2 {
		t.Fatalf("preStop: want a sleep action of a few seconds (the image has no shell)")
	}
	need := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds)*time.Second + shutdown + 5*time.Second
	if grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second; grace < need {
		t.Errorf("terminationGracePeriodSeconds %v, want at least %v (preStop + SHUTDOWN_TIMEOUT + 5 s)", grace, need)
	}

	// Locked down: the image's non-root user, read-only, no capabilities.
	if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser != 65532 || pod.AutomountServiceAccountToken {
		t.Errorf("pod security: %+v automount=%v, want non-root user 65532 (the image's) and no service account token", pod.SecurityContext, pod.AutomountServiceAccountToken)
	}
	sc := c.SecurityContext
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !sc.ReadOnlyRootFilesystem || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("container security %+v, want no privilege escalation, a read-only root and every capability dropped", sc)
	}

	// Resources: requests and a memory limit above them, with the Go heap
	// held under the limit.
	reqMem, limMem := quantity(t, c.Resources.Requests["memory"]), quantity(t, c.Resources.Limits["memory"])
	if c.Resources.Requests["cpu"] == "" || reqMem == 0 || limMem < reqMem {
		t.Errorf("resources %+v, want a CPU and memory request and a memory limit at least the request", c.Resources)
	}
	if gml := quantity(t, strings.TrimSuffix(settings["GOMEMLIMIT"], "B")); gml == 0 || gml >= limMem {
		t.Errorf("GOMEMLIMIT %q, want it set below the memory limit %s", settings["GOMEMLIMIT"], c.Resources.Limits["memory"])
	}

	// Secrets only by reference, and every name one wsdest reads.
	secrets := []string{config.EnvAPIKeys, config.EnvWSPassword, config.EnvSASLPassword, config.EnvSDKToken, config.EnvJWTSecret}
	var names []string
	for k := range cm.Data {
		names = append(names, k)
		if slices.Contains(secrets, k) {
			t.Errorf("configmap.yaml holds the secret %s; use the Secret", k)
		}
	}
	for _, e := range c.Env {
		names = append(names, e.Name)
		if slices.Contains(secrets, e.Name) && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "wsdest") {
			t.Errorf("env %s: want a reference to the Secret wsdest", e.Name)
		}
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil || c.EnvFrom[0].ConfigMapRef.Name != cm.Metadata.Name {
		t.Errorf("envFrom %+v, want the ConfigMap %s", c.EnvFrom, cm.Metadata.Name)
	}
	lookup := func(n string) (string, bool) { v, ok := settings[n]; return v, ok }
	if err := config.CheckNames(names, lookup); err != nil {
		t.Errorf("manifests: %v", err)
	}
	if _, err := config.FromEnv(func(n string) (string, bool) {
		if v, ok := lookup(n); ok && v == "(secret)" {
			return "x", true // a placeholder: the config must parse with the secrets set
		}
		return lookup(n)
	}); err != nil {
		t.Errorf("the manifests' settings do not start wsdest: %v", err)
	}
	srcs, err := filepath.Glob("internal/config/*.go")
	if err != nil {
		t.Fatal(err)
	}
	var code []byte
	for _, f := range srcs {
		if !strings.HasSuffix(f, "_test.go") {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			code = append(code, b...)
		}
	}
	for _, n := range names {
		if n != "GOMEMLIMIT" && !strings.Contains(string(code), `"`+n+`"`) {
			t.Errorf("manifests set %s, which internal/config does not read", n)
		}
	}

	// The Service, the budget, the autoscaler and the ServiceMonitor aim
	// at these pods and ports.
	svc := decode[struct {
		Metadata struct {
			Labels map[string]string `yaml:"labels"`
		} `yaml:"metadata"`
		Spec struct {
			Selector map[string]string `yaml:"selector"`
			Ports    []struct {
				Name       string `yaml:"name"`
				TargetPort string `yaml:"targetPort"`
			} `yaml:"ports"`
		} `yaml:"spec"`
	}](t, objs["Service"])
	if !subset(svc.Spec.Selector, labels) || len(svc.Spec.Selector) == 0 {
		t.Errorf("service selector %v does not select the pods %v", svc.Spec.Selector, labels)
	}
	var svcPorts []string
	for _, p := range svc.Spec.Ports {
		if _, ok := ports[p.TargetPort]; !ok {
			t.Errorf("service port %s targets %q, not a container port", p.Name, p.TargetPort)
		}
		svcPorts = append(svcPorts, p.Name)
	}
	pdb := decode[struct {
		Spec struct {
			MaxUnavailable int `yaml:"maxUnavailable"`
			Selector       struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}](t, objs["PodDisruptionBudget"])
	if !subset(pdb.Spec.Selector.MatchLabels, labels) || pdb.Spec.MaxUnavailable != 1 {
		t.Errorf("PodDisruptionBudget %+v, want maxUnavailable 1 over the pods %v", pdb.Spec, labels)
	}
	hpa := decode[struct {
		Spec struct {
			ScaleTargetRef struct {
				Kind string `yaml:"kind"`
				Name string `yaml:"name"`
			} `yaml:"scaleTargetRef"`
			MinReplicas int `yaml:"minReplicas"`
		} `yaml:"spec"`
	}](t, objs["HorizontalPodAutoscaler"])
	if hpa.Spec.ScaleTargetRef.Kind != "Deployment" || hpa.Spec.ScaleTargetRef.Name != "wsdest" || hpa.Spec.MinReplicas < 2 {
		t.Errorf("HorizontalPodAutoscaler %+v, want the Deployment wsdest, at least 2 replicas", hpa.Spec)
	}
	sm := decode[struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Endpoints []struct {
				Port string `yaml:"port"`
				Path string `yaml:"path"`
			} `yaml:"endpoints"`
		} `yaml:"spec"`
	}](t, objs["ServiceMonitor"])
	if !subset(sm.Spec.Selector.MatchLabels, svc.Metadata.Labels) || len(sm.Spec.Endpoints) != 1 ||
		!slices.Contains(svcPorts, sm.Spec.Endpoints[0].Port) || sm.Spec.Endpoints[0].Path != "/metrics" {
		t.Errorf("ServiceMonitor %+v, want /metrics on a port of the Service %v (labels %v)", sm.Spec, svcPorts, svc.Metadata.Labels)
	}
}

// subset reports whether every label of sel is in labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// quantity parses a Kubernetes memory quantity with a binary suffix
// (Ki, Mi, Gi) or none, in bytes; 0 for "".
func quantity(t *testing.T, q string) int64 {
	t.Helper()
	if q == "" {
		return 0
	}
	mult := int64(1)
	for suffix, m := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if strings.HasSuffix(q, suffix) {
			q, mult = strings.TrimSuffix(q, suffix), m
		}
	}
	n, err := strconv.ParseInt(q, 10, 64)
	if err != nil {
		t.Fatalf("quantity %q: %v", q, err)
	}
	return n * mult
}
