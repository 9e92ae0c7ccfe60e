package deploytest

import (
	"bytes"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
)

const (
	chartDir    = "helm/eventstream"
	releaseName = "es"
	namespace   = "events"
	// fullname is the chart's base name for release "es".
	fullname = "es-eventstream"
)

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(filepath.Join(repoRoot, chartDir))
	if err != nil {
		t.Fatalf("loading chart: %v", err)
	}
	return c
}

// values merges YAML documents (chart-relative files or inline YAML) the way
// `helm -f a -f b` does: later maps override earlier ones key by key.
func values(t *testing.T, sources ...string) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, s := range sources {
		b := []byte(s)
		if !strings.Contains(s, "\n") && strings.HasSuffix(s, ".yaml") {
			b = readRepoFile(t, filepath.Join(chartDir, s))
		}
		v, err := chartutil.ReadValues(b)
		if err != nil {
			t.Fatalf("reading values %q: %v", s, err)
		}
		out = mergeValues(out, v)
	}
	return out
}

func mergeValues(dst, src map[string]any) map[string]any {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

// render renders the chart as `helm template` would for an install, hooks
// included; the schema is checked on the way (as helm install does).
func render(t *testing.T, c *chart.Chart, vals map[string]any) (map[string]string, error) {
	t.Helper()
	caps := chartutil.DefaultCapabilities.Copy()
	caps.APIVersions = append(caps.APIVersions, "keda.sh/v1alpha1", "monitoring.coreos.com/v1")
	top, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{
		Name: releaseName, Namespace: namespace, Revision: 1, IsInstall: true,
	}, caps)
	if err != nil {
		return nil, err
	}
	return engine.Render(c, top)
}

// objects are one rendering's manifests, decoded.
type objects struct {
	deployments  []appsv1.Deployment
	services     []corev1.Service
	configMaps   []corev1.ConfigMap
	secrets      []corev1.Secret
	accounts     []corev1.ServiceAccount
	jobs         []batchv1.Job
	pdbs         []policyv1.PodDisruptionBudget
	hpas         []autoscalingv2.HorizontalPodAutoscaler
	ingresses    []networkingv1.Ingress
	netpols      []networkingv1.NetworkPolicy
	scaledObjs   []unstructured.Unstructured
	monitors     []unstructured.Unstructured
	rules        []unstructured.Unstructured
	notes        string
	kindsByNames map[string]bool
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decode splits the rendered files into documents and decodes each strictly
// (unknown or duplicate fields fail) into its Kubernetes API type.
func decode(t *testing.T, files map[string]string) *objects {
	t.Helper()
	o := &objects{kindsByNames: map[string]bool{}}
	names := slices.Sorted(maps.Keys(files))
	for _, file := range names {
		if strings.HasSuffix(file, "NOTES.txt") {
			o.notes = files[file]
			continue
		}
		for _, doc := range docSep.Split(files[file], -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct {
					Name      string `json:"name"`
					Namespace string `json:"namespace"`
				} `json:"metadata"`
			}
			if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
				t.Fatalf("%s: not YAML: %v\n%s", file, err, doc)
			}
			key := meta.Kind + "/" + meta.Metadata.Name
			if o.kindsByNames[key] {
				t.Errorf("%s: %s rendered twice", file, key)
			}
			o.kindsByNames[key] = true
			if meta.Metadata.Name == "" || len(meta.Metadata.Name) > 63 {
				t.Errorf("%s: %s: name must be 1..63 characters", file, key)
			}
			strict := func(into any) {
				if err := yaml.UnmarshalStrict([]byte(doc), into); err != nil {
					t.Errorf("%s: %s does not decode strictly into %T: %v\n%s", file, key, into, err, doc)
				}
			}
			switch meta.APIVersion + " " + meta.Kind {
			case "apps/v1 Deployment":
				var v appsv1.Deployment
				strict(&v)
				o.deployments = append(o.deployments, v)
			case "v1 Service":
				var v corev1.Service
				strict(&v)
				o.services = append(o.services, v)
			case "v1 ConfigMap":
				var v corev1.ConfigMap
				strict(&v)
				o.configMaps = append(o.configMaps, v)
			case "v1 Secret":
				var v corev1.Secret
				strict(&v)
				o.secrets = append(o.secrets, v)
			case "v1 ServiceAccount":
				var v corev1.ServiceAccount
				strict(&v)
				o.accounts = append(o.accounts, v)
			case "batch/v1 Job":
				var v batchv1.Job
				strict(&v)
				o.jobs = append(o.jobs, v)
			case "policy/v1 PodDisruptionBudget":
				var v policyv1.PodDisruptionBudget
				strict(&v)
				o.pdbs = append(o.pdbs, v)
			case "autoscaling/v2 HorizontalPodAutoscaler":
				var v autoscalingv2.HorizontalPodAutoscaler
				strict(&v)
				o.hpas = append(o.hpas, v)
			case "networking.k8s.io/v1 Ingress":
				var v networkingv1.Ingress
				strict(&v)
				o.ingresses = append(o.ingresses, v)
			case "networking.k8s.io/v1 NetworkPolicy":
				var v networkingv1.NetworkPolicy
				strict(&v)
				o.netpols = append(o.netpols, v)
			case "keda.sh/v1alpha1 ScaledObject":
				o.scaledObjs = append(o.scaledObjs, toUnstructured(t, doc))
			case "monitoring.coreos.com/v1 ServiceMonitor":
				o.monitors = append(o.monitors, toUnstructured(t, doc))
			case "monitoring.coreos.com/v1 PrometheusRule":
				o.rules = append(o.rules, toUnstructured(t, doc))
			default:
				t.Errorf("%s: unexpected %s %s", file, meta.APIVersion, meta.Kind)
			}
		}
	}
	return o
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func toUnstructured(t *testing.T, doc string) unstructured.Unstructured {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatal(err)
	}
	return unstructured.Unstructured{Object: m}
}

