//go:build deploy

package helmtest

import (
	"encoding/pem"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/token-service/token-service/policy"
)

// secretVariables are the service's credential variables: none may be a plain environment value.
var secretVariables = []string{"LIVEKIT_API_SECRET", "LIVEKIT_KEYS", "SERVICE_API_KEYS", "AUTH_JWT_SECRET", "REDIS_URL"}

// envInt reads a rendered environment variable the service parses as an int.
func envInt(t *testing.T, c *corev1.Container, name string) int64 {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			n, err := strconv.ParseInt(e.Value, 10, 64)
			if err != nil {
				t.Fatalf("%s=%q: %v", name, e.Value, err)
			}
			return n
		}
	}
	t.Fatalf("%s is not in the container's environment", name)
	return 0
}

// checkPod: probes and shutdown timings, the security context and topology spread.
func checkPod(t *testing.T, r rendered, c ciCase) {
	t.Helper()
	pod := r.deployment.Spec.Template.Spec
	if len(pod.Containers) != 1 || len(pod.InitContainers) != 0 {
		t.Fatalf("want one container, got %d (+%d init)", len(pod.Containers), len(pod.InitContainers))
	}
	ctr := &pod.Containers[0]

	live, ready := ctr.LivenessProbe, ctr.ReadinessProbe
	if live == nil || live.HTTPGet == nil || live.HTTPGet.Path != "/health" || live.HTTPGet.Port.String() != "http" {
		t.Errorf("liveness probe %+v: want GET /health on port http", live)
	}
	if ready == nil || ready.HTTPGet == nil || ready.HTTPGet.Path != "/ready" || ready.HTTPGet.Port.String() != "http" {
		t.Fatalf("readiness probe %+v: want GET /ready on port http", ready)
	}
	delay := envInt(t, ctr, "SHUTDOWN_DELAY_SECONDS")
	timeout := envInt(t, ctr, "SHUTDOWN_TIMEOUT_SECONDS")
	// The pod must be seen unready (and leave the endpoints) while it still serves.
	if got := int64(ready.PeriodSeconds * ready.FailureThreshold); got >= delay {
		t.Errorf("readiness periodSeconds*failureThreshold = %d, not below SHUTDOWN_DELAY_SECONDS=%d", got, delay)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || *g < delay+timeout {
		t.Errorf("terminationGracePeriodSeconds %v < SHUTDOWN_DELAY_SECONDS+SHUTDOWN_TIMEOUT_SECONDS = %d", g, delay+timeout)
	}

	ps := pod.SecurityContext
	if ps == nil || !isTrue(ps.RunAsNonRoot) || !is(ps.RunAsUser, 65532) || !is(ps.RunAsGroup, 65532) || !is(ps.FSGroup, 65532) ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want non-root 65532:65532, fsGroup 65532, seccomp RuntimeDefault", ps)
	}
	cs := ctr.SecurityContext
	if cs == nil || !isTrue(cs.RunAsNonRoot) || !is(cs.RunAsUser, 65532) || !is(cs.RunAsGroup, 65532) ||
		!isTrue(cs.ReadOnlyRootFilesystem) || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation ||
		cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(cs.Capabilities.Add) != 0 ||
		cs.SeccompProfile == nil || cs.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault || cs.Privileged != nil {
		t.Errorf("container securityContext %+v: want 65532 non-root, read-only root, no escalation, drop ALL, RuntimeDefault", cs)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken must be false: the service calls no Kubernetes API")
	}

	podLabels := labels.Set(r.deployment.Spec.Template.Labels)
	spread := false
	for _, tsc := range pod.TopologySpreadConstraints {
		sel, err := metaSelector(tsc.LabelSelector)
		if err != nil {
			t.Fatal(err)
		}
		if tsc.TopologyKey == "kubernetes.io/hostname" && sel.Matches(podLabels) {
			spread = true
		}
	}
	if !spread {
		t.Errorf("no topology spread across nodes selecting the pods: %+v", pod.TopologySpreadConstraints)
	}
	if sel, err := metaSelector(r.deployment.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		t.Errorf("Deployment selector does not match its pods: %v", err)
	}
	if !labels.SelectorFromSet(r.service.Spec.Selector).Matches(podLabels) || len(r.service.Spec.Selector) == 0 {
		t.Errorf("Service selector %v does not match the pods %v", r.service.Spec.Selector, podLabels)
	}

	// METRICS_PORT set: its own container port, Service port and scrape target.
	var metricsPort int32
	for _, p := range ctr.Ports {
		if p.Name == "metrics" {
			metricsPort = p.ContainerPort
		}
	}
	if c.wantMetrics != 0 {
		if got := envInt(t, ctr, "METRICS_PORT"); got != int64(c.wantMetrics) || metricsPort != c.wantMetrics {
			t.Errorf("METRICS_PORT=%d, container port metrics=%d: want %d", got, metricsPort, c.wantMetrics)
		}
		if !hasServicePort(r.service, "metrics") {
			t.Error("Service has no metrics port")
		}
	} else if metricsPort != 0 || hasServicePort(r.service, "metrics") || hasEnv(ctr, "METRICS_PORT") {
		t.Error("a metrics port without METRICS_PORT")
	}
	if r.monitor != nil {
		want := "http"
		if c.wantMetrics != 0 {
			want = "metrics"
		}
		if len(r.monitor.Spec.Endpoints) != 1 || r.monitor.Spec.Endpoints[0].Port != want || r.monitor.Spec.Endpoints[0].Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoints %+v: want /metrics on port %s", r.monitor.Spec.Endpoints, want)
		}
		if sel, err := metaSelector(&r.monitor.Spec.Selector); err != nil || !sel.Matches(labels.Set(r.service.Labels)) {
			t.Errorf("ServiceMonitor selector does not match the Service: %v", err)
		}
	}
}

