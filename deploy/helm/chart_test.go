package helm

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/regate/gateway/cmd/gateway/app"
)

// The files the chart must agree with.
const (
	composePath   = "../../docker-compose.yml"
	dashboardPath = "../grafana/dashboards/regate.json"
)

// renderCase is one values file and what its render must hold.
type renderCase struct {
	name, values string
	// Objects by "Kind/name", all of them.
	wantObjects []string
	// The policy bundle: "" (the built-in one), "configmap" or "url".
	bundle string
	// Secrets the chart makes (else the Deployment names existing ones).
	chartSecrets                            bool
	hpa, serviceMonitor, dashboard, metrics bool
}

var renderCases = []renderCase{
	{
		name: "defaults", values: "",
		wantObjects: []string{
			"ConfigMap/gw-regate", "Deployment/gw-regate", "PodDisruptionBudget/gw-regate",
			"Service/gw-regate", "ServiceAccount/gw-regate",
		},
		metrics: true,
	},
	{
		name: "hpa, servicemonitor, existing secrets, bundle url", values: "ci/hpa-servicemonitor-values.yaml",
		wantObjects: []string{
			"ConfigMap/gw-regate", "ConfigMap/gw-regate-dashboard", "Deployment/gw-regate",
			"HorizontalPodAutoscaler/gw-regate", "PodDisruptionBudget/gw-regate", "Service/gw-regate",
			"ServiceAccount/gw-regate", "ServiceMonitor/gw-regate",
		},
		bundle: "url", hpa: true, serviceMonitor: true, dashboard: true, metrics: true,
	},
	{
		name: "bundle configmap, chart secrets, 3 replicas", values: "ci/bundle-configmap-values.yaml",
		wantObjects: []string{
			"ConfigMap/gw-regate", "ConfigMap/gw-regate-bundle", "Deployment/gw-regate",
			"PodDisruptionBudget/gw-regate", "Secret/gw-regate-database", "Secret/gw-regate-master-key",
			"Service/gw-regate", "ServiceAccount/gw-regate",
		},
		bundle: "configmap", chartSecrets: true,
	},
}

// TestChart renders the chart for each values file with Helm's own
// packages, lints it, decodes every object strictly into the Kubernetes
// API types and checks it against the gateway's real flags, environment,
// routes and the compose stack.
func TestChart(t *testing.T) {
	ch := loadChart(t)
	compose := readCompose(t)
	for _, tc := range renderCases {
		t.Run(tc.name, func(t *testing.T) {
			// Helm's coalescing edits the map it is given: lint and render
			// each get their own.
			lintChart(t, readValues(t, tc.values))
			vals := readValues(t, tc.values)
			rendered, err := renderChart(ch, vals)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			o := decodeAll(t, rendered)
			if !slices.Equal(o.kinds, tc.wantObjects) {
				t.Errorf("objects = %v\nwant %v", o.kinds, tc.wantObjects)
			}
			d := mustOne(t, "Deployment", o.deployments)
			c := gatewayContainer(t, d)
			checkPod(t, d, c)
			checkSameAsCompose(t, c, compose)
			checkEnvAndFlags(t, tc, o, d, c)
			checkConfigAndBundle(t, tc, o, d, c)
			checkService(t, o, d, c)
			checkScaling(t, tc, o, d, vals)
			checkMetrics(t, tc, o, d, c)
			if tc.name == "defaults" {
				checkRoutesServed(t, o, d, c)
			}
		})
	}
}

// gatewayContainer returns the Deployment's only container.
func gatewayContainer(tb testing.TB, d *appsv1.Deployment) *corev1.Container {
	tb.Helper()
	cs := d.Spec.Template.Spec.Containers
	if len(cs) != 1 || cs[0].Name != "gateway" {
		tb.Fatalf("containers = %d (%v), want one named gateway", len(cs), cs)
	}
	return &cs[0]
}

