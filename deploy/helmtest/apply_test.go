//go:build deploy

package helmtest

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"
)

// cluster is the test's kube-apiserver, as a client sees it.
type cluster struct {
	dyn       dynamic.Interface
	discovery discovery.DiscoveryInterface
	mapper    *restmapper.DeferredDiscoveryRESTMapper
}

// dryRun is `kubectl apply --dry-run=server --validate=strict` for an object that does not exist yet.
var dryRun = metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict", FieldManager: "helmtest"}

// TestApply renders every ci/*-values.yaml for the real server (the ServiceMonitor only once its
// CRD is served) and has the server dry-run-apply each document with strict field validation.
func TestApply(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	began := time.Now()
	url, caFile := startKubeAPIServer(t, startEtcd(t))
	t.Logf("etcd and kube-apiserver %s up in %v", KubeVersion, time.Since(began).Round(time.Millisecond))
	c := newCluster(t, url, caFile)

	c.create(t, ctx, mustObject(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: "+namespace+"\n"), metav1.CreateOptions{})
	if c.serves(t, monitoringAPI) {
		t.Fatal(monitoringAPI + " served before its CRD was installed")
	}
	for _, tc := range []struct {
		name string
		crd  bool
	}{{"without the ServiceMonitor CRD", false}, {"with the ServiceMonitor CRD", true}} {
		if tc.crd {
			c.installCRD(t, ctx, readFile(t, "testdata/servicemonitor-crd.yaml"))
		}
		withMonitoring := c.serves(t, monitoringAPI) // what `helm install` would see
		for _, ci := range ciCases {
			t.Run(tc.name+"/"+ci.file, func(t *testing.T) {
				r := mustRender(t, []string{filepath.Join(chartDir, "ci", ci.file)}, nil, withMonitoring)
				if (r.monitor != nil) != tc.crd {
					t.Fatalf("ServiceMonitor rendered: %v, CRD installed: %v", r.monitor != nil, tc.crd)
				}
				for _, doc := range r.docs {
					obj := mustObject(t, doc)
					if _, err := c.resource(t, obj).Create(ctx, obj, dryRun); err != nil {
						t.Errorf("server refused %s %s: %v\n%s", obj.GetKind(), obj.GetName(), err, doc)
					}
				}
			})
		}
	}

	// The server, not the decoder, refuses these: proof the dry run validates for real.
	base := mustRender(t, []string{filepath.Join(chartDir, "ci", "default-values.yaml")}, nil, true)
	for _, tc := range []struct {
		name, kind string
		edit       func(o *unstructured.Unstructured)
		want       string
	}{
		{"PDB with minAvailable and maxUnavailable", "PodDisruptionBudget",
			func(o *unstructured.Unstructured) {
				_ = unstructured.SetNestedField(o.Object, int64(1), "spec", "minAvailable")
			},
			"minAvailable"},
		{"unknown field", "Deployment",
			func(o *unstructured.Unstructured) {
				_ = unstructured.SetNestedField(o.Object, int64(2), "spec", "replica")
			},
			`unknown field "spec.replica"`},
		{"port name over 15 characters", "Deployment",
			func(o *unstructured.Unstructured) {
				ctrs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
				ctrs[0].(map[string]any)["ports"] = []any{map[string]any{"name": "a-very-long-port-name", "containerPort": int64(3001)}}
				_ = unstructured.SetNestedSlice(o.Object, ctrs, "spec", "template", "spec", "containers")
			},
			"must be no more than 15 characters"},
		{"ServiceMonitor with a misspelled field", "ServiceMonitor",
			func(o *unstructured.Unstructured) {
				_ = unstructured.SetNestedField(o.Object, "30s", "spec", "scrapeInterval")
			},
			`unknown field "spec.scrapeInterval"`},
	} {
		t.Run("server refuses "+tc.name, func(t *testing.T) {
			obj := base.object(t, tc.kind)
			tc.edit(obj)
			_, err := c.resource(t, obj).Create(ctx, obj, dryRun)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error naming %q, got %v", tc.want, err)
			}
		})
	}
}

// object is the rendered document of one kind, as the client sends it.
func (r rendered) object(t *testing.T, kind string) *unstructured.Unstructured {
	t.Helper()
	for _, doc := range r.docs {
		if o := mustObject(t, doc); o.GetKind() == kind {
			return o
		}
	}
	t.Fatalf("no %s rendered", kind)
	return nil
}

func newCluster(t *testing.T, url, caFile string) *cluster {
	t.Helper()
	cfg := &rest.Config{Host: url, BearerToken: adminToken, TLSClientConfig: rest.TLSClientConfig{CAFile: caFile}, Timeout: 10 * time.Second}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{dyn: dyn, discovery: dc, mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))}
}

// serves reports whether the server offers a group/version, as Helm's capabilities check it.
func (c *cluster) serves(t *testing.T, groupVersion string) bool {
	t.Helper()
	groups, err := c.discovery.ServerGroups()
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(groups.Groups, func(g metav1.APIGroup) bool {
		return slices.ContainsFunc(g.Versions, func(v metav1.GroupVersionForDiscovery) bool { return v.GroupVersion == groupVersion })
	})
}

// resource is where obj is created: namespaced kinds in the test's namespace.
func (c *cluster) resource(t *testing.T, obj *unstructured.Unstructured) dynamic.ResourceInterface {
	t.Helper()
	gvk := obj.GroupVersionKind()
	m, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		t.Fatalf("the server serves no %v: %v", gvk, err)
	}
	if m.Scope.Name() == "namespace" {
		return c.dyn.Resource(m.Resource).Namespace(namespace)
	}
	return c.dyn.Resource(m.Resource)
}

func (c *cluster) create(t *testing.T, ctx context.Context, obj *unstructured.Unstructured, opts metav1.CreateOptions) {
	t.Helper()
	if _, err := c.resource(t, obj).Create(ctx, obj, opts); err != nil {
		t.Fatalf("create %s %s: %v", obj.GetKind(), obj.GetName(), err)
	}
}

// installCRD creates a CRD for real, waits for it to be Established and for discovery to list it.
func (c *cluster) installCRD(t *testing.T, ctx context.Context, doc string) {
	t.Helper()
	crd := mustObject(t, doc)
	c.create(t, ctx, crd, metav1.CreateOptions{FieldValidation: "Strict"})
	crds := c.dyn.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	err := poll(ctx, 30*time.Second, "CRD established", func() error {
		got, err := crds.Get(ctx, crd.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return errNotYet
		} else if err != nil {
			return err
		}
		conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
		for _, cond := range conds {
			m := cond.(map[string]any)
			if m["type"] == "Established" && m["status"] == string(corev1.ConditionTrue) {
				return nil
			}
		}
		return errNotYet
	})
	if err == nil {
		err = poll(ctx, 30*time.Second, "CRD in discovery", func() error {
			if c.serves(t, monitoringAPI) {
				return nil
			}
			return errNotYet
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	c.mapper.Reset()
}

// mustObject decodes one YAML document for the dynamic client.
func mustObject(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}