// checkPolicy: with a policy in the values, POLICY_FILE names the file the chart's ConfigMap
// mounts, read-only, and what it holds is a policy the service loads; without, none of it.
func checkPolicy(t *testing.T, r rendered, c ciCase) {
	t.Helper()
	file, text, ok := mountedFile(t, r, "POLICY_FILE", "-policy")
	if !c.wantPolicy {
		if ok {
			t.Fatalf("POLICY_FILE %q or its ConfigMap without a policy in the values", file)
		}
		return
	}
	if !ok {
		t.Fatal("no POLICY_FILE from a ConfigMap although the values hold a policy")
	}
	// As start-up would read it with the chart's service keys set: the strictest reading.
	if _, err := policy.Parse(file, []byte(text), policy.Options{ServiceKeys: true}); err != nil {
		t.Fatalf("the chart's policy does not load: %v", err)
	}
	if len(r.deployment.Spec.Template.Annotations["checksum/policy"]) != 64 {
		t.Error("no checksum/policy annotation: a changed policy would not roll the pods")
	}
}

// checkRedis: with Redis on, REDIS_MODE and REDIS_KEY_PREFIX are set as the values say, and a
// CA bundle in the values is the PEM file REDIS_CA_FILE names, from the chart's ConfigMap, whose
// change rolls the pods (the service reads it at start-up); without Redis, none of it.
func checkRedis(t *testing.T, r rendered, c ciCase) {
	t.Helper()
	ctr := &r.deployment.Spec.Template.Spec.Containers[0]
	mode, prefix := envValue(ctr, "REDIS_MODE"), envValue(ctr, "REDIS_KEY_PREFIX")
	if mode != c.wantRedis || (c.wantRedis != "") != (prefix != "") {
		t.Fatalf("REDIS_MODE=%q REDIS_KEY_PREFIX=%q: want mode %q and a prefix with Redis only", mode, prefix, c.wantRedis)
	}
	file, text, ok := mountedFile(t, r, "REDIS_CA_FILE", "-redis-ca")
	if !c.wantRedisCA {
		if ok {
			t.Fatalf("REDIS_CA_FILE %q or its ConfigMap without a CA bundle in the values", file)
		}
		return
	}
	if !ok {
		t.Fatal("no REDIS_CA_FILE from a ConfigMap although the values hold a CA bundle")
	}
	if block, _ := pem.Decode([]byte(text)); block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no PEM certificate", file)
	}
	if len(r.deployment.Spec.Template.Annotations["checksum/redis-ca"]) != 64 {
		t.Error("no checksum/redis-ca annotation: a changed CA bundle would not roll the pods")
	}
}