// env returns the container's plain environment values.
func env(c *corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			m[e.Name] = e.Value
		}
	}
	return m
}

// checkPod checks the probes, the security context and the drain timing.
func checkPod(t *testing.T, d *appsv1.Deployment, c *corev1.Container) {
	t.Run("pod", func(t *testing.T) {
		ps := d.Spec.Template.Spec
		if len(c.Ports) != 1 || c.Ports[0].Name != "http" {
			t.Fatalf("container ports = %v, want one named http", c.Ports)
		}
		_, port, err := net.SplitHostPort(env(c)["GATEWAY_LISTEN"])
		if err != nil || port != strconv.Itoa(int(c.Ports[0].ContainerPort)) || !strings.HasPrefix(env(c)["GATEWAY_LISTEN"], "0.0.0.0:") {
			t.Errorf("GATEWAY_LISTEN = %q, want 0.0.0.0:%d (the container port)", env(c)["GATEWAY_LISTEN"], c.Ports[0].ContainerPort)
		}
		for _, p := range []struct {
			name  string
			probe *corev1.Probe
			path  string
		}{
			{"liveness", c.LivenessProbe, "/health/liveness"},
			{"readiness", c.ReadinessProbe, "/health/readiness"},
			{"startup", c.StartupProbe, "/health/liveness"},
		} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s probe = %+v, want an HTTP GET", p.name, p.probe)
				continue
			}
			g := p.probe.HTTPGet
			if g.Path != p.path || g.Port.String() != c.Ports[0].Name {
				t.Errorf("%s probe GET %s on port %s, want %s on %s", p.name, g.Path, g.Port.String(), p.path, c.Ports[0].Name)
			}
		}

		// Non-root, read-only root filesystem, no privilege escalation;
		// /tmp writable.
		psc, sc := ps.SecurityContext, c.SecurityContext
		if psc == nil || sc == nil {
			t.Fatal("no pod or container securityContext")
		}
		if !isTrue(psc.RunAsNonRoot) || !isTrue(sc.RunAsNonRoot) || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Errorf("runAsNonRoot pod %v container %v, runAsUser %v: want non-root", psc.RunAsNonRoot, sc.RunAsNonRoot, psc.RunAsUser)
		}
		if !isTrue(sc.ReadOnlyRootFilesystem) {
			t.Error("readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Error("allowPrivilegeEscalation is not false")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("capabilities = %+v, want drop ALL", sc.Capabilities)
		}
		if m := mountAt(c, "/tmp"); m == nil || volume(d, m.Name) == nil || volume(d, m.Name).EmptyDir == nil {
			t.Error("/tmp is not an emptyDir: with a read-only root nothing could write a temporary file")
		}
		if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
			t.Error("the pod mounts a service account token it never uses")
		}

		// The kubelet must not kill in-flight streams: the grace period
		// outlasts the drain delay and the shutdown timeout.
		drain, err1 := time.ParseDuration(env(c)["GATEWAY_DRAIN_DELAY"])
		shutdown, err2 := time.ParseDuration(env(c)["GATEWAY_SHUTDOWN_TIMEOUT"])
		if err1 != nil || err2 != nil || drain <= 0 {
			t.Fatalf("GATEWAY_DRAIN_DELAY %q, GATEWAY_SHUTDOWN_TIMEOUT %q: want durations, a positive drain delay", env(c)["GATEWAY_DRAIN_DELAY"], env(c)["GATEWAY_SHUTDOWN_TIMEOUT"])
		}
		if g := ps.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain+shutdown {
			t.Errorf("terminationGracePeriodSeconds = %v, want more than drain %v + shutdown %v", g, drain, shutdown)
		}
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
			t.Error("a preStop hook delays SIGTERM beyond what the drain timing accounts for")
		}
	})
}