func (o *objects) deployment(name string) *appsv1.Deployment {
	for i := range o.deployments {
		if o.deployments[i].Name == name {
			return &o.deployments[i]
		}
	}
	return nil
}

func (o *objects) service(name string) *corev1.Service {
	for i := range o.services {
		if o.services[i].Name == name {
			return &o.services[i]
		}
	}
	return nil
}

// deliveryPools maps pool name to tenants, from the delivery Deployments' env.
func (o *objects) deliveryPools(t *testing.T) map[string][]string {
	t.Helper()
	pools := map[string][]string{}
	for _, d := range o.deployments {
		if d.Labels["app.kubernetes.io/component"] != "delivery" {
			continue
		}
		env := envOf(d.Spec.Template.Spec.Containers[0])
		pool, tenants := env["DELIVERY_POOL"], env["DELIVERY_POOL_TENANTS"]
		if pool == "" || tenants == "" {
			t.Errorf("%s: DELIVERY_POOL=%q DELIVERY_POOL_TENANTS=%q, both required", d.Name, pool, tenants)
			continue
		}
		if want := fullname + "-delivery-" + pool; d.Name != want {
			t.Errorf("delivery Deployment %s serves pool %q: want the name %s", d.Name, pool, want)
		}
		if d.Labels["eventstream.io/pool"] != pool {
			t.Errorf("%s: label eventstream.io/pool=%q, want %q", d.Name, d.Labels["eventstream.io/pool"], pool)
		}
		if env["DELIVERY_ADDR"] != ":8083" {
			t.Errorf("%s: DELIVERY_ADDR=%q, want :8083", d.Name, env["DELIVERY_ADDR"])
		}
		pools[pool] = strings.Split(tenants, ",")
	}
	return pools
}

