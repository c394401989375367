package istioxds

// Istio's own xDS generation (istiod's code, run in-process through its test
// harness) on the resources `infergate render` writes. The sidecar of a
// protected workload must get, on every inbound HTTP filter chain, Istio's
// CUSTOM ext_authz filter calling the infergate Service, fail closed, then
// infergate's filters in their order, then the router; STRICT mTLS; and the
// access log carrying infergate's decision. A workload no manifest entry
// selects must get none of it.
//
// With global quotas, the protected sidecar must also get the header filter
// first, the ratelimit filters after infergate's filters and before the
// router (deny budgets' filter failing closed on stage 0, allow budgets' on
// stage 1, both calling the rate-limit Service), and the rendered rate limits
// on every route of its inbound route configurations; the other sidecar none.
//
// The rendered directory and the filter form come from the environment
// (test/istio/xds-generation.test.ts sets them):
//   INFERGATE_RENDERED_DIR  the files `infergate render --out DIR` wrote
//   INFERGATE_FILTER_FORM   wasmplugin | envoyfilter (which filter file to apply)
//   INFERGATE_FILTERS       infergate's filters in the order they must run, by id
//                           (guard, or rate-limit,payload-limit: istio/render/filter-chain.ts)
//   INFERGATE_QUOTA_FILTERS the ratelimit filters in order, by name (empty: no global quotas)
//   INFERGATE_RATE_LIMITS   the route rate limits render wrote, as JSON

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthz "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	ratelimit "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pilot/test/xdstest"
	"istio.io/istio/pkg/config/mesh"
	istiolog "istio.io/istio/pkg/log"
)

const (
	extAuthzFilter = "envoy.filters.http.ext_authz"
	routerFilter   = "envoy.filters.http.router"
	// Istio names the cluster of a CUSTOM provider like any outbound service cluster.
	infergateCluster = "outbound|9191||infergate-authz.infergate-system.svc.cluster.local"
	// The global quotas' rate-limit Service, as the rendered ratelimit filters name it.
	rateLimitCluster = "outbound|8081||infergate-ratelimit.infergate-system.svc.cluster.local"
	headerFilter     = "infergate-ratelimit-headers"
	quotaDomain      = "infergate"
)

// quotas is what the protected workload's sidecar must carry for the global quotas.
type quotas struct {
	filters    []string // ratelimit filter names, in order
	rateLimits []*routev3.RateLimit
}

func (q quotas) enabled() bool { return len(q.filters) > 0 }

func quotasFromEnv(t *testing.T) quotas {
	var q quotas
	if names := os.Getenv("INFERGATE_QUOTA_FILTERS"); names != "" {
		q.filters = strings.Split(names, ",")
	}
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(env(t, "INFERGATE_RATE_LIMITS", "the rendered route rate limits as JSON ([] without global quotas)")), &raw); err != nil {
		t.Fatalf("INFERGATE_RATE_LIMITS: %v", err)
	}
	for _, r := range raw {
		rl := &routev3.RateLimit{}
		if err := protojson.Unmarshal(r, rl); err != nil {
			t.Fatalf("INFERGATE_RATE_LIMITS: not an Envoy RateLimit: %v", err)
		}
		q.rateLimits = append(q.rateLimits, rl)
	}
	return q
}

// Two workloads in the namespace the example manifest protects: one its
// selector (app: model-serving) matches, one it does not.
type workload struct {
	name, ip string
	labels   map[string]string
}

var (
	protected   = workload{"model-serving", "10.10.0.10", map[string]string{"app": "model-serving"}}
	unprotected = workload{"notebook", "10.10.0.20", map[string]string{"app": "notebook"}}
)

const workloadNamespace = "ml"