// checkSameAsCompose checks that the chart runs the compose stack's image
// and command, with its config at the same path and its settings.
func checkSameAsCompose(t *testing.T, c *corev1.Container, compose composeService) {
	t.Run("same as compose", func(t *testing.T) {
		repo, _, _ := strings.Cut(compose.Image, ":")
		if got, _, _ := strings.Cut(c.Image, ":"); got != repo {
			t.Errorf("image %s, want the compose stack's %s", c.Image, repo)
		}
		if len(c.Command) != 0 {
			t.Errorf("command %v overrides the image's entrypoint", c.Command)
		}
		if len(c.Args) < len(compose.Command) || !slices.Equal(c.Args[:len(compose.Command)], compose.Command) {
			t.Errorf("args %v, want the compose command %v first", c.Args, compose.Command)
		}
		for _, k := range []string{"GATEWAY_LOG_FORMAT", "GATEWAY_LISTEN", "GATEWAY_DRAIN_DELAY", "GATEWAY_SHUTDOWN_TIMEOUT", "GATEWAY_MASTER_KEY", "DATABASE_URL"} {
			if _, ok := compose.Environment[k]; !ok {
				t.Errorf("compose does not set %s any more: update this test and the README's table", k)
			}
			if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == k }) {
				t.Errorf("the chart does not set %s, which compose sets", k)
			}
		}
		if f := compose.Environment["GATEWAY_LOG_FORMAT"]; env(c)["GATEWAY_LOG_FORMAT"] != f {
			t.Errorf("GATEWAY_LOG_FORMAT = %q, compose has %q", env(c)["GATEWAY_LOG_FORMAT"], f)
		}
	})
}

// checkEnvAndFlags checks that every variable the chart sets is one the
// gateway reads, that the secrets resolve, and that `gateway serve` takes
// the chart's arguments and environment.
func checkEnvAndFlags(t *testing.T, tc renderCase, o *objects, d *appsv1.Deployment, c *corev1.Container) {
	t.Run("env and flags", func(t *testing.T) {
		for _, e := range c.Env {
			if !slices.Contains(app.EnvVars, e.Name) && !strings.HasPrefix(e.Name, "OTEL_") {
				t.Errorf("env %s is read by neither the gateway (app.EnvVars) nor the OpenTelemetry SDK", e.Name)
			}
		}
		for _, name := range []string{"GATEWAY_MASTER_KEY", "DATABASE_URL"} {
			ref := secretRef(c, name)
			if ref == nil {
				t.Errorf("%s does not come from a Secret", name)
				continue
			}
			s, made := o.secrets[ref.Name]
			if made != tc.chartSecrets {
				t.Errorf("%s: Secret %s rendered %v, want %v", name, ref.Name, made, tc.chartSecrets)
			}
			if made && len(s.Data[ref.Key]) == 0 {
				t.Errorf("%s: Secret %s has no key %s (keys %v)", name, ref.Name, ref.Key, keys(s.Data))
			}
			if !made && tc.values != "" && !strings.HasPrefix(ref.Name, "llm-gateway-secrets") {
				t.Errorf("%s: Secret %s, want the existing llm-gateway-secrets", name, ref.Name)
			}
		}
		if len(c.EnvFrom) > 0 {
			t.Errorf("envFrom %v: the default values bring no variables wholesale", c.EnvFrom)
		}

		// serve validates flags and environment values (durations, log
		// settings, OTEL exporter) before it reads the config: with a
		// config that is missing, it must fail on the config (exit 1), not
		// on them (exit 2).
		args := slices.Clone(c.Args)
		i := slices.Index(args, "--config")
		if i < 0 || i+1 >= len(args) {
			t.Fatalf("args %v have no --config", args)
		}
		missing := filepath.Join(t.TempDir(), "missing.yaml")
		args[i+1] = missing
		var out, errOut bytes.Buffer
		if code := app.Main(t.Context(), args, &out, &errOut, lookup(podEnv(c, o))); code != 1 || !strings.Contains(errOut.String(), "missing.yaml") {
			t.Errorf("gateway %v with the pod's environment = exit %d (%s), want exit 1 naming the config", args, code, errOut.String())
		}
	})
}