func envValue(ctr *corev1.Container, name string) string {
	for _, e := range ctr.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// mountedFile is the file the variable names and its text, when it is in a read-only mount of
// the chart's ConfigMap whose name ends in suffix; ok is false when neither the variable nor that
// ConfigMap is there, and the test fails when only one of them is.
func mountedFile(t *testing.T, r rendered, variable, suffix string) (file, text string, ok bool) {
	t.Helper()
	pod := r.deployment.Spec.Template.Spec
	ctr := &pod.Containers[0]
	file = envValue(ctr, variable)
	var cm *corev1.ConfigMap
	for _, m := range r.configMaps {
		if strings.HasSuffix(m.Name, suffix) {
			cm = m
		}
	}
	if file == "" && cm == nil {
		return "", "", false
	}
	if file == "" || cm == nil {
		t.Fatalf("%s %q, ConfigMap *%s %v: want both or neither", variable, file, suffix, cm != nil)
	}
	var mounted string
	for _, v := range pod.Volumes {
		if v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
			continue
		}
		for _, m := range ctr.VolumeMounts {
			if m.Name == v.Name && m.ReadOnly {
				mounted = m.MountPath
			}
		}
	}
	dir, key := path.Split(file)
	if path.Clean(dir) != mounted {
		t.Fatalf("%s=%s is not in the ConfigMap's read-only mount %q", variable, file, mounted)
	}
	text, found := cm.Data[key]
	if !found {
		t.Fatalf("ConfigMap %s has no key %s: %v", cm.Name, key, cm.Data)
	}
	return file, text, true
}

// checkSecret: credentials only as files from the Secret, through *_FILE variables.
func checkSecret(t *testing.T, r rendered, c ciCase) {
	t.Helper()
	pod := r.deployment.Spec.Template.Spec
	ctr := &pod.Containers[0]
	if len(ctr.EnvFrom) != 0 {
		t.Errorf("envFrom %+v: credentials must not become environment values", ctr.EnvFrom)
	}
	var fileVars []string
	mountedAt := map[string]string{} // *_FILE variable -> file path
	for _, e := range ctr.Env {
		if slices.Contains(secretVariables, e.Name) {
			t.Errorf("%s is a plain environment variable; only %s_FILE may be set", e.Name, e.Name)
		}
		if e.ValueFrom != nil {
			t.Errorf("%s comes from valueFrom; credentials reach the container only as files", e.Name)
		}
		if strings.HasSuffix(e.Name, "_FILE") && e.Name != "POLICY_FILE" && e.Name != "REDIS_CA_FILE" { // no credentials: checkPolicy, checkRedis
			fileVars = append(fileVars, e.Name)
			mountedAt[e.Name] = e.Value
		}
	}
	slices.Sort(fileVars)
	if !slices.Equal(fileVars, c.wantFiles) {
		t.Errorf("*_FILE variables %v, want %v", fileVars, c.wantFiles)
	}

	var vol *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Secret != nil {
			vol = &pod.Volumes[i]
		}
	}
	if vol == nil || vol.Secret.SecretName != c.wantSecretRef {
		t.Fatalf("secret volume %+v: want one from Secret %q", vol, c.wantSecretRef)
	}
	var mount *corev1.VolumeMount
	for i := range ctr.VolumeMounts {
		if ctr.VolumeMounts[i].Name == vol.Name {
			mount = &ctr.VolumeMounts[i]
		}
	}
	if mount == nil || !mount.ReadOnly {
		t.Fatalf("secret volume %q not mounted read-only: %+v", vol.Name, ctr.VolumeMounts)
	}
	items := map[string]string{} // file path -> Secret key
	for _, it := range vol.Secret.Items {
		items[path.Join(mount.MountPath, it.Path)] = it.Key
	}
	for _, v := range fileVars {
		key := strings.TrimSuffix(v, "_FILE")
		if items[mountedAt[v]] != key {
			t.Errorf("%s=%s is not the Secret's key %s mounted there (items %v)", v, mountedAt[v], key, items)
		}
	}
	if len(items) != len(fileVars) {
		t.Errorf("Secret items %v but *_FILE variables %v", items, fileVars)
	}

	checksum, annotated := r.deployment.Spec.Template.Annotations["checksum/secret"]
	if c.wantSecret {
		if r.secret == nil || r.secret.Name != c.wantSecretRef {
			t.Fatalf("the chart's Secret %q was not rendered", c.wantSecretRef)
		}
		for _, v := range fileVars {
			if _, ok := r.secret.Data[strings.TrimSuffix(v, "_FILE")]; !ok {
				t.Errorf("Secret lacks %s, which %s names", strings.TrimSuffix(v, "_FILE"), v)
			}
		}
		if len(checksum) != 64 {
			t.Errorf("pod template checksum/secret %q: want the Secret's sha256", checksum)
		}
	} else if r.secret != nil || annotated {
		t.Error("existingSecret: the chart must make no Secret and no checksum of one")
	}
	// No credential anywhere but the Secret (base64 there).
	for _, doc := range r.docs {
		if strings.Contains(doc, "kind: Secret") {
			continue
		}
		for _, s := range c.secretValues {
			if strings.Contains(doc, s) {
				t.Errorf("a credential is in plain text outside the Secret:\n%s", doc)
			}
		}
	}
}