func (w workload) kubernetesObjects() string {
	var labels strings.Builder
	for k, v := range w.labels {
		fmt.Fprintf(&labels, "    %s: %s\n", k, v)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %[1]s-0
  namespace: %[2]s
  labels:
%[3]sspec:
  serviceAccountName: %[1]s
  containers:
  - name: server
    image: example/%[1]s
    ports:
    - containerPort: 8080
status:
  phase: Running
  podIP: %[4]s
  conditions:
  - type: Ready
    status: "True"
---
apiVersion: v1
kind: Service
metadata:
  name: %[1]s
  namespace: %[2]s
spec:
  clusterIP: %[5]s
  selector:
%[3]s  ports:
  - name: http
    port: 80
    targetPort: 8080
`, w.name, workloadNamespace, labels.String(), w.ip, strings.Replace(w.ip, "10.10.", "10.96.", 1))
}

func env(t *testing.T, name, hint string) string {
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: %s (test/istio/xds-generation.test.ts sets it)", name, hint)
	}
	return v
}

func readRendered(t *testing.T, dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatalf("reading the rendered %s: %v", name, err)
	}
	return string(b)
}

// yamlDocuments splits a multi-document file, dropping documents that hold
// only comments (the rendered files start with a header comment).
func yamlDocuments(text string) []string {
	var docs []string
	for _, d := range strings.Split("\n"+text, "\n---\n") {
		body := false
		for _, line := range strings.Split(d, "\n") {
			if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
				body = true
				break
			}
		}
		if body {
			docs = append(docs, d)
		}
	}
	return docs
}

// meshConfigOf takes the meshConfig block of the rendered IstioOperator and
// applies it over Istio's defaults, as istiod does.
func meshConfigOf(t *testing.T, operatorYAML string) string {
	for _, doc := range yamlDocuments(operatorYAML) {
		var op struct {
			Kind string `json:"kind"`
			Spec struct {
				MeshConfig map[string]any `json:"meshConfig"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &op); err != nil {
			t.Fatalf("parsing mesh-config.yaml: %v", err)
		}
		if op.Kind == "IstioOperator" && op.Spec.MeshConfig != nil {
			out, err := yaml.Marshal(op.Spec.MeshConfig)
			if err != nil {
				t.Fatal(err)
			}
			return string(out)
		}
	}
	t.Fatal("mesh-config.yaml holds no IstioOperator with spec.meshConfig")
	return ""
}

type chain struct {
	name string
	// tls: the chain only takes mTLS connections (the transport protocol it matches).
	tls     bool
	hcm     *hcm.HttpConnectionManager
	filters []*hcm.HttpFilter
}

func (c chain) names() []string {
	out := make([]string, len(c.filters))
	for i, f := range c.filters {
		out[i] = f.Name
	}
	return out
}

// sidecar is the workload's sidecar proxy, as istiod sees it when it connects.
func sidecar(s *xds.FakeDiscoveryServer, w workload) *model.Proxy {
	return s.SetupProxy(&model.Proxy{
		ID:              w.name + "-0." + workloadNamespace,
		IPAddresses:     []string{w.ip},
		ConfigNamespace: workloadNamespace,
		Labels:          w.labels,
		Metadata:        &model.NodeMetadata{Namespace: workloadNamespace, Labels: w.labels},
	})
}

// inboundHTTPChains is every HTTP filter chain of the sidecar's virtualInbound listener.
func inboundHTTPChains(t *testing.T, s *xds.FakeDiscoveryServer, p *model.Proxy, w workload) []chain {
	l := xdstest.ExtractListener("virtualInbound", s.Listeners(p))
	if l == nil {
		t.Fatalf("%s: Istio generated no virtualInbound listener", w.name)
	}
	var chains []chain
	for i, fc := range l.FilterChains {
		if h := xdstest.ExtractHTTPConnectionManager(t, fc); h != nil {
			tls := fc.GetFilterChainMatch().GetTransportProtocol() == "tls"
			chains = append(chains, chain{w.name + " " + chainName(i, fc), tls, h, h.HttpFilters})
		}
	}
	if len(chains) == 0 {
		t.Fatalf("%s: the virtualInbound listener has no HTTP filter chain", w.name)
	}
	for _, c := range chains {
		t.Logf("%s: %s", c.name, strings.Join(c.names(), " -> "))
	}
	return chains
}

func chainName(i int, fc *listener.FilterChain) string {
	m := fc.GetFilterChainMatch()
	return fmt.Sprintf("chain %d %q (port %d, transport %q, alpn %v)", i, fc.Name, m.GetDestinationPort().GetValue(), m.GetTransportProtocol(), m.GetApplicationProtocols())
}

// infergateExtAuthz is the ext_authz filter whose gRPC service is the infergate server (nil if none).
func infergateExtAuthz(t *testing.T, f *hcm.HttpFilter) *extauthz.ExtAuthz {
	if f.Name != extAuthzFilter || f.GetTypedConfig() == nil {
		return nil
	}
	cfg := xdstest.UnmarshalAny[extauthz.ExtAuthz](t, f.GetTypedConfig())
	if cfg.GetGrpcService().GetEnvoyGrpc().GetClusterName() != infergateCluster {
		return nil
	}
	return cfg
}