// checkConfigAndBundle checks the mounted config and bundle, and runs
// `gateway check` on them as the pod would see them.
func checkConfigAndBundle(t *testing.T, tc renderCase, o *objects, d *appsv1.Deployment, c *corev1.Container) {
	t.Run("config and bundle", func(t *testing.T) {
		configPath := c.Args[slices.Index(c.Args, "--config")+1]
		m := mountAt(c, configPath)
		if m == nil || volume(d, m.Name) == nil || volume(d, m.Name).ConfigMap == nil {
			t.Fatalf("nothing mounts a ConfigMap at --config %s", configPath)
		}
		cm := o.configMaps[volume(d, m.Name).ConfigMap.Name]
		if cm == nil || cm.Data[m.SubPath] == "" {
			t.Fatalf("ConfigMap %s has no key %q for %s", volume(d, m.Name).ConfigMap.Name, m.SubPath, configPath)
		}
		dir := t.TempDir()
		config := filepath.Join(dir, "config.yaml")
		writeFile(t, config, cm.Data[m.SubPath])

		args := []string{"check", "--config", config}
		var bundles []string
		for i, a := range c.Args {
			if a == "--bundle" && i+1 < len(c.Args) {
				bundles = append(bundles, c.Args[i+1])
			}
		}
		switch tc.bundle {
		case "":
			if len(bundles) > 0 {
				t.Errorf("--bundle %v, want the built-in bundle", bundles)
			}
		case "url":
			if len(bundles) != 1 || !strings.HasPrefix(bundles[0], "https://") {
				t.Errorf("--bundle %v, want the bundle-service URL", bundles)
			}
		case "configmap":
			if len(bundles) != 1 {
				t.Fatalf("--bundle %v, want the mounted ConfigMap", bundles)
			}
			bm := mountAt(c, bundles[0])
			if bm == nil || volume(d, bm.Name) == nil || volume(d, bm.Name).ConfigMap == nil || bm.SubPath != "" {
				t.Fatalf("--bundle %s is not a mounted ConfigMap folder", bundles[0])
			}
			bcm := o.configMaps[volume(d, bm.Name).ConfigMap.Name]
			if bcm == nil {
				t.Fatalf("the bundle ConfigMap %s is not rendered", volume(d, bm.Name).ConfigMap.Name)
			}
			bdir := filepath.Join(dir, "bundle")
			for name, data := range bcm.Data {
				writeFile(t, filepath.Join(bdir, name), data)
			}
			args = append(args, "--bundle", bdir)
			if d.Spec.Template.Annotations["checksum/bundle"] == "" {
				t.Error("no checksum/bundle annotation: a bundle change would not roll the pods")
			}
		}
		if d.Spec.Template.Annotations["checksum/config"] == "" {
			t.Error("no checksum/config annotation: a config change would not roll the pods")
		}
		if tc.bundle == "url" {
			return // check would fetch it
		}
		var out, errOut bytes.Buffer
		if code := app.Main(t.Context(), args, &out, &errOut, lookup(podEnv(c, o))); code != 0 {
			t.Fatalf("gateway %v = exit %d\nstdout: %s\nstderr: %s", args, code, out.String(), errOut.String())
		}
		if strings.Contains(out.String(), ": warning:") {
			t.Errorf("the chart's config has warnings:\n%s", out.String())
		}
		if tc.bundle == "configmap" && !strings.Contains(out.String(), "chart-test-1") {
			t.Errorf("gateway check does not report the bundle's revision chart-test-1:\n%s", out.String())
		}
	})
}