func envOf(c corev1.Container) map[string]string {
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// partitions is kafka.topicPartitions of the rendering (from its ConfigMap).
func (o *objects) partitions(t *testing.T) int {
	t.Helper()
	for _, cm := range o.configMaps {
		if v, ok := cm.Data["KAFKA_TOPIC_PARTITIONS"]; ok {
			var n int
			if _, err := fmt.Sscan(v, &n); err != nil {
				t.Fatalf("KAFKA_TOPIC_PARTITIONS=%q: %v", v, err)
			}
			return n
		}
	}
	t.Fatal("no ConfigMap sets KAFKA_TOPIC_PARTITIONS")
	return 0
}

// checkCommon asserts what every rendering must satisfy.
func checkCommon(t *testing.T, o *objects, existingSecret string) {
	t.Helper()
	if len(o.deployments) < 3 {
		t.Fatalf("want at least ingest, configapi and one delivery Deployment, got %d", len(o.deployments))
	}
	secretNames := map[string]bool{existingSecret: existingSecret != ""}
	for _, s := range o.secrets {
		secretNames[s.Name] = true
	}
	configNames := map[string]bool{}
	for _, c := range o.configMaps {
		configNames[c.Name] = true
	}
	scaled := map[string]bool{}
	for _, h := range o.hpas {
		scaled[h.Spec.ScaleTargetRef.Name] = true
		if o.deployment(h.Spec.ScaleTargetRef.Name) == nil || h.Spec.ScaleTargetRef.Kind != "Deployment" {
			t.Errorf("HPA %s scales %s %s, which is not rendered", h.Name, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas > h.Spec.MaxReplicas {
			t.Errorf("HPA %s: minReplicas must be set and not above maxReplicas %d", h.Name, h.Spec.MaxReplicas)
		}
	}
	partitions := o.partitions(t)
	for _, so := range o.scaledObjs {
		checkScaledObject(t, o, so, partitions)
		target, _, _ := unstructured.NestedString(so.Object, "spec", "scaleTargetRef", "name")
		scaled[target] = true
	}
	for _, h := range o.hpas {
		if h.Labels["app.kubernetes.io/component"] == "delivery" && int(h.Spec.MaxReplicas) > partitions {
			t.Errorf("HPA %s: maxReplicas %d above the %d partitions", h.Name, h.Spec.MaxReplicas, partitions)
		}
	}

	for _, d := range o.deployments {
		t.Run("deployment "+d.Name, func(t *testing.T) {
			checkWorkload(t, d.Name, d.Spec.Template.Spec, secretNames, configNames)
			sel, err := metaSelector(d.Spec.Selector.MatchLabels)
			if err != nil || len(d.Spec.Selector.MatchLabels) == 0 {
				t.Fatalf("selector %v: %v", d.Spec.Selector.MatchLabels, err)
			}
			if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				t.Errorf("selector %v does not match the pod labels %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
			}
			// A selector must not also select another Deployment's pods.
			for _, other := range o.deployments {
				if other.Name != d.Name && sel.Matches(labels.Set(other.Spec.Template.Labels)) {
					t.Errorf("selector %v also matches the pods of %s", d.Spec.Selector.MatchLabels, other.Name)
				}
			}
			var pdbs []string
			for _, p := range o.pdbs {
				ps, err := metaSelector(p.Spec.Selector.MatchLabels)
				if err != nil {
					t.Fatal(err)
				}
				if ps.Matches(labels.Set(d.Spec.Template.Labels)) {
					pdbs = append(pdbs, p.Name)
					if p.Spec.MaxUnavailable == nil && p.Spec.MinAvailable == nil {
						t.Errorf("PDB %s sets neither maxUnavailable nor minAvailable", p.Name)
					}
				}
			}
			if len(pdbs) != 1 {
				t.Errorf("want exactly one PodDisruptionBudget for its pods, got %v", pdbs)
			}
			if len(d.Spec.Template.Spec.TopologySpreadConstraints) == 0 {
				t.Error("no topologySpreadConstraints")
			}
			for _, c := range d.Spec.Template.Spec.TopologySpreadConstraints {
				cs, _ := metaSelector(c.LabelSelector.MatchLabels)
				if !cs.Matches(labels.Set(d.Spec.Template.Labels)) {
					t.Errorf("topology spread selector %v does not match the pod labels", c.LabelSelector.MatchLabels)
				}
			}
			if scaled[d.Name] && d.Spec.Replicas != nil {
				t.Errorf("autoscaled, yet replicas is set (%d): every upgrade would reset the autoscaler's choice", *d.Spec.Replicas)
			}
			if !scaled[d.Name] && d.Spec.Replicas == nil {
				t.Error("not autoscaled and replicas is not set")
			}
			if d.Spec.Template.Spec.TerminationGracePeriodSeconds == nil {
				t.Error("terminationGracePeriodSeconds is not set")
			}
		})
	}
	for _, j := range o.jobs {
		t.Run("job "+j.Name, func(t *testing.T) {
			if hook := j.Annotations["helm.sh/hook"]; hook != "pre-install,pre-upgrade" {
				t.Errorf("helm.sh/hook=%q, want pre-install,pre-upgrade", hook)
			}
			checkPodSecurity(t, j.Spec.Template.Spec)
			c := j.Spec.Template.Spec.Containers[0]
			if !slices.Equal(c.Args, []string{"migrate"}) {
				t.Errorf("args %v, want [migrate]", c.Args)
			}
			ref := c.Env[0].ValueFrom.SecretKeyRef
			hookSecret := false
			for _, s := range o.secrets {
				if s.Name == ref.Name && s.Annotations["helm.sh/hook"] != "" {
					hookSecret = true
				}
			}
			// The Job runs before the release's own resources exist.
			if ref.Name != existingSecret && !hookSecret {
				t.Errorf("DATABASE_URL comes from Secret %s, which does not exist before a pre-install hook", ref.Name)
			}
		})
	}
	for _, s := range o.services {
		sel, _ := metaSelector(s.Spec.Selector)
		var matched []appsv1.Deployment
		for _, d := range o.deployments {
			if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				matched = append(matched, d)
			}
		}
		if len(s.Spec.Selector) == 0 || len(matched) == 0 {
			t.Errorf("Service %s: selector %v matches no Deployment's pods", s.Name, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			for _, d := range matched {
				if !hasPort(d.Spec.Template.Spec.Containers[0], p.TargetPort.String()) {
					t.Errorf("Service %s: targetPort %s is not a port of %s", s.Name, p.TargetPort.String(), d.Name)
				}
			}
		}
	}
	for _, p := range o.pdbs {
		if p.Spec.Selector == nil || len(p.Spec.Selector.MatchLabels) == 0 {
			t.Errorf("PDB %s has an empty selector (it would cover every pod of the namespace)", p.Name)
		}
	}
	for _, ing := range o.ingresses {
		checkIngress(t, o, ing)
	}
	for _, m := range o.monitors {
		checkServiceMonitor(t, o, m)
	}
	for _, r := range o.rules {
		for _, e := range ruleExprs(t, r) {
			if _, err := metricNames(e.expr); err != nil {
				t.Errorf("PrometheusRule %s alert %s: %v", r.GetName(), e.alert, err)
			}
		}
	}
	pools := o.deliveryPools(t)
	owner := map[string]string{}
	var wildcard []string
	for pool, tenants := range pools {
		for _, tn := range tenants {
			if tn == "*" {
				wildcard = append(wildcard, pool)
				continue
			}
			if prev, ok := owner[tn]; ok {
				t.Errorf("tenant %s is served by pools %s and %s", tn, prev, pool)
			}
			owner[tn] = pool
		}
	}
	if len(wildcard) > 1 {
		t.Errorf("pools %v all hold \"*\"", wildcard)
	}
}

// nestedInt reads a number of an unstructured object (YAML numbers decode as float64).
func nestedInt(obj map[string]any, path ...string) (int64, bool, error) {
	v, ok, err := unstructured.NestedFieldNoCopy(obj, path...)
	if !ok || err != nil {
		return 0, ok, err
	}
	switch n := v.(type) {
	case float64:
		return int64(n), n == float64(int64(n)), nil
	case int64:
		return n, true, nil
	}
	return 0, false, fmt.Errorf("%v is %T, not a number", path, v)
}

func metaSelector(m map[string]string) (labels.Selector, error) {
	return labels.ValidatedSelectorFromSet(m)
}

func hasPort(c corev1.Container, port string) bool {
	for _, p := range c.Ports {
		if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
			return true
		}
	}
	return false
}

// checkWorkload: probes, restricted security, env sources that exist.
func checkWorkload(t *testing.T, name string, spec corev1.PodSpec, secrets, configs map[string]bool) {
	t.Helper()
	checkPodSecurity(t, spec)
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("automountServiceAccountToken must be false (the services never call the API server)")
	}
	for _, c := range spec.Containers {
		if c.LivenessProbe == nil || c.ReadinessProbe == nil {
			t.Errorf("container %s: liveness and readiness probes are required", c.Name)
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p != nil && p.HTTPGet != nil && !hasPort(c, p.HTTPGet.Port.String()) {
				t.Errorf("container %s: probe port %s is not a container port", c.Name, p.HTTPGet.Port.String())
			}
		}
		if c.LivenessProbe != nil && c.LivenessProbe.HTTPGet != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("container %s: liveness probes %s, want /healthz", c.Name, c.LivenessProbe.HTTPGet.Path)
		}
		if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("container %s: readiness probes %s, want /readyz", c.Name, c.ReadinessProbe.HTTPGet.Path)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("container %s: CPU and memory requests and a memory limit are required", c.Name)
		}
		for _, ef := range c.EnvFrom {
			switch {
			case ef.SecretRef != nil && !secrets[ef.SecretRef.Name]:
				t.Errorf("container %s: envFrom Secret %s is neither rendered nor the existing Secret", c.Name, ef.SecretRef.Name)
			case ef.ConfigMapRef != nil && !configs[ef.ConfigMapRef.Name]:
				t.Errorf("container %s: envFrom ConfigMap %s is not rendered", c.Name, ef.ConfigMapRef.Name)
			}
		}
		if !strings.Contains(c.Image, "/") || strings.HasSuffix(c.Image, ":") {
			t.Errorf("container %s: image %q has no repository or tag", c.Name, c.Image)
		}
	}
	for _, c := range spec.InitContainers {
		if c.Name == "wait-for-schema" && (len(c.Args) < 2 || c.Args[0] != "migrate" || c.Args[1] != "--wait") {
			t.Errorf("init container %s: args %v, want migrate --wait ...", c.Name, c.Args)
		}
	}
}

