package deploy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// podMonitor is the part of the Prometheus Operator's PodMonitor
// (monitoring.coreos.com/v1) that the manifests use; strict decoding
// rejects any other field.
type podMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		JobLabel            string               `json:"jobLabel"`
		Selector            metav1.LabelSelector `json:"selector"`
		PodMetricsEndpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval"`
			ScrapeTimeout string `json:"scrapeTimeout"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

// manifests are the decoded objects of deploy/k8s.
type manifests struct {
	statefulSet *appsv1.StatefulSet
	service     *corev1.Service
	pdb         *policyv1.PodDisruptionBudget
	podMonitor  *podMonitor
	configMaps  map[string]*corev1.ConfigMap
	secrets     map[string]*corev1.Secret
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	paths, err := filepath.Glob("k8s/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in k8s/ (%v)", err)
	}
	ms := manifests{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("\n---")) {
			t.Fatalf("%s: one object per file", p)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(b, &tm); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "apps/v1 StatefulSet":
			ms.statefulSet = &appsv1.StatefulSet{}
			obj = ms.statefulSet
		case "v1 Service":
			ms.service = &corev1.Service{}
			obj = ms.service
		case "policy/v1 PodDisruptionBudget":
			ms.pdb = &policyv1.PodDisruptionBudget{}
			obj = ms.pdb
		case "monitoring.coreos.com/v1 PodMonitor":
			ms.podMonitor = &podMonitor{}
			obj = ms.podMonitor
		case "v1 ConfigMap":
			cm := &corev1.ConfigMap{}
			obj = cm
			defer func() { ms.configMaps[cm.Name] = cm }()
		case "v1 Secret":
			s := &corev1.Secret{}
			obj = s
			defer func() { ms.secrets[s.Name] = s }()
		default:
			t.Fatalf("%s: unexpected %s %s", p, tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(b, obj); err != nil {
			t.Fatalf("%s: strict decode into %s: %v", p, tm.Kind, err)
		}
	}
	return ms
}

// consumerConfig knows the consumer's configuration keys, from its own
// --help, and checks configuration files with --print-config.
type consumerConfig struct {
	bin  string
	envs map[string]bool
}

func buildConsumer(t *testing.T) consumerConfig {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "consumer")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "../cmd/consumer").CombinedOutput(); err != nil {
		t.Fatalf("build consumer: %v\n%s", err, out)
	}
	out, _ := exec.CommandContext(ctx, bin, "run", "--help").CombinedOutput() //nolint:gosec // Test binary.
	envs := map[string]bool{}
	for _, m := range regexp.MustCompile(`env (TEXTPULSE_[A-Z0-9_]+)`).FindAllStringSubmatch(string(out), -1) {
		envs[m[1]] = true
	}
	if len(envs) < 20 {
		t.Fatalf("consumer --help lists %d TEXTPULSE_* variables:\n%s", len(envs), out)
	}
	return consumerConfig{bin: bin, envs: envs}
}

// processEnv are the variables the manifests may set besides the
// consumer's configuration keys: the Go runtime's.
var processEnv = map[string]bool{"GOMEMLIMIT": true, "GOMAXPROCS": true, "GOGC": true}

// TestKubernetesManifests decodes every manifest strictly into its
// Kubernetes API type and checks that they fit together: selectors match
// the pod labels, the ConfigMap and Secret keys they use exist, the probes
// hit /healthz and /readyz on the metrics port the configuration listens
// on, the environment sets real configuration keys, and the mounted
// configuration file is accepted by the consumer.
func TestKubernetesManifests(t *testing.T) {
	ms := loadManifests(t)
	if ms.statefulSet == nil || ms.service == nil || ms.pdb == nil || ms.podMonitor == nil ||
		len(ms.configMaps) == 0 || len(ms.secrets) == 0 {
		t.Fatalf("want a StatefulSet, Service, PodDisruptionBudget, PodMonitor, ConfigMap and Secret; have %+v", ms)
	}
	cc := buildConsumer(t)
	d := ms.statefulSet
	pod := d.Spec.Template
	podLabels := labels.Set(pod.Labels)

	t.Run("selectors", func(t *testing.T) {
		for name, sel := range map[string]*metav1.LabelSelector{
			"StatefulSet":         d.Spec.Selector,
			"PodDisruptionBudget": ms.pdb.Spec.Selector,
			"PodMonitor":          &ms.podMonitor.Spec.Selector,
		} {
			s, err := metav1.LabelSelectorAsSelector(sel)
			if err != nil {
				t.Fatalf("%s selector: %v", name, err)
			}
			if s.Empty() || !s.Matches(podLabels) {
				t.Errorf("%s selector %v does not select the pods (labels %v)", name, s, podLabels)
			}
		}
		if len(ms.service.Spec.Selector) == 0 || !labels.SelectorFromSet(ms.service.Spec.Selector).Matches(podLabels) {
			t.Errorf("Service selector %v does not select the pods (labels %v)", ms.service.Spec.Selector, podLabels)
		}
		if job := pod.Labels[ms.podMonitor.Spec.JobLabel]; job != "textpulse" {
			t.Errorf("PodMonitor jobLabel %q gives job %q; the alert rules and dashboards select job=\"textpulse\"", ms.podMonitor.Spec.JobLabel, job)
		}
	})

	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one container, have %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}

	t.Run("configuration", func(t *testing.T) {
		// The --config argument names a file of a mounted ConfigMap.
		var cfgPath string
		for i, a := range c.Args {
			if a == "--config" && i+1 < len(c.Args) {
				cfgPath = c.Args[i+1]
			}
		}
		if cfgPath == "" {
			t.Fatalf("container args %v pass no --config", c.Args)
		}
		var cfgText string
		for _, vm := range c.VolumeMounts {
			if filepath.Dir(cfgPath) != filepath.Clean(vm.MountPath) {
				continue
			}
			for _, v := range pod.Spec.Volumes {
				if v.Name != vm.Name || v.ConfigMap == nil {
					continue
				}
				cm := ms.configMaps[v.ConfigMap.Name]
				if cm == nil {
					t.Fatalf("volume %s mounts ConfigMap %s, which is not among the manifests", v.Name, v.ConfigMap.Name)
				}
				text, ok := cm.Data[filepath.Base(cfgPath)]
				if !ok {
					t.Fatalf("ConfigMap %s has no key %s for --config %s", cm.Name, filepath.Base(cfgPath), cfgPath)
				}
				cfgText = text
			}
		}
		if cfgText == "" {
			t.Fatalf("--config %s is not a file of a mounted ConfigMap", cfgPath)
		}
		// The consumer accepts the file: unknown keys and bad values are
		// errors of --print-config.
		file := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(file, []byte(cfgText), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(cc.bin, "run", "--config", file, "--print-config").CombinedOutput() //nolint:gosec // Test binary.
		if err != nil {
			t.Fatalf("consumer rejects the ConfigMap's configuration: %v\n%s", err, out)
		}
		var eff struct {
			HTTP struct {
				Listen string `json:"listen"`
			} `json:"http"`
		}
		if err := yaml.Unmarshal(out, &eff); err != nil {
			t.Fatalf("read --print-config output: %v\n%s", err, out)
		}
		_, port, _ := strings.Cut(eff.HTTP.Listen, ":")
		if port == "" || port != itoa(ports["metrics"]) {
			t.Errorf("http.listen %q does not serve the container port metrics (%d)", eff.HTTP.Listen, ports["metrics"])
		}
		if strings.HasPrefix(eff.HTTP.Listen, "127.") || strings.HasPrefix(eff.HTTP.Listen, "localhost") {
			t.Errorf("http.listen %q is loopback only: probes and scrapes cannot reach it", eff.HTTP.Listen)
		}
	})

	t.Run("environment", func(t *testing.T) {
		for _, e := range c.Env {
			if !cc.envs[e.Name] && !processEnv[e.Name] {
				t.Errorf("env %s is not a consumer configuration variable", e.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef
				s := ms.secrets[ref.Name]
				if s == nil {
					t.Errorf("env %s refers to Secret %s, which is not among the manifests", e.Name, ref.Name)
					continue
				}
				_, inData := s.Data[ref.Key]
				_, inString := s.StringData[ref.Key]
				if !inData && !inString {
					t.Errorf("env %s refers to key %s of Secret %s, which it lacks", e.Name, ref.Key, ref.Name)
				}
			}
			if strings.Contains(strings.ToLower(e.Name), "password") || strings.Contains(strings.ToLower(e.Name), "api_key") {
				if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Errorf("env %s must come from a Secret", e.Name)
				}
			}
		}
	})

	t.Run("probes", func(t *testing.T) {
		for name, pr := range map[string]struct {
			probe *corev1.Probe
			path  string
		}{
			"liveness":  {c.LivenessProbe, "/healthz"},
			"readiness": {c.ReadinessProbe, "/readyz"},
		} {
			if pr.probe == nil || pr.probe.HTTPGet == nil {
				t.Errorf("%s probe missing or not HTTP", name)
				continue
			}
			g := pr.probe.HTTPGet
			if g.Path != pr.path {
				t.Errorf("%s probe path %q, want %q", name, g.Path, pr.path)
			}
			if g.Port.StrVal != "metrics" && g.Port.IntVal != ports["metrics"] {
				t.Errorf("%s probe port %v is not the metrics port", name, g.Port.String())
			}
		}
		if ports["metrics"] == 0 {
			t.Errorf("container has no port named metrics")
		}
		for _, p := range ms.service.Spec.Ports {
			if p.TargetPort.StrVal != "" && ports[p.TargetPort.StrVal] == 0 {
				t.Errorf("Service port %s targets %q, which the container does not name", p.Name, p.TargetPort.StrVal)
			}
		}
		for _, ep := range ms.podMonitor.Spec.PodMetricsEndpoints {
			if ports[ep.Port] == 0 || ep.Path != "/metrics" {
				t.Errorf("PodMonitor endpoint %s%s is not the metrics port and path", ep.Port, ep.Path)
			}
		}
	})

	t.Run("static membership", func(t *testing.T) {
		// kafka.instance_id is the pod name, and the pod name of a
		// StatefulSet survives restarts: a killed member rejoins under the
		// same id and gets its partitions back without waiting out its
		// session timeout.
		var ref *corev1.ObjectFieldSelector
		for _, e := range c.Env {
			if e.Name == "TEXTPULSE_KAFKA_INSTANCE_ID" && e.ValueFrom != nil {
				ref = e.ValueFrom.FieldRef
			}
		}
		if ref == nil || ref.FieldPath != "metadata.name" {
			t.Errorf("TEXTPULSE_KAFKA_INSTANCE_ID is not the pod name (fieldRef metadata.name): %+v", ref)
		}
		if d.Spec.ServiceName != ms.service.Name || ms.service.Spec.ClusterIP != corev1.ClusterIPNone {
			t.Errorf("serviceName %q: want the headless Service %s", d.Spec.ServiceName, ms.service.Name)
		}
		if d.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
			t.Errorf("podManagementPolicy %q: want Parallel, so that a standby that never gets ready does not hold up the others",
				d.Spec.PodManagementPolicy)
		}
		if d.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
			t.Errorf("updateStrategy %q: want RollingUpdate", d.Spec.UpdateStrategy.Type)
		}
		if len(d.Spec.VolumeClaimTemplates) != 0 {
			t.Errorf("the consumer keeps no state on disk; want no volumeClaimTemplates")
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		// batch.drain_timeout plus leaving the group must fit in the grace
		// period, or the kubelet kills a draining consumer.
		grace := pod.Spec.TerminationGracePeriodSeconds
		if grace == nil || *grace < 40 {
			t.Errorf("terminationGracePeriodSeconds %v: want at least 40 (drain 20s + leave 10s + margin)", grace)
		}
	})
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

// TestComposeMountsDeployFiles checks that docker-compose.yml mounts the
// Prometheus and Grafana files of this directory where their configuration
// expects them, and that every bind-mounted path exists.
func TestComposeMountsDeployFiles(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Volumes []string `json:"volumes"`
			Command []string `json:"command"`
		} `json:"services"`
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	mounts := map[string]string{}
	for name, svc := range compose.Services {
		for _, v := range svc.Volumes {
			parts := strings.Split(v, ":")
			if len(parts) < 2 || !strings.HasPrefix(parts[0], "./") {
				continue
			}
			if _, err := os.Stat(filepath.Join("..", parts[0])); err != nil {
				t.Errorf("service %s mounts %s, which does not exist", name, parts[0])
			}
			mounts[parts[1]] = parts[0]
		}
	}
	for _, want := range []struct{ container, host string }{
		{"/etc/prometheus", "./deploy/prometheus"},
		{"/etc/grafana/provisioning", "./deploy/grafana/provisioning"},
		{"/var/lib/grafana/dashboards/textpulse", "./deploy/grafana/dashboards"},
	} {
		if mounts[want.container] != want.host {
			t.Errorf("docker-compose.yml mounts %q at %s, want %s", mounts[want.container], want.container, want.host)
		}
	}
	if cmd := strings.Join(compose.Services["prometheus"].Command, " "); !strings.Contains(cmd, "--config.file=/etc/prometheus/prometheus.yml") {
		t.Errorf("prometheus command %q does not load /etc/prometheus/prometheus.yml", cmd)
	}
	if _, ok := compose.Services["loadgen"]; !ok {
		t.Error("docker-compose.yml has no loadgen service")
	}
}