// checkService checks that the Service reaches the pods' http port.
func checkService(t *testing.T, o *objects, d *appsv1.Deployment, c *corev1.Container) {
	t.Run("service", func(t *testing.T) {
		s := mustOne(t, "Service", o.services)
		if !selects(s.Spec.Selector, d.Spec.Template.Labels) || !selects(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("selectors %v / %v do not select the pod labels %v", s.Spec.Selector, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
		if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.String() != c.Ports[0].Name || s.Spec.Ports[0].Name != "http" {
			t.Errorf("service ports %v, want one named http to the container port %s", s.Spec.Ports, c.Ports[0].Name)
		}
		if sa := d.Spec.Template.Spec.ServiceAccountName; o.serviceAccounts[sa] == nil {
			t.Errorf("serviceAccountName %q is not rendered", sa)
		}
	})
}

// checkScaling checks the replicas, the HorizontalPodAutoscaler and the
// PodDisruptionBudget.
func checkScaling(t *testing.T, tc renderCase, o *objects, d *appsv1.Deployment, vals map[string]any) {
	t.Run("scaling", func(t *testing.T) {
		if tc.hpa {
			h := mustOne(t, "HorizontalPodAutoscaler", o.hpas)
			if d.Spec.Replicas != nil {
				t.Errorf("replicas = %d with an autoscaler: every upgrade would reset the scale", *d.Spec.Replicas)
			}
			ref := h.Spec.ScaleTargetRef
			if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != d.Name {
				t.Errorf("scaleTargetRef = %+v, want Deployment %s", ref, d.Name)
			}
			if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas < *h.Spec.MinReplicas || len(h.Spec.Metrics) == 0 {
				t.Errorf("autoscaler spec %+v: want at least 2 replicas, max ≥ min, a metric", h.Spec)
			}
		} else {
			want := int32(2)
			if r, ok := vals["replicaCount"]; ok {
				want = int32(r.(float64))
			}
			if d.Spec.Replicas == nil || *d.Spec.Replicas != want {
				t.Errorf("replicas = %v, want %d", d.Spec.Replicas, want)
			}
		}
		if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
			t.Errorf("rolling update %+v: want maxUnavailable 0 (a new pod is ready before an old one drains)", ru)
		}
		p := mustOne(t, "PodDisruptionBudget", o.pdbs)
		if p.Spec.Selector == nil || !selects(p.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("PDB selector %v does not select the pods %v", p.Spec.Selector, d.Spec.Template.Labels)
		}
		if (p.Spec.MinAvailable == nil) == (p.Spec.MaxUnavailable == nil) {
			t.Errorf("PDB spec %+v: want one of minAvailable and maxUnavailable", p.Spec)
		}
	})
}

// checkMetrics checks scrape annotations, the ServiceMonitor and the
// dashboard ConfigMap.
func checkMetrics(t *testing.T, tc renderCase, o *objects, d *appsv1.Deployment, c *corev1.Container) {
	t.Run("metrics", func(t *testing.T) {
		ann := d.Spec.Template.Annotations
		off := slices.Contains(c.Args, "--metrics=false")
		if off == tc.metrics {
			t.Errorf("args %v: metrics on = %v, want %v", c.Args, !off, tc.metrics)
		}
		wantAnn := tc.metrics && !tc.serviceMonitor
		if got := ann["prometheus.io/scrape"] == "true"; got != wantAnn {
			t.Errorf("prometheus.io/scrape annotation = %v, want %v", got, wantAnn)
		}
		if wantAnn && (ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != strconv.Itoa(int(c.Ports[0].ContainerPort))) {
			t.Errorf("scrape annotations %v, want /metrics on port %d", ann, c.Ports[0].ContainerPort)
		}
		if tc.serviceMonitor {
			sm := mustOne(t, "ServiceMonitor", o.serviceMonitors)
			s := mustOne(t, "Service", o.services)
			if !selects(sm.Spec.Selector.MatchLabels, s.Labels) || !slices.Contains(sm.Spec.NamespaceSelector.MatchNames, namespace) {
				t.Errorf("ServiceMonitor selects %v in %v, want the Service %v in %s", sm.Spec.Selector.MatchLabels, sm.Spec.NamespaceSelector.MatchNames, s.Labels, namespace)
			}
			if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Port != s.Spec.Ports[0].Name || sm.Spec.Endpoints[0].Path != "/metrics" {
				t.Errorf("ServiceMonitor endpoints %+v, want /metrics on the Service port %s", sm.Spec.Endpoints, s.Spec.Ports[0].Name)
			}
			if sm.Labels["release"] != "kube-prometheus-stack" {
				t.Errorf("ServiceMonitor labels %v lack the values' release label", sm.Labels)
			}
		}
		if tc.dashboard {
			cm := o.configMaps["gw-regate-dashboard"]
			want, err := os.ReadFile(dashboardPath)
			if err != nil {
				t.Fatal(err)
			}
			if cm == nil || strings.TrimSpace(cm.Data["regate.json"]) != strings.TrimSpace(string(want)) {
				t.Errorf("the dashboard ConfigMap does not carry %s", dashboardPath)
			}
			if cm != nil && cm.Labels["grafana_dashboard"] != "1" {
				t.Errorf("dashboard ConfigMap labels %v, want grafana_dashboard: \"1\" for Grafana's sidecar", cm.Labels)
			}
		}
	})
}

// checkRoutesServed starts the gateway in process with the rendered config
// and environment (the in-memory store instead of the Secret's database)
// and asks the paths the probes and the scrape annotation name.
func checkRoutesServed(t *testing.T, o *objects, d *appsv1.Deployment, c *corev1.Container) {
	t.Run("probe paths are served", func(t *testing.T) {
		cm := o.configMaps[volume(d, "config").ConfigMap.Name]
		e := podEnv(c, o)
		delete(e, "DATABASE_URL")
		g, err := app.Build(t.Context(), app.Options{
			ConfigData: []byte(cm.Data["config.yaml"]), Listen: "127.0.0.1:0", Env: lookup(e),
		})
		if err != nil {
			t.Fatalf("app.Build with the chart's config: %v", err)
		}
		if err := g.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = g.Shutdown(ctx)
		})
		paths := []string{c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path, c.StartupProbe.HTTPGet.Path}
		if p := d.Spec.Template.Annotations["prometheus.io/path"]; p != "" {
			paths = append(paths, p)
		}
		for _, p := range paths {
			resp, err := http.Get("http://" + g.Addr() + p)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s = %d, want 200", p, resp.StatusCode)
			}
		}
	})
}