// checkPodSecurity is the "restricted" Pod Security Standard.
func checkPodSecurity(t *testing.T, spec corev1.PodSpec) {
	t.Helper()
	ps := spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot || ps.RunAsUser == nil || *ps.RunAsUser == 0 ||
		ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot, a non-zero runAsUser and seccomp RuntimeDefault", ps)
	}
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		t.Error("host namespaces are not allowed")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			t.Errorf("volume %s: hostPath is not allowed", v.Name)
		}
	}
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("container %s: no securityContext", c.Name)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("container %s: allowPrivilegeEscalation must be false", c.Name)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("container %s: readOnlyRootFilesystem must be true", c.Name)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
			t.Errorf("container %s: capabilities must drop ALL and add none", c.Name)
		case sc.Privileged != nil && *sc.Privileged:
			t.Errorf("container %s: privileged", c.Name)
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("container %s: runAsNonRoot must be true", c.Name)
		}
		mountsTmp := false
		for _, m := range c.VolumeMounts {
			mountsTmp = mountsTmp || m.MountPath == "/tmp"
		}
		if !mountsTmp && c.Name != "wait-for-schema" {
			t.Errorf("container %s: no writable /tmp (the root filesystem is read-only)", c.Name)
		}
	}
}

func checkScaledObject(t *testing.T, o *objects, so unstructured.Unstructured, partitions int) {
	t.Helper()
	name := so.GetName()
	target, _, _ := unstructured.NestedString(so.Object, "spec", "scaleTargetRef", "name")
	d := o.deployment(target)
	if d == nil {
		t.Errorf("ScaledObject %s targets %q, which is not rendered", name, target)
		return
	}
	pool := d.Labels["eventstream.io/pool"]
	maxR, ok, _ := nestedInt(so.Object, "spec", "maxReplicaCount")
	if !ok || maxR < 1 || int(maxR) > partitions {
		t.Errorf("ScaledObject %s: maxReplicaCount %d must be in 1..%d (the partition count)", name, maxR, partitions)
	}
	minR, _, _ := nestedInt(so.Object, "spec", "minReplicaCount")
	if minR > maxR {
		t.Errorf("ScaledObject %s: minReplicaCount %d above maxReplicaCount %d", name, minR, maxR)
	}
	fb, ok, _ := nestedInt(so.Object, "spec", "fallback", "replicas")
	if !ok || fb < 1 {
		t.Errorf("ScaledObject %s: fallback.replicas is required", name)
	}
	ft, ok, _ := nestedInt(so.Object, "spec", "fallback", "failureThreshold")
	if !ok || ft < 1 {
		t.Errorf("ScaledObject %s: fallback.failureThreshold is required", name)
	}
	triggers, _, _ := unstructured.NestedSlice(so.Object, "spec", "triggers")
	if len(triggers) != 1 {
		t.Fatalf("ScaledObject %s: want one trigger, got %d", name, len(triggers))
	}
	tr := triggers[0].(map[string]any)
	md, _ := tr["metadata"].(map[string]any)
	want := fmt.Sprintf(`sum(eventstream_consumer_lag{pool=%q})`, pool)
	if tr["type"] != "prometheus" || md["query"] != want {
		t.Errorf("ScaledObject %s: trigger %v, want a prometheus trigger on %s", name, tr, want)
	}
	for _, k := range []string{"serverAddress", "threshold"} {
		if s, _ := md[k].(string); s == "" {
			t.Errorf("ScaledObject %s: trigger metadata.%s must be a non-empty string", name, k)
		}
	}
	allowed := []string{"apiVersion", "kind", "metadata", "spec"}
	for k := range so.Object {
		if !slices.Contains(allowed, k) {
			t.Errorf("ScaledObject %s: unexpected top-level field %s", name, k)
		}
	}
	spec, _, _ := unstructured.NestedMap(so.Object, "spec")
	for k := range spec {
		if !slices.Contains([]string{"scaleTargetRef", "minReplicaCount", "maxReplicaCount", "pollingInterval",
			"cooldownPeriod", "fallback", "triggers", "advanced", "idleReplicaCount"}, k) {
			t.Errorf("ScaledObject %s: unknown spec field %s", name, k)
		}
	}
}

