// Package helm holds the test of the regate Helm chart. It lives in a module
// of its own so that the gateway's module does not carry Helm and
// Kubernetes; it reaches the gateway's code through a replace directive.
package helm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test.
const chartDir = "regate"

// Release name and namespace of the renders.
const (
	releaseName = "gw"
	namespace   = "llm"
)

// ServiceMonitor is the part of the Prometheus Operator's
// monitoring.coreos.com/v1 ServiceMonitor that the chart writes. It is not
// in k8s.io/api; decoding strictly into it catches a misspelt field (and a
// field the chart starts to use must be added here, checked against the
// CRD).
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector          metav1.LabelSelector `json:"selector"`
		NamespaceSelector struct {
			Any        bool     `json:"any,omitempty"`
			MatchNames []string `json:"matchNames,omitempty"`
		} `json:"namespaceSelector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path,omitempty"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// objects are the decoded objects of one render, by kind and name.
type objects struct {
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	secrets         map[string]*corev1.Secret
	serviceAccounts map[string]*corev1.ServiceAccount
	pdbs            map[string]*policyv1.PodDisruptionBudget
	hpas            map[string]*autoscalingv2.HorizontalPodAutoscaler
	serviceMonitors map[string]*ServiceMonitor
	kinds           []string // "Kind/name", sorted
}

// loadChart loads the chart with Helm's loader.
func loadChart(tb testing.TB) *chart.Chart {
	tb.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		tb.Fatalf("load chart: %v", err)
	}
	return ch
}

// readValues reads a values file of the chart; "" is no file (the
// chart's defaults only).
func readValues(tb testing.TB, file string) map[string]any {
	tb.Helper()
	if file == "" {
		return map[string]any{}
	}
	v, err := common.ReadValuesFile(filepath.Join(chartDir, file))
	if err != nil {
		tb.Fatalf("read %s: %v", file, err)
	}
	return v
}

// renderChart renders the chart with vals over its defaults, as
// `helm template` does, and returns the manifests by template name.
func renderChart(ch *chart.Chart, vals map[string]any) (map[string]string, error) {
	rv, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true}, common.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, rv)
}

// decodeStrict decodes one YAML document into v: an unknown or duplicate
// field is an error.
func decodeStrict(doc []byte, v any) error {
	return yaml.UnmarshalStrict(doc, v)
}

// decodeAll splits the rendered manifests into documents and decodes each
// strictly into its typed struct. A kind the test does not know fails.
func decodeAll(tb testing.TB, rendered map[string]string) *objects {
	tb.Helper()
	o := &objects{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{},
		serviceAccounts: map[string]*corev1.ServiceAccount{}, pdbs: map[string]*policyv1.PodDisruptionBudget{},
		hpas: map[string]*autoscalingv2.HorizontalPodAutoscaler{}, serviceMonitors: map[string]*ServiceMonitor{},
	}
	var names []string
	for name := range rendered {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		r := k8syaml.NewYAMLReader(bufio.NewReader(strings.NewReader(rendered[name])))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				tb.Fatalf("%s: %v", name, err)
			}
			if isEmptyDoc(doc) {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				tb.Fatalf("%s: %v\n%s", name, err, doc)
			}
			decode := func(obj any) {
				if err := decodeStrict(doc, obj); err != nil {
					tb.Fatalf("%s: strict decoding of %s: %v\n%s", name, tm.Kind, err, doc)
				}
			}
			var meta *metav1.ObjectMeta
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				d := &appsv1.Deployment{}
				decode(d)
				o.deployments[d.Name], meta = d, &d.ObjectMeta
			case "v1 Service":
				s := &corev1.Service{}
				decode(s)
				o.services[s.Name], meta = s, &s.ObjectMeta
			case "v1 ConfigMap":
				c := &corev1.ConfigMap{}
				decode(c)
				o.configMaps[c.Name], meta = c, &c.ObjectMeta
			case "v1 Secret":
				s := &corev1.Secret{}
				decode(s)
				o.secrets[s.Name], meta = s, &s.ObjectMeta
			case "v1 ServiceAccount":
				s := &corev1.ServiceAccount{}
				decode(s)
				o.serviceAccounts[s.Name], meta = s, &s.ObjectMeta
			case "policy/v1 PodDisruptionBudget":
				p := &policyv1.PodDisruptionBudget{}
				decode(p)
				o.pdbs[p.Name], meta = p, &p.ObjectMeta
			case "autoscaling/v2 HorizontalPodAutoscaler":
				h := &autoscalingv2.HorizontalPodAutoscaler{}
				decode(h)
				o.hpas[h.Name], meta = h, &h.ObjectMeta
			case "monitoring.coreos.com/v1 ServiceMonitor":
				m := &ServiceMonitor{}
				decode(m)
				o.serviceMonitors[m.Name], meta = m, &m.ObjectMeta
			default:
				tb.Fatalf("%s: unexpected object %s %s", name, tm.APIVersion, tm.Kind)
			}
			o.kinds = append(o.kinds, tm.Kind+"/"+meta.Name)
		}
	}
	sort.Strings(o.kinds)
	return o
}

// isEmptyDoc reports whether a YAML document holds only blanks and
// comments (a template whose condition was false).
func isEmptyDoc(doc []byte) bool {
	for _, l := range bytes.Split(doc, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) > 0 && l[0] != '#' && !bytes.Equal(l, []byte("---")) {
			return false
		}
	}
	return true
}

// lintChart runs Helm's lint rules (`helm lint --strict` semantics: a
// warning fails) with vals.
func lintChart(tb testing.TB, vals map[string]any) {
	tb.Helper()
	l := lint.RunAll(chartDir, vals, namespace)
	for _, m := range l.Messages {
		if m.Severity >= support.WarningSev {
			tb.Errorf("helm lint: %s", m)
		} else {
			tb.Logf("helm lint: %s", m)
		}
	}
}

// mustOne returns the only value of m, failing when there is not exactly one.
func mustOne[T any](tb testing.TB, what string, m map[string]T) T {
	tb.Helper()
	if len(m) != 1 {
		tb.Fatalf("%d %s objects, want 1", len(m), what)
	}
	for _, v := range m {
		return v
	}
	panic("unreachable")
}

func (o *objects) String() string { return fmt.Sprint(o.kinds) }