// TestChartRefusesBrokenValues checks the values the chart refuses at
// render time rather than deploying a broken release.
func TestChartRefusesBrokenValues(t *testing.T) {
	ch := loadChart(t)
	tests := []struct {
		name string
		vals string
		want string
	}{
		{"grace period shorter than drain and shutdown", "terminationGracePeriodSeconds: 20", "must exceed"},
		{"two bundle sources", "bundle: {url: https://b.example/x.tar.gz, existingConfigMap: policies}", "at most one"},
		{"bundle URL without scheme", "bundle: {url: b.example/x.tar.gz}", "http:// or https://"},
		{"master key twice", "masterKey: {value: sk-x, existingSecret: s}", "not both"},
		{"database twice", "database: {url: postgres://x, existingSecret: s}", "not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var vals map[string]any
			if err := yaml.Unmarshal([]byte(tc.vals), &vals); err != nil {
				t.Fatal(err)
			}
			_, err := renderChart(ch, vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("render with %s: error = %v, want one containing %q", tc.vals, err, tc.want)
			}
		})
	}
}

// composeService is the part of the compose gateway service the chart
// must agree with.
type composeService struct {
	Image       string            `yaml:"image"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
}

func readCompose(tb testing.TB) composeService {
	tb.Helper()
	b, err := os.ReadFile(composePath)
	if err != nil {
		tb.Fatal(err)
	}
	var f struct {
		Services map[string]composeService `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		tb.Fatalf("%s: %v", composePath, err)
	}
	s, ok := f.Services["gateway"]
	if !ok {
		tb.Fatalf("%s has no gateway service", composePath)
	}
	return s
}