func checkIngress(t *testing.T, o *objects, ing networkingv1.Ingress) {
	t.Helper()
	paths := map[string]string{}
	for _, r := range ing.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			b := p.Backend.Service
			s := o.service(b.Name)
			if s == nil {
				t.Errorf("Ingress path %s: Service %s is not rendered", p.Path, b.Name)
				continue
			}
			found := false
			for _, sp := range s.Spec.Ports {
				found = found || sp.Port == b.Port.Number || (b.Port.Name != "" && sp.Name == b.Port.Name)
			}
			if !found {
				t.Errorf("Ingress path %s: Service %s has no port %v", p.Path, b.Name, b.Port)
			}
			if p.PathType == nil || *p.PathType != networkingv1.PathTypePrefix {
				t.Errorf("Ingress path %s: want pathType Prefix", p.Path)
			}
			paths[p.Path] = strings.TrimPrefix(b.Name, fullname+"-")
		}
	}
	// Every public route of `make run` that has a rendered service.
	for prefix, svc := range ingressRoutes(t) {
		if o.deployment(fullname+"-"+svc) == nil {
			continue
		}
		if paths[strings.TrimSuffix(prefix, "/")] != svc {
			t.Errorf("Ingress routes %s to %q, want %s (services/eventstream/router.go)", prefix, paths[prefix], svc)
		}
	}
}

// ingressPaths maps each path of the Ingress to the service it routes to
// (the Service name without the release prefix).
func ingressPaths(ing networkingv1.Ingress) map[string]string {
	paths := map[string]string{}
	for _, r := range ing.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			paths[p.Path] = strings.TrimPrefix(p.Backend.Service.Name, fullname+"-")
		}
	}
	return paths
}

// checkObservability: the observability API and console are on by default,
// a Deployment on port 8084 with its probes, a Service and a PDB.
func checkObservability(t *testing.T, o *objects) {
	t.Helper()
	name := fullname + "-observability"
	d := o.deployment(name)
	if d == nil {
		t.Fatal("no observability Deployment")
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.Image != "eventstream/observability:"+appVersion(t) || !hasPort(c, "8084") {
		t.Errorf("observability: image %s, ports %v; want eventstream/observability and port 8084", c.Image, c.Ports)
	}
	if env := envOf(c); env["OBSERVABILITY_ADDR"] != ":8084" {
		t.Errorf("observability: OBSERVABILITY_ADDR=%q, want :8084", env["OBSERVABILITY_ADDR"])
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.LivenessProbe == nil || c.StartupProbe == nil {
		t.Error("observability: readiness, liveness and startup probes are required")
	}
	if s := o.service(name); s == nil || len(s.Spec.Ports) != 1 || s.Spec.Ports[0].Port != 8084 {
		t.Errorf("observability: Service %v, want one on port 8084", s)
	}
	pdb := false
	for _, p := range o.pdbs {
		pdb = pdb || p.Name == name
	}
	if !pdb {
		t.Error("observability: no PodDisruptionBudget")
	}
}

func appVersion(t *testing.T) string {
	t.Helper()
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, filepath.Join(chartDir, "Chart.yaml")), &c); err != nil {
		t.Fatal(err)
	}
	return c.AppVersion
}

// checkPublicHosts: configapi and every delivery pool see PUBLIC_HOSTS (the
// own hosts no callback URL may point at) with exactly want, in order; unset
// when want is empty. It reads the pods' environment as the kubelet builds
// it: the ConfigMaps of envFrom, then env.
func checkPublicHosts(t *testing.T, o *objects, want ...string) {
	t.Helper()
	checked := 0
	for _, d := range o.deployments {
		comp := d.Labels["app.kubernetes.io/component"]
		if comp != "configapi" && comp != "delivery" {
			continue
		}
		checked++
		c := d.Spec.Template.Spec.Containers[0]
		env := map[string]string{}
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef == nil {
				continue
			}
			for _, cm := range o.configMaps {
				if cm.Name == ef.ConfigMapRef.Name {
					maps.Copy(env, cm.Data)
				}
			}
		}
		maps.Copy(env, envOf(c))
		got, set := env["PUBLIC_HOSTS"]
		switch {
		case len(want) == 0 && set:
			t.Errorf("%s: PUBLIC_HOSTS=%q, want it unset (no own host is known)", d.Name, got)
		case len(want) > 0 && got != strings.Join(want, ","):
			t.Errorf("%s: PUBLIC_HOSTS=%q, want %q", d.Name, got, strings.Join(want, ","))
		}
	}
	if checked < 2 {
		t.Errorf("PUBLIC_HOSTS checked on %d Deployments, want configapi and the delivery pools", checked)
	}
}

