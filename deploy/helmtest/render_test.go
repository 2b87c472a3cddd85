//go:build deploy

package helmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// KubeVersion is the Kubernetes the chart is rendered for and applied to; Helm would assume
// v1.20 without it. deploy/helm/kube-apiserver.sh builds the same version.
const KubeVersion = "v1.37.2"

// chartDir is the chart under test, from this package's directory.
const chartDir = "../helm/token-service"

// namespace is where the test renders and applies the chart.
const namespace = "token-service"

// monitoringAPI is the capability that turns the ServiceMonitor on.
const monitoringAPI = "monitoring.coreos.com/v1"

// rendered is one render of the chart: each document as Helm wrote it and as strict-decoded objects.
type rendered struct {
	docs       []string // in a stable order: Helm's by template file
	deployment *appsv1.Deployment
	service    *corev1.Service
	secret     *corev1.Secret
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	netpol     *networkingv1.NetworkPolicy
	monitor    *monitoringv1.ServiceMonitor
	configMaps []*corev1.ConfigMap // the grant policy and Redis's CA bundle, when the values hold them
}

// render renders the chart with the values files and overrides (later wins) through Helm's SDK,
// as `helm install --dry-run` does without a cluster, with the monitoring API present or not.
func render(valueFiles []string, overrides map[string]any, withMonitoring bool) (string, error) {
	chrt, err := loader.Load(chartDir)
	if err != nil {
		return "", fmt.Errorf("load chart: %w", err)
	}
	vals := map[string]any{}
	for _, f := range valueFiles {
		v, err := chartutil.ReadValuesFile(f)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", f, err)
		}
		vals = chartutil.CoalesceTables(v.AsMap(), vals)
	}
	vals = chartutil.CoalesceTables(overrides, vals)
	kv, err := chartutil.ParseKubeVersion(KubeVersion)
	if err != nil {
		return "", err
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun, install.ClientOnly, install.Replace = true, true, true
	install.ReleaseName, install.Namespace = "ts", namespace
	install.KubeVersion = kv
	if withMonitoring {
		install.APIVersions = chartutil.VersionSet{monitoringAPI, monitoringAPI + "/ServiceMonitor"}
	}
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

// mustRender renders and strict-decodes every document into its k8s.io/api type: a misspelled
// or misplaced field, or a document of a kind the chart should not make, fails the test.
func mustRender(t *testing.T, valueFiles []string, overrides map[string]any, withMonitoring bool) rendered {
	t.Helper()
	manifest, err := render(valueFiles, overrides, withMonitoring)
	if err != nil {
		t.Fatalf("render %v: %v", valueFiles, err)
	}
	split := releaseutil.SplitManifests(manifest)
	names := make([]string, 0, len(split))
	for k := range split {
		names = append(names, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(names))
	var r rendered
	for _, name := range names {
		doc := split[name]
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var into any
		switch meta.Kind {
		case "Deployment":
			r.deployment = new(appsv1.Deployment)
			into = r.deployment
		case "Service":
			r.service = new(corev1.Service)
			into = r.service
		case "Secret":
			r.secret = new(corev1.Secret)
			into = r.secret
		case "PodDisruptionBudget":
			r.pdb = new(policyv1.PodDisruptionBudget)
			into = r.pdb
		case "HorizontalPodAutoscaler":
			r.hpa = new(autoscalingv2.HorizontalPodAutoscaler)
			into = r.hpa
		case "NetworkPolicy":
			r.netpol = new(networkingv1.NetworkPolicy)
			into = r.netpol
		case "ServiceMonitor":
			r.monitor = new(monitoringv1.ServiceMonitor)
			into = r.monitor
		case "ConfigMap":
			cm := new(corev1.ConfigMap)
			r.configMaps = append(r.configMaps, cm)
			into = cm
		default:
			t.Fatalf("%s: unexpected kind %q", name, meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
			t.Fatalf("strict decode of %s:\n%v\n%s", name, err, doc)
		}
		r.docs = append(r.docs, doc)
	}
	if r.deployment == nil || r.service == nil {
		t.Fatalf("no Deployment or Service rendered:\n%s", manifest)
	}
	return r
}

// ciCase is one ci/*-values.yaml and what it must render.
type ciCase struct {
	file          string
	secretValues  []string // credentials that must appear nowhere but the Secret
	wantFiles     []string // the *_FILE variables the container gets
	wantPDB       bool
	wantHPA       bool
	wantMetrics   int32 // METRICS_PORT, 0 for none
	wantSecret    bool  // the chart makes the Secret (no existingSecret)
	wantSecretRef string
	wantPolicy    bool   // a POLICY_FILE from the chart's ConfigMap
	wantRedis     string // REDIS_MODE, empty without Redis
	wantRedisCA   bool   // a REDIS_CA_FILE from the chart's ConfigMap
}

var ciCases = []ciCase{
	{
		file:          "default-values.yaml",
		secretValues:  []string{"default-secret-0123456789abcdef0123456789"},
		wantFiles:     []string{"LIVEKIT_API_SECRET_FILE"},
		wantPDB:       true, // replicaCount 2
		wantSecret:    true,
		wantSecretRef: "ts-token-service",
	},
	{
		file: "production-values.yaml",
		secretValues: []string{"prod-secret-0123456789abcdef0123456789abc", "prod-old-secret-0123456789abcdef012345",
			"prod-service-key-0123456789abcdef0123456", "prod-redis-password"},
		wantFiles:     []string{"LIVEKIT_API_SECRET_FILE", "LIVEKIT_KEYS_FILE", "REDIS_URL_FILE", "SERVICE_API_KEYS_FILE"},
		wantPDB:       true, // autoscaler minimum 3
		wantHPA:       true,
		wantSecret:    true,
		wantSecretRef: "ts-token-service",
		wantRedis:     "single",
	},
	{
		file:          "existing-secret-values.yaml",
		wantFiles:     []string{"LIVEKIT_API_SECRET_FILE", "REDIS_URL_FILE", "SERVICE_API_KEYS_FILE"},
		wantPDB:       false, // one replica
		wantSecretRef: "token-service-credentials",
		wantRedis:     "single",
	},
	{
		file:          "redis-cluster-values.yaml",
		secretValues:  []string{"cluster-secret-0123456789abcdef0123456789", "cluster-redis-password-0123456789"},
		wantFiles:     []string{"LIVEKIT_API_SECRET_FILE", "REDIS_URL_FILE"},
		wantPDB:       true,
		wantSecret:    true,
		wantSecretRef: "ts-token-service",
		wantRedis:     "cluster",
		wantRedisCA:   true,
	},
	{
		file:          "metrics-port-values.yaml",
		secretValues:  []string{"metrics-secret-0123456789abcdef0123456789"},
		wantFiles:     []string{"LIVEKIT_API_SECRET_FILE"},
		wantPDB:       true,
		wantMetrics:   9090,
		wantSecret:    true,
		wantSecretRef: "ts-token-service",
	},
	{
		file:          "policy-values.yaml",
		secretValues:  []string{"policy-secret-0123456789abcdef0123456789", "policy-jwt-secret-0123456789abcdef01234"},
		wantFiles:     []string{"AUTH_JWT_SECRET_FILE", "LIVEKIT_API_SECRET_FILE"},
		wantPDB:       true,
		wantSecret:    true,
		wantSecretRef: "ts-token-service",
		wantPolicy:    true,
	},
}

// TestCIValuesAreAllTested keeps ciCases and the ci/ folder in step.
func TestCIValuesAreAllTested(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no ci/*-values.yaml in %s: %v", chartDir, err)
	}
	var want []string
	for _, c := range ciCases {
		want = append(want, c.file)
	}
	var got []string
	for _, f := range files {
		got = append(got, filepath.Base(f))
	}
	sort.Strings(want)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("ci/ holds %v, the test knows %v", got, want)
	}
}

// TestRender checks the chart's rules on every ci/*-values.yaml, with and without the
// ServiceMonitor CRD in the cluster.
func TestRender(t *testing.T) {
	for _, c := range ciCases {
		t.Run(c.file, func(t *testing.T) {
			files := []string{filepath.Join(chartDir, "ci", c.file)}
			r := mustRender(t, files, nil, true)
			checkPod(t, r, c)
			checkSecret(t, r, c)
			checkScaling(t, r, c)
			checkNetwork(t, r, c)
			checkPolicy(t, r, c)
			checkRedis(t, r, c)
			if r.monitor == nil {
				t.Fatal("no ServiceMonitor although the cluster serves " + monitoringAPI)
			}
			if without := mustRender(t, files, nil, false); without.monitor != nil {
				t.Fatal("a ServiceMonitor was rendered for a cluster without " + monitoringAPI)
			}
		})
	}
}

// TestSecretChangeRollsPods: a changed credential changes the pod template, so the pods restart
// and read the new file.
func TestSecretChangeRollsPods(t *testing.T) {
	files := []string{filepath.Join(chartDir, "ci", "default-values.yaml")}
	a := mustRender(t, files, nil, false)
	b := mustRender(t, files, map[string]any{"secrets": map[string]any{"livekitApiSecret": "another-secret-0123456789abcdef01234567"}}, false)
	sumA := a.deployment.Spec.Template.Annotations["checksum/secret"]
	sumB := b.deployment.Spec.Template.Annotations["checksum/secret"]
	if len(sumA) != 64 || sumA == sumB {
		t.Fatalf("checksum/secret %q then %q: want a sha256 that changes with the secret", sumA, sumB)
	}
}

// TestPolicyChangeRollsPods: a changed policy changes the pod template, so the pods restart
// with it (nothing sends the service SIGHUP in Kubernetes).
func TestPolicyChangeRollsPods(t *testing.T) {
	files := []string{filepath.Join(chartDir, "ci", "policy-values.yaml")}
	a := mustRender(t, files, nil, false)
	b := mustRender(t, files, map[string]any{"config": map[string]any{"policy": "version: 1\nrules: []\n"}}, false)
	sumA := a.deployment.Spec.Template.Annotations["checksum/policy"]
	sumB := b.deployment.Spec.Template.Annotations["checksum/policy"]
	if len(sumA) != 64 || sumA == sumB {
		t.Fatalf("checksum/policy %q then %q: want a sha256 that changes with the policy", sumA, sumB)
	}
}

// TestBadValuesRefused: each of these must stop the render, naming what is wrong.
func TestBadValuesRefused(t *testing.T) {
	base := []string{filepath.Join(chartDir, "ci", "default-values.yaml")}
	for _, tc := range []struct {
		name      string
		overrides map[string]any
		want      string // in the error
	}{
		{"negative delay", map[string]any{"config": map[string]any{"shutdownDelaySeconds": -1}}, "shutdownDelaySeconds"},
		{"negative timeout", map[string]any{"config": map[string]any{"shutdownTimeoutSeconds": -5}}, "shutdownTimeoutSeconds"},
		{"unknown key", map[string]any{"replicas": 3}, "replicas"},
		{"unknown nested key", map[string]any{"config": map[string]any{"prot": 3001}}, "prot"},
		{"wrong type", map[string]any{"replicaCount": "two"}, "replicaCount"},
		{"redis without url", map[string]any{"redis": map[string]any{"enabled": true}}, "url"},
		{"redis url while disabled", map[string]any{"redis": map[string]any{"url": "redis://r:6379/0"}}, "redis.enabled"},
		{"no api secret", map[string]any{"secrets": map[string]any{"livekitApiSecret": ""}}, "livekitApiSecret"},
		{"no ws url", map[string]any{"config": map[string]any{"livekitWsUrl": ""}}, "livekitWsUrl"},
		{"readiness slower than delay", map[string]any{"config": map[string]any{"shutdownDelaySeconds": 4}}, "below config.shutdownDelaySeconds"},
		{"metrics on the main port", map[string]any{"config": map[string]any{"metricsPort": 3001}}, "metricsPort"},
		{"inline secret with existing one", map[string]any{"secrets": map[string]any{"existingSecret": "x"}}, "existingSecret"},
		{"unknown existing secret key", map[string]any{"secrets": map[string]any{"existingSecretKeys": []any{"LIVEKIT_API_SECRET", "PASSWORD"}}}, "existingSecretKeys"},
		{"api timeout out of range", map[string]any{"config": map[string]any{"livekitApiTimeoutMs": 0}}, "livekitApiTimeoutMs"},
		{"api url not a URL", map[string]any{"config": map[string]any{"livekitApiUrl": "livekit:7880"}}, "livekitApiUrl"},
		{"bad scrape interval", map[string]any{"serviceMonitor": map[string]any{"interval": "often"}}, "interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			manifest, err := render(base, tc.overrides, true)
			if err == nil {
				t.Fatalf("rendered although %s:\n%s", tc.name, manifest)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error does not name %q: %v", tc.want, err)
			}
		})
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