// infergateResource is the name an infergate filter goes by in the rendering:
// the EnvoyFilter's filter name (infergate-guard) or the WasmPlugin's name
// (infergate-model-serving-guard), without Istio's prefix and suffix.
func infergateResource(name string) string {
	if rest, ok := strings.CutPrefix(name, "extensions.istio.io/"); ok {
		_, resource, _ := strings.Cut(rest, "/")
		_, name, _ = strings.Cut(resource, ".")
		name, _, _ = strings.Cut(name, "~")
	}
	return name
}

// isInfergateFilter: infergate's own HTTP filters. An EnvoyFilter inserts them
// under their own names (infergate-guard); a WasmPlugin reaches the sidecar
// as an extension-config filter named after the plugin,
// extensions.istio.io/<kind>/<namespace>.<plugin name>, and every rendered
// plugin is named infergate-<workload>-<filter>.
func isInfergateFilter(name string) bool {
	return strings.HasPrefix(infergateResource(name), "infergate-")
}

// filterIDOf maps an infergate filter to the id (guard, rate-limit, ...) it ends with.
func filterIDOf(name string, ids []string) string {
	for _, id := range ids {
		if strings.HasSuffix(infergateResource(name), "-"+id) {
			return id
		}
	}
	return "?" + name
}

// hasInfergateAccessLog: the chain's access log is the rendered provider, the one carrying infergate's decision.
func hasInfergateAccessLog(t *testing.T, c chain) bool {
	for _, al := range c.hcm.AccessLog {
		if strings.Contains(xdstest.Dump(t, al), `"infergate_decision_id"`) {
			return true
		}
	}
	return false
}

func TestInboundHTTPFilterChain(t *testing.T) {
	// istiod's info logs would bury the filter chains this test prints.
	for _, scope := range istiolog.Scopes() {
		scope.SetOutputLevel(istiolog.WarnLevel)
	}
	dir := env(t, "INFERGATE_RENDERED_DIR", "the directory `infergate render --out` wrote")
	form := env(t, "INFERGATE_FILTER_FORM", "wasmplugin or envoyfilter")
	order := strings.Split(env(t, "INFERGATE_FILTERS", "infergate's filter ids in chain order, e.g. guard"), ",")
	filterFile := map[string]string{"wasmplugin": "wasm-plugins.yaml", "envoyfilter": "envoy-filters.yaml"}[form]
	if filterFile == "" {
		t.Fatalf("INFERGATE_FILTER_FORM=%q: want wasmplugin or envoyfilter", form)
	}

	// Istio resources, as istiod would read them from the cluster.
	var istio []string
	q := quotasFromEnv(t)
	for _, f := range []string{"authorization.yaml", filterFile, "telemetry.yaml", "global-quotas.yaml"} {
		istio = append(istio, yamlDocuments(readRendered(t, dir, f))...)
	}
	configString := strings.Join(istio, "\n---\n")
	// The harness drops kinds it does not know; every rendered document must be one it knows.
	configs, unknown, err := crd.ParseInputs(configString)
	if err != nil {
		t.Fatalf("Istio rejects the rendered resources: %v", err)
	}
	if len(unknown) > 0 || len(configs) != len(istio) {
		t.Fatalf("Istio's harness does not take %d of %d rendered documents: %v", len(istio)-len(configs), len(istio), unknown)
	}
	for _, c := range configs {
		t.Logf("config: %s %s/%s", c.GroupVersionKind.Kind, c.Namespace, c.Name)
	}

	// Kubernetes objects: the rendered server install (its Service is the
	// provider's target), the rate-limit Service the ratelimit filters call, and the two workloads.
	kube := append(yamlDocuments(readRendered(t, dir, "ext-authz.yaml")), yamlDocuments(readRendered(t, dir, "ratelimit.yaml"))...)
	kube = append(kube, protected.kubernetesObjects(), unprotected.kubernetesObjects())

	meshYAML := meshConfigOf(t, readRendered(t, dir, "mesh-config.yaml"))
	meshConfig, err := mesh.ApplyMeshConfigDefaults(meshYAML)
	if err != nil {
		t.Fatalf("Istio rejects the rendered meshConfig: %v\n%s", err, meshYAML)
	}

	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		ConfigString:           configString,
		KubernetesObjectString: strings.Join(kube, "\n---\n"),
		MeshConfig:             meshConfig,
	})

	t.Run("protected workload: ext_authz to infergate, fail closed, then infergate's filters, then the router; STRICT mTLS; infergate's access log", func(t *testing.T) {
		p := sidecar(s, protected)
		// The provider's port must be one the rendered Service has, or Istio points ext_authz at a
		// cluster that does not exist (it does not check), and every request fails.
		if xdstest.ExtractCluster(infergateCluster, s.Clusters(p)) == nil {
			t.Errorf("the sidecar has no cluster %s (the rendered Service and the provider's service/port disagree)", infergateCluster)
		}
		if q.enabled() && xdstest.ExtractCluster(rateLimitCluster, s.Clusters(p)) == nil {
			t.Errorf("the sidecar has no cluster %s (the rendered rate-limit Service and the ratelimit filters disagree)", rateLimitCluster)
		}
		for _, c := range inboundHTTPChains(t, s, p, protected) {
			assertProtectedChain(t, c, order, q)
			assertRouteRateLimits(t, c, q.rateLimits)
			// The server decides from the caller's SPIFFE ID, which only an mTLS connection carries.
			if !c.tls {
				t.Errorf("%s: takes plaintext (the rendered PeerAuthentication asks for STRICT mTLS)", c.name)
			}
			if !hasInfergateAccessLog(t, c) {
				t.Errorf("%s: the access log is not the rendered infergate-access-log provider", c.name)
			}
		}
	})

	t.Run("unprotected workload: no infergate ext_authz, filter or access log; Istio's default mTLS", func(t *testing.T) {
		plaintext := false
		for _, c := range inboundHTTPChains(t, s, sidecar(s, unprotected), unprotected) {
			plaintext = plaintext || !c.tls
			assertRouteRateLimits(t, c, nil)
			if hasInfergateAccessLog(t, c) {
				t.Errorf("%s: has infergate's access log", c.name)
			}
			for _, f := range c.filters {
				if infergateExtAuthz(t, f) != nil {
					t.Errorf("%s: has infergate's ext_authz filter: %v", c.name, c.names())
				}
				if isInfergateFilter(f.Name) {
					t.Errorf("%s: has infergate's filter %s: %v", c.name, f.Name, c.names())
				}
			}
		}
		// Istio's default (PERMISSIVE) still applies here, so the STRICT check above tells the policies apart.
		if !plaintext {
			t.Errorf("no plaintext inbound chain: the rendered STRICT mTLS reaches a workload it does not select")
		}
	})
}