// checkScaling: the autoscaler replaces replicas; a PDB only when more than one pod runs.
func checkScaling(t *testing.T, r rendered, c ciCase) {
	t.Helper()
	if (r.hpa != nil) != c.wantHPA {
		t.Fatalf("HorizontalPodAutoscaler rendered: %v, want %v", r.hpa != nil, c.wantHPA)
	}
	minPods := int32(1)
	if r.deployment.Spec.Replicas != nil {
		minPods = *r.deployment.Spec.Replicas
	}
	if r.hpa != nil {
		if r.deployment.Spec.Replicas != nil {
			t.Error("Deployment sets replicas although an autoscaler owns them")
		}
		if r.hpa.Spec.ScaleTargetRef.Kind != "Deployment" || r.hpa.Spec.ScaleTargetRef.Name != r.deployment.Name {
			t.Errorf("autoscaler targets %+v, not the Deployment %s", r.hpa.Spec.ScaleTargetRef, r.deployment.Name)
		}
		minPods = *r.hpa.Spec.MinReplicas
	}
	if (r.pdb != nil) != c.wantPDB || (r.pdb != nil) != (minPods > 1) {
		t.Fatalf("PodDisruptionBudget rendered: %v with at least %d pods, want %v", r.pdb != nil, minPods, c.wantPDB)
	}
	if r.pdb != nil {
		if (r.pdb.Spec.MinAvailable == nil) == (r.pdb.Spec.MaxUnavailable == nil) {
			t.Error("PodDisruptionBudget needs exactly one of minAvailable and maxUnavailable")
		}
		if sel, err := metaSelector(r.pdb.Spec.Selector); err != nil || !sel.Matches(labels.Set(r.deployment.Spec.Template.Labels)) {
			t.Errorf("PodDisruptionBudget selector does not match the pods: %v", err)
		}
	}
}

// checkNetwork: the NetworkPolicy selects the pods and admits the HTTP (and metrics) port only.
func checkNetwork(t *testing.T, r rendered, c ciCase) {
	t.Helper()
	np := r.netpol
	if np == nil {
		t.Fatal("no NetworkPolicy")
	}
	if sel, err := metaSelector(&np.Spec.PodSelector); err != nil || !sel.Matches(labels.Set(r.deployment.Spec.Template.Labels)) {
		t.Errorf("NetworkPolicy podSelector does not match the pods: %v", err)
	}
	var ports []string
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			ports = append(ports, p.Port.String())
		}
	}
	want := []string{"http"}
	if c.wantMetrics != 0 {
		want = append(want, "metrics")
	}
	if !slices.Equal(ports, want) {
		t.Errorf("NetworkPolicy admits ports %v, want %v", ports, want)
	}
}

func isTrue(b *bool) bool          { return b != nil && *b }
func is(n *int64, want int64) bool { return n != nil && *n == want }

func hasEnv(c *corev1.Container, name string) bool {
	return slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name })
}

func hasServicePort(s *corev1.Service, name string) bool {
	return slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == name })
}