func checkServiceMonitor(t *testing.T, o *objects, m unstructured.Unstructured) {
	t.Helper()
	sel, _, _ := unstructured.NestedStringMap(m.Object, "spec", "selector", "matchLabels")
	ls, err := metaSelector(sel)
	if err != nil || len(sel) == 0 {
		t.Fatalf("ServiceMonitor %s: selector %v: %v", m.GetName(), sel, err)
	}
	endpoints, _, _ := unstructured.NestedSlice(m.Object, "spec", "endpoints")
	scraped := map[string]bool{}
	for _, s := range o.services {
		if !ls.Matches(labels.Set(s.Labels)) {
			continue
		}
		scraped[s.Labels["app.kubernetes.io/component"]] = true
		for _, e := range endpoints {
			port := e.(map[string]any)["port"]
			ok := false
			for _, p := range s.Spec.Ports {
				ok = ok || p.Name == port
			}
			if !ok {
				t.Errorf("ServiceMonitor %s: Service %s has no port named %v", m.GetName(), s.Name, port)
			}
		}
	}
	for _, d := range o.deployments {
		if c := d.Labels["app.kubernetes.io/component"]; !scraped[c] {
			t.Errorf("ServiceMonitor %s: no scraped Service covers %s (%s)", m.GetName(), d.Name, c)
		}
	}
}

type ruleExpr struct{ alert, expr string }

func ruleExprs(t *testing.T, r unstructured.Unstructured) []ruleExpr {
	t.Helper()
	var out []ruleExpr
	groups, _, _ := unstructured.NestedSlice(r.Object, "spec", "groups")
	if len(groups) == 0 {
		t.Errorf("PrometheusRule %s has no groups", r.GetName())
	}
	for _, g := range groups {
		rules, _ := g.(map[string]any)["rules"].([]any)
		for _, rr := range rules {
			m := rr.(map[string]any)
			alert, _ := m["alert"].(string)
			expr, _ := m["expr"].(string)
			if alert == "" || expr == "" {
				t.Errorf("PrometheusRule %s: a rule without alert or expr: %v", r.GetName(), m)
				continue
			}
			ann, _ := m["annotations"].(map[string]any)
			if ann["summary"] == nil || ann["description"] == nil {
				t.Errorf("PrometheusRule %s alert %s: summary and description annotations are required", r.GetName(), alert)
			}
			out = append(out, ruleExpr{alert, expr})
		}
	}
	return out
}