// assertRouteRateLimits: every route with a route action, in every virtual
// host of the chain's inbound route configuration, carries exactly `want`.
func assertRouteRateLimits(t *testing.T, c chain, want []*routev3.RateLimit) {
	t.Helper()
	rc := c.hcm.GetRouteConfig()
	if rc == nil {
		t.Errorf("%s: no inline route configuration (Istio's inbound routes changed shape)", c.name)
		return
	}
	routes := 0
	for _, vh := range rc.GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if r.GetRoute() == nil {
				continue
			}
			routes++
			got := r.GetRoute().GetRateLimits()
			if len(got) != len(want) {
				t.Errorf("%s: route %q of virtual host %q (route config %q) has %d rate limits, want %d", c.name, r.GetName(), vh.GetName(), rc.GetName(), len(got), len(want))
				continue
			}
			for i := range want {
				if !proto.Equal(got[i], want[i]) {
					t.Errorf("%s: route %q rate_limits[%d] is %s, want %s", c.name, r.GetName(), i, protojson.Format(got[i]), protojson.Format(want[i]))
				}
			}
		}
	}
	if routes == 0 {
		t.Errorf("%s: route config %q has no route with a route action", c.name, rc.GetName())
	}
}

func assertQuotaFilter(t *testing.T, c chain, i int, name string) {
	t.Helper()
	f := c.filters[i]
	cfg := xdstest.UnmarshalAny[ratelimit.RateLimit](t, f.GetTypedConfig())
	deny := strings.HasSuffix(name, "-deny")
	wantStage := uint32(0)
	if !deny {
		wantStage = 1
	}
	if cfg.GetDomain() != quotaDomain || cfg.GetStage() != wantStage || cfg.GetFailureModeDeny() != deny {
		t.Errorf("%s: ratelimit filter %s has domain %q stage %d failure_mode_deny %v, want %q %d %v", c.name, name, cfg.GetDomain(), cfg.GetStage(), cfg.GetFailureModeDeny(), quotaDomain, wantStage, deny)
	}
	if got := cfg.GetRateLimitService().GetGrpcService().GetEnvoyGrpc().GetClusterName(); got != rateLimitCluster {
		t.Errorf("%s: ratelimit filter %s calls %q, want %s", c.name, name, got, rateLimitCluster)
	}
}