// podEnv is the container's environment as the pod sees it: secret
// references resolved from the rendered Secrets, or placeholders for
// Secrets made outside the chart.
func podEnv(c *corev1.Container, o *objects) map[string]string {
	m := env(c)
	for _, e := range c.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
			continue
		}
		ref := e.ValueFrom.SecretKeyRef
		if s, ok := o.secrets[ref.Name]; ok {
			m[e.Name] = string(s.Data[ref.Key])
		} else {
			m[e.Name] = map[string]string{
				"GATEWAY_MASTER_KEY": "sk-master-existing-secret",
				"DATABASE_URL":       "postgres://gateway@postgres:5432/gateway",
			}[e.Name]
		}
	}
	return m
}

func lookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func secretRef(c *corev1.Container, name string) *corev1.SecretKeySelector {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil {
			return e.ValueFrom.SecretKeyRef
		}
	}
	return nil
}

func mountAt(c *corev1.Container, path string) *corev1.VolumeMount {
	for i, m := range c.VolumeMounts {
		if m.MountPath == path {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func volume(d *appsv1.Deployment, name string) *corev1.Volume {
	for i, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &d.Spec.Template.Spec.Volumes[i]
		}
	}
	return nil
}

// selects reports whether a non-empty selector matches the labels.
func selects(selector, podLabels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(&metav1.LabelSelector{MatchLabels: selector})
	return err == nil && s.Matches(labels.Set(podLabels))
}

func isTrue(b *bool) bool { return b != nil && *b }

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func writeFile(tb testing.TB, path, data string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// TestReadmeValuesTable checks that every value the README's Kubernetes
// section documents is one of the chart's values.
func TestReadmeValuesTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i := strings.Index(readme, "## Run it on Kubernetes")
	if i < 0 {
		t.Fatal(`README.md has no "Run it on Kubernetes" section`)
	}
	section := readme[i:]
	if j := strings.Index(section[3:], "\n## "); j >= 0 {
		section = section[:j+3]
	}
	for _, want := range []string{"helm install", "deploy/helm/regate", "/health/readiness", "/health/liveness", "terminationGracePeriodSeconds", "deploy/grafana/dashboards/regate.json"} {
		if !strings.Contains(section, want) {
			t.Errorf("README's Kubernetes section does not mention %q", want)
		}
	}
	defaults := loadChart(t).Values
	n := 0
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			continue
		}
		if strings.Contains(cells[1], "serve --config") || strings.Contains(cells[2], "docker-compose") {
			break // the compose table
		}
		var parent string
		for _, tok := range strings.Split(cells[1], "`")[1:] {
			if tok == "" || strings.ContainsAny(tok, " ,/") {
				continue
			}
			path := tok
			if strings.HasPrefix(tok, ".") {
				path = parent + tok
			} else if k := strings.LastIndex(tok, "."); k >= 0 {
				parent = tok[:k]
			}
			n++
			if !hasValue(defaults, strings.Split(path, ".")) {
				t.Errorf("README documents the value %s, which values.yaml does not have", path)
			}
		}
	}
	if n < 20 {
		t.Errorf("found %d documented values in README's table, want the table", n)
	}
}

// hasValue reports whether the nested map holds the key path (a key whose
// value is null counts).
func hasValue(m map[string]any, path []string) bool {
	v, ok := m[path[0]]
	if !ok {
		return false
	}
	if len(path) == 1 {
		return true
	}
	sub, ok := v.(map[string]any)
	return ok && hasValue(sub, path[1:])
}