// The values matrix: each case renders and passes checkCommon, plus its own checks.
func TestChartRenders(t *testing.T) {
	c := loadChart(t)
	twoPools := `
delivery:
  pools:
    - name: default
      tenants: ["*"]
      replicas: 2
    - name: big
      tenants: [acme, globex]
      replicas: 4
      resources:
        requests: {cpu: "1", memory: 1Gi}
        limits: {memory: 2Gi}
`
	cases := []struct {
		name           string
		values         []string
		existingSecret string
		check          func(t *testing.T, o *objects)
	}{
		{"defaults", []string{"ci/default-values.yaml"}, "", func(t *testing.T, o *objects) {
			if got := slices.Collect(maps.Keys(o.deliveryPools(t))); !slices.Equal(got, []string{"default"}) {
				t.Errorf("pools %v, want [default]", got)
			}
			if len(o.secrets) != 2 { // the release's Secret and the migration hook's
				t.Errorf("want the generated Secret and the hook Secret, got %d Secrets", len(o.secrets))
			}
			for _, s := range o.secrets {
				if s.Annotations["helm.sh/hook"] != "" {
					continue
				}
				for _, k := range []string{"DATABASE_URL", "KAFKA_BROKERS", "SECRETS_KEY", "AUTH_HS256_SECRET"} {
					if len(s.Data[k]) == 0 {
						t.Errorf("generated Secret lacks %s", k)
					}
				}
				if len(s.Data["SECRETS_KEY"]) != 44 { // base64 of 32 random bytes
					t.Errorf("SECRETS_KEY is %d characters, want base64 of 32 bytes", len(s.Data["SECRETS_KEY"]))
				}
			}
			if len(o.ingresses)+len(o.scaledObjs)+len(o.monitors)+len(o.rules)+len(o.netpols) != 0 {
				t.Error("optional resources rendered by default")
			}
			if len(o.hpas) != 1 {
				t.Errorf("want one CPU HPA (the default pool), got %d", len(o.hpas))
			}
			if len(o.jobs) != 1 {
				t.Errorf("want the migration Job, got %d Jobs", len(o.jobs))
			}
			d := o.deployment(fullname + "-delivery-default")
			if d == nil {
				t.Fatal("no delivery Deployment for the default pool")
			}
			if g := *d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != 30 {
				t.Errorf("terminationGracePeriodSeconds %d, want the 15 s drain plus the 15 s margin", g)
			}
			if env := envOf(d.Spec.Template.Spec.Containers[0]); env["DELIVERY_DRAIN_TIMEOUT"] != "15s" {
				t.Errorf("DELIVERY_DRAIN_TIMEOUT=%q, want 15s", env["DELIVERY_DRAIN_TIMEOUT"])
			}
			checkObservability(t, o)
			// No ingress and no config.publicHosts: no own host is known,
			// and NOTES.txt says how to name them.
			checkPublicHosts(t, o)
			if !strings.Contains(o.notes, "config.publicHosts") {
				t.Errorf("NOTES.txt does not say to set config.publicHosts:\n%s", o.notes)
			}
		}},
		{"two pools, HPA", []string{"ci/default-values.yaml", twoPools}, "", func(t *testing.T, o *objects) {
			pools := o.deliveryPools(t)
			if len(pools) != 2 || !slices.Equal(pools["big"], []string{"acme", "globex"}) || !slices.Equal(pools["default"], []string{"*"}) {
				t.Errorf("pools %v, want default [*] and big [acme globex]", pools)
			}
			big := o.deployment(fullname + "-delivery-big")
			if big == nil {
				t.Fatal("no Deployment for pool big")
			}
			if got := big.Spec.Template.Spec.Containers[0].Resources.Requests.Cpu().String(); got != "1" {
				t.Errorf("pool big: CPU request %s, want its own 1", got)
			}
			if len(o.hpas) != 2 || len(o.scaledObjs) != 0 {
				t.Errorf("want two CPU HPAs and no ScaledObject, got %d and %d", len(o.hpas), len(o.scaledObjs))
			}
		}},
		{"two pools, KEDA (examples/two-pools-keda.yaml)", []string{"examples/two-pools-keda.yaml"}, "", func(t *testing.T, o *objects) {
			if len(o.scaledObjs) != 2 || len(o.hpas) != 0 {
				t.Errorf("want two ScaledObjects and no HPA, got %d and %d", len(o.scaledObjs), len(o.hpas))
			}
			if len(o.monitors) != 1 || len(o.rules) != 1 {
				t.Errorf("want a ServiceMonitor and a PrometheusRule, got %d and %d", len(o.monitors), len(o.rules))
			}
			if len(o.ingresses) != 1 {
				t.Fatalf("want the Ingress, got %d", len(o.ingresses))
			}
			if p := ingressPaths(o.ingresses[0]); p["/console"] != "observability" || p["/api/v1/org/integrations/published-events"] != "observability" {
				t.Errorf("Ingress paths %v: the console and published-events go to observability", p)
			}
			checkObservability(t, o)
			checkPublicHosts(t, o, "events.example.com")
		}},
		{"no autoscaling", []string{"ci/default-values.yaml", "delivery: {autoscaling: {hpa: {enabled: false}}}\n"}, "", func(t *testing.T, o *objects) {
			if len(o.hpas)+len(o.scaledObjs) != 0 {
				t.Error("autoscalers rendered with KEDA and HPA off")
			}
			if r := o.deployment(fullname + "-delivery-default").Spec.Replicas; r == nil || *r != 2 {
				t.Errorf("replicas %v, want the pool's 2", r)
			}
		}},
		{"existing Secret, ingress, everything on (ci/full-values.yaml)", []string{"ci/full-values.yaml"}, "eventstream-prod", func(t *testing.T, o *objects) {
			if len(o.secrets) != 0 {
				t.Errorf("Secrets rendered despite existingSecret: %d", len(o.secrets))
			}
			if len(o.ingresses) != 1 || len(o.netpols) != 4 {
				t.Errorf("want an Ingress and 4 NetworkPolicies; got %d, %d", len(o.ingresses), len(o.netpols))
			}
			checkObservability(t, o)
			checkPublicHosts(t, o, "events.example.com")
			dash := readRepoFile(t, dashboardFile)
			found := false
			for _, cm := range o.configMaps {
				if cm.Labels["grafana_dashboard"] == "1" {
					found = true
					if strings.TrimSpace(cm.Data["eventstream.json"]) != strings.TrimSpace(string(dash)) {
						t.Errorf("ConfigMap %s: the dashboard differs from %s (copy it to helm/eventstream/dashboards/)", cm.Name, dashboardFile)
					}
				}
			}
			if !found {
				t.Error("no Grafana dashboard ConfigMap")
			}
			for _, d := range o.deployments {
				if _, ok := d.Spec.Template.Annotations["checksum/secret"]; ok {
					t.Errorf("%s: checksum/secret annotation without a generated Secret", d.Name)
				}
			}
		}},
		{"ingress (defaults)", []string{"ci/default-values.yaml", "ingress: {enabled: true}\n"}, "", func(t *testing.T, o *objects) {
			if len(o.ingresses) != 1 {
				t.Fatal("no Ingress")
			}
			want := map[string]string{
				"/api/v1/org/integrations/eventstream":      "configapi",
				"/v1/events":                                "ingest",
				"/api/v1/org/integrations/published-events": "observability",
				"/console": "observability",
			}
			if got := ingressPaths(o.ingresses[0]); !maps.Equal(got, want) {
				t.Errorf("Ingress paths %v, want %v", got, want)
			}
			checkPublicHosts(t, o, "eventstream.example.com")
			if !strings.Contains(o.notes, "http://eventstream.example.com/console/") {
				t.Errorf("NOTES.txt does not give the console's URL:\n%s", o.notes)
			}
		}},
		{"ingress, observability disabled", []string{"ci/default-values.yaml", "ingress: {enabled: true}\nobservability: {enabled: false}\n"}, "", func(t *testing.T, o *objects) {
			if o.deployment(fullname+"-observability") != nil || o.service(fullname+"-observability") != nil {
				t.Error("observability rendered although disabled")
			}
			want := map[string]string{"/api/v1/org/integrations/eventstream": "configapi", "/v1/events": "ingest"}
			if got := ingressPaths(o.ingresses[0]); !maps.Equal(got, want) {
				t.Errorf("Ingress paths %v, want the configapi and ingest paths only %v", got, want)
			}
		}},
		{"own hosts: ingress hosts and config.publicHosts", []string{"ci/default-values.yaml", `
ingress:
  enabled: true
  hosts: [{host: events.example.com}, {host: "*.events.example.com"}, {host: api.example.com}]
config:
  publicHosts: ["https://events.example.net:8443", events.example.com]
`}, "", func(t *testing.T, o *objects) {
			// The wildcard names no host; a repeated host is listed once.
			checkPublicHosts(t, o, "events.example.com", "api.example.com", "https://events.example.net:8443")
			if !strings.Contains(o.notes, "events.example.com,api.example.com,https://events.example.net:8443") {
				t.Errorf("NOTES.txt does not list the own hosts:\n%s", o.notes)
			}
		}},
		{"own hosts: config.publicHosts without an ingress", []string{"ci/default-values.yaml", "config: {publicHosts: [events.internal:8080]}\n"}, "", func(t *testing.T, o *objects) {
			checkPublicHosts(t, o, "events.internal:8080")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files, err := render(t, c, values(t, tc.values...))
			if err != nil {
				t.Fatalf("rendering: %v", err)
			}
			o := decode(t, files)
			checkCommon(t, o, tc.existingSecret)
			tc.check(t, o)
			if !strings.Contains(o.notes, "Delivery pools") {
				t.Error("NOTES.txt does not list the pools")
			}
		})
	}
}