func assertProtectedChain(t *testing.T, c chain, order []string, q quotas) {
	t.Helper()
	authz, router := -1, -1
	var ours []int
	quotaAt := map[string]int{}
	header := -1
	isQuota := map[string]bool{}
	for _, n := range q.filters {
		isQuota[n] = true
	}
	for i, f := range c.filters {
		switch {
		case isQuota[f.Name]:
			if _, dup := quotaAt[f.Name]; dup {
				t.Errorf("%s: ratelimit filter %s appears twice", c.name, f.Name)
			}
			quotaAt[f.Name] = i
			assertQuotaFilter(t, c, i, f.Name)
		case f.Name == headerFilter && q.enabled():
			header = i
		case f.Name == routerFilter:
			router = i
		case f.Name == extAuthzFilter:
			cfg := infergateExtAuthz(t, f)
			if cfg == nil {
				t.Errorf("%s: ext_authz filter %d does not call %s: %v", c.name, i, infergateCluster, xdstest.Dump(t, xdstest.UnmarshalAny[extauthz.ExtAuthz](t, f.GetTypedConfig())))
				continue
			}
			if authz >= 0 {
				t.Errorf("%s: infergate's ext_authz filter appears twice (%d and %d)", c.name, authz, i)
			}
			authz = i
			if cfg.GetFailureModeAllow() {
				t.Errorf("%s: ext_authz fails open (failure_mode_allow: true)", c.name)
			}
			if got := cfg.GetGrpcService().GetTimeout().AsDuration().String(); got != "500ms" {
				t.Errorf("%s: ext_authz timeout %s, want the provider's 0.5s", c.name, got)
			}
		case isInfergateFilter(f.Name):
			ours = append(ours, i)
		}
	}
	names := c.names()
	if authz < 0 {
		t.Errorf("%s: no ext_authz filter calling %s: %v", c.name, infergateCluster, names)
	}
	if len(ours) == 0 {
		t.Errorf("%s: no infergate filter: %v", c.name, names)
	}
	if router != len(c.filters)-1 {
		t.Errorf("%s: %s is not the last filter: %v", c.name, routerFilter, names)
	}
	var ids []string
	for _, i := range ours {
		ids = append(ids, filterIDOf(names[i], order))
	}
	if strings.Join(ids, ",") != strings.Join(order, ",") {
		t.Errorf("%s: infergate's filters run as [%s], want [%s]: %v", c.name, strings.Join(ids, ","), strings.Join(order, ","), names)
	}
	for _, i := range ours {
		if authz >= 0 && i < authz {
			t.Errorf("%s: misplaced: infergate filter %s (position %d) runs before ext_authz (position %d), so unauthorized requests reach it: %v", c.name, names[i], i, authz, names)
		}
		if router >= 0 && i > router {
			t.Errorf("%s: misplaced: infergate filter %s (position %d) comes after the router (position %d), so it never runs: %v", c.name, names[i], i, router, names)
		}
	}
	if !q.enabled() {
		return
	}
	// The header filter sees each response last, after every limiter wrote its x-ratelimit-* headers.
	if header != 0 {
		t.Errorf("%s: misplaced: the header filter %s is at position %d, want 0 (first): %v", c.name, headerFilter, header, names)
	}
	prev := -1
	for _, n := range q.filters {
		i, ok := quotaAt[n]
		if !ok {
			t.Errorf("%s: no ratelimit filter %s: %v", c.name, n, names)
			continue
		}
		if i < prev {
			t.Errorf("%s: ratelimit filters out of order: %s at %d before the one at %d: %v", c.name, n, i, prev, names)
		}
		prev = i
		// After the guard: it stays the cheap first line, so a caller over its burst costs no call to the service.
		for _, o := range ours {
			if i < o {
				t.Errorf("%s: misplaced: ratelimit filter %s (position %d) runs before infergate's filter %s (position %d): %v", c.name, n, i, names[o], o, names)
			}
		}
		if authz >= 0 && i < authz {
			t.Errorf("%s: misplaced: ratelimit filter %s (position %d) runs before ext_authz (position %d), before the headers it reads are verified: %v", c.name, n, i, authz, names)
		}
		if router >= 0 && i > router {
			t.Errorf("%s: misplaced: ratelimit filter %s (position %d) comes after the router: %v", c.name, n, i, names)
		}
	}
}