// Values the chart must refuse, each with the words its message must contain.
func TestChartRefuses(t *testing.T) {
	c := loadChart(t)
	cases := []struct {
		name   string
		values string
		want   []string
	}{
		{"overlapping pools", `
delivery:
  pools:
    - {name: default, tenants: ["*"], replicas: 1}
    - {name: big, tenants: [acme, globex], replicas: 1}
    - {name: huge, tenants: [globex], replicas: 1}
`, []string{`tenant "globex"`, `"big"`, `"huge"`, "disjoint"}},
		{"two wildcard pools", `
delivery:
  pools:
    - {name: default, tenants: ["*"], replicas: 1}
    - {name: spare, tenants: ["*"], replicas: 1}
`, []string{`at most one pool may hold "*"`, "default", "spare"}},
		{"wildcard with names", `
delivery:
  pools:
    - {name: default, tenants: ["*", acme], replicas: 1}
`, []string{`pool "default" combines "*"`}},
		{"duplicate pool names", `
delivery:
  pools:
    - {name: a, tenants: ["*"], replicas: 1}
    - {name: a, tenants: [acme], replicas: 1}
`, []string{`two pools are named "a"`}},
		{"maxReplicas above partitions", `
kafka: {topicPartitions: 6}
delivery:
  pools:
    - {name: default, tenants: ["*"], replicas: 2, maxReplicas: 8}
`, []string{`pool "default" maxReplicas 8 is above kafka.topicPartitions 6`}},
		{"unknown top-level key (schema)", "replicaCount: 3\n", []string{"replicaCount"}},
		{"unknown pool key (schema)", `
delivery:
  pools:
    - {name: default, tenants: ["*"], replica: 2}
`, []string{"replica"}},
		{"bad pool name (schema)", `
delivery:
  pools:
    - {name: Big_Pool, tenants: ["*"], replicas: 2}
`, []string{"name"}},
		{"wrong type (schema)", "ingest: {replicas: two}\n", []string{"replicas"}},
		{"short HS256 secret (schema)", "secrets: {auth: {hs256Secret: short}}\n", []string{"hs256Secret"}},
		{"no database URL", "secrets: {databaseURL: \"\"}\n", []string{"secrets.databaseURL is required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(t, c, values(t, "ci/default-values.yaml", tc.values))
			if err == nil {
				t.Fatal("rendered; want a refusal")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

// The chart's defaults are its documentation: each key in values.yaml has a
// schema entry (additionalProperties: false would refuse it otherwise, so the
// defaults alone must validate) and the schema refuses unknown keys everywhere.
func TestChartSchemaClosed(t *testing.T) {
	c := loadChart(t)
	var schema map[string]any
	if err := yaml.Unmarshal(c.Schema, &schema); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, s map[string]any)
	walk = func(path string, s map[string]any) {
		if s["type"] == "object" {
			props, hasProps := s["properties"].(map[string]any)
			if hasProps && s["additionalProperties"] != false {
				t.Errorf("%s: object with properties but additionalProperties is not false", path)
			}
			keys := slices.Collect(maps.Keys(props))
			sort.Strings(keys)
			for _, k := range keys {
				if m, ok := props[k].(map[string]any); ok {
					walk(path+"."+k, m)
				}
			}
		}
		if items, ok := s["items"].(map[string]any); ok {
			walk(path+"[]", items)
		}
	}
	walk("values", schema)
	if err := chartutil.ValidateAgainstSchema(c, c.Values); err != nil {
		t.Errorf("the chart's own values.yaml fails its schema: %v", err)
	}
}

// ingressRoutes reads the public routes from services/eventstream/router.go
// (the table `make run` serves), so the chart and compose follow it.
func ingressRoutes(t *testing.T) map[string]string {
	t.Helper()
	src := readRepoFile(t, "services/eventstream/router.go")
	start := bytes.Index(src, []byte("var ingressRoutes"))
	if start < 0 {
		t.Fatal("services/eventstream/router.go: no ingressRoutes table")
	}
	end := bytes.Index(src[start:], []byte("\n}"))
	re := regexp.MustCompile(`\{"([^"]+)",\s*"([^"]+)"\}`)
	routes := map[string]string{}
	for _, m := range re.FindAllSubmatch(src[start:start+end], -1) {
		routes[string(m[1])] = string(m[2])
	}
	if len(routes) == 0 {
		t.Fatal("services/eventstream/router.go: ingressRoutes is empty")
	}
	// The console is served by the observability service (design.md).
	if _, ok := routes["/console/"]; !ok {
		routes["/console/"] = "observability"
	}
	return routes
}
