"""An emulated Istio: turns the rendered istio/ objects into the Envoy
configuration istiod (and istio-agent) would give a gateway or a sidecar,
so the same .wasm runs as it would in a mesh, against the mock.

What this assumes about istiod's output, and where it comes from:
- An EnvoyFilter's EXTENSION_CONFIG patch becomes an ECDS resource of that
  name, and its HTTP_FILTER patch a filter with `config_discovery` naming
  it (istio.io: EnvoyFilter reference, "EXTENSION_CONFIG"; istiod's
  extension_config_builder.go); a VIRTUAL_HOST MERGE patch merges into the
  virtual host named `<host>:<port>` (the names istiod gives the outbound
  route configuration's virtual hosts). istio-agent downloads `code.remote` and
  serves it as `code.local` (pkg/wasm/convert.go). ADS is replaced by a
  watched file; `istio.stats` (not in stock Envoy) is left out.
- Cluster names are `outbound|<port>|<subset>|<host>` (pilot
  model/service.go BuildSubsetKey); a VirtualService route becomes an
  Envoy route with its header matches, `timeout`, `retries`
  (retry_on/num_retries), `headers.request.remove`, weighted clusters,
  and `mirror` + `mirrorPercentage` as a request mirror policy whose
  fraction is the percentage in millionths (istio.io: VirtualService
  reference, HTTPRoute.mirror_percentage).
- TLS origination (DestinationRule `tls.mode: SIMPLE`) is not emulated:
  every provider host resolves to the plain-HTTP mock here.
"""

import json
from pathlib import Path

import yaml

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"


def objects(tree: Path, rel: str):
    out = []
    for doc in yaml.safe_load_all((tree / rel).read_text()):
        if doc:
            out.append(doc)
    return out


def cluster_name(host, port, subset=""):
    return f"outbound|{port}|{subset}|{host}"


def ecds_resource(envoy_filter, wasm: Path, as_wasmplugin=False):
    """The filter's ECDS resource, after istio-agent fetched the module.
    `as_wasmplugin`: without `allow_on_headers_stop_iteration`, as istiod
    builds it from a WasmPlugin."""
    patch = next(p for p in envoy_filter["spec"]["configPatches"] if p["applyTo"] == "EXTENSION_CONFIG")
    resource = json.loads(json.dumps(patch["patch"]["value"]))
    resource["@type"] = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
    vm = resource["typed_config"]["config"]["vm_config"]
    assert "remote" in vm["code"], "the rendered filter is fetched by istio-agent"
    vm["code"] = {"local": {"filename": str(wasm)}}
    if as_wasmplugin:
        del resource["typed_config"]["config"]["allow_on_headers_stop_iteration"]
    return resource


def http_filter(envoy_filter, ecds_path: Path):
    patch = next(p for p in envoy_filter["spec"]["configPatches"] if p["applyTo"] == "HTTP_FILTER")
    assert patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == "istio.stats"
    assert patch["patch"]["operation"] == "INSERT_BEFORE"
    f = json.loads(json.dumps(patch["patch"]["value"]))
    f["config_discovery"]["config_source"] = {
        "path_config_source": {"path": str(ecds_path)}, "resource_api_version": "V3"}
    return f


def header_matcher(name, match):
    if "exact" in match:
        return {"name": name, "string_match": {"exact": match["exact"]}}
    if "regex" in match:
        return {"name": name, "string_match": {"safe_regex": {"regex": match["regex"]}}}
    if "prefix" in match:
        return {"name": name, "string_match": {"prefix": match["prefix"]}}
    raise ValueError(f"unsupported header match {match}")


def destination_cluster(dest, default_port):
    port = dest.get("port", {}).get("number", default_port)
    return cluster_name(dest["host"], port, dest.get("subset", ""))


def routes(virtual_service, default_port=80):
    """A VirtualService's HTTP routes as Envoy routes."""
    out = []
    for r in virtual_service["spec"]["http"]:
        matches = r.get("match") or [{}]
        for m in matches:
            route = {}
            dests = r["route"]
            if len(dests) == 1:
                route["cluster"] = destination_cluster(dests[0]["destination"], default_port)
            else:
                route["weighted_clusters"] = {"clusters": [
                    {"name": destination_cluster(d["destination"], default_port), "weight": d["weight"]}
                    for d in dests if d.get("weight", 0) > 0]}
            if "timeout" in r:
                route["timeout"] = _duration(r["timeout"])
            if "retries" in r:
                route["retry_policy"] = {"retry_on": r["retries"]["retryOn"],
                                         "num_retries": r["retries"]["attempts"]}
            if "mirror" in r:
                pct = r.get("mirrorPercentage", {}).get("value", 100.0)
                route["request_mirror_policies"] = [{
                    "cluster": destination_cluster(r["mirror"], default_port),
                    "runtime_fraction": {"default_value": {
                        "numerator": int(round(pct * 10000)), "denominator": "MILLION"}}}]
            envoy_route = {"match": {"prefix": "/", "headers": [
                header_matcher(n, v) for n, v in m.get("headers", {}).items()]}, "route": route}
            remove = r.get("headers", {}).get("request", {}).get("remove")
            if remove:
                envoy_route["request_headers_to_remove"] = remove
            out.append(envoy_route)
    return out


def _duration(text):
    """Istio durations (`300s`, `2000ms`) as protobuf JSON durations."""
    if text.endswith("ms"):
        return f"{int(text[:-2]) / 1000:.3f}s"
    return text


def static_cluster(name, addr):
    host, port = addr.rsplit(":", 1)
    return {"name": name, "type": "STATIC", "connect_timeout": "2s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": host, "port_value": int(port)}}}}]}]}}


def listener(name, port, route_config, http_filters):
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": name, "codec_type": "AUTO", "route_config": route_config,
        "http_filters": [*http_filters, {"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}
    return {"name": name, "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": hcm}]}]}


def gateway_bootstrap(tree: Path, mode_dir: str, filter_file: str, work: Path, wasm: Path,
                      port: int, admin_port: int, upstream: str, as_wasmplugin=False):
    """The Envoy of an Istio gateway Pod (`mode_dir` gateway/ or canary/:
    the Gateway's listener) or of an application's sidecar (sidecar/: its
    outbound listener for port 80, the sidecar host's virtual host), with
    the filter, the provider routes and the providers' clusters, every
    provider host served by `upstream`."""
    ef = objects(tree, f"{mode_dir}/{filter_file}")[0]
    ecds_path = work / f"ecds-{mode_dir}.json"
    ecds_path.write_text(json.dumps({"resources": [ecds_resource(ef, wasm, as_wasmplugin)]}))
    context = next(p for p in ef["spec"]["configPatches"] if p["applyTo"] == "HTTP_FILTER")["match"]["context"]
    if mode_dir == "sidecar":
        # The outbound route config of port 80: a virtual host per host
        # (the sidecar host's from its ServiceEntry, routing to its own
        # endpoint-less cluster; each provider host's from its
        # VirtualService).
        assert context == "SIDECAR_OUTBOUND"
        own = objects(tree, "sidecar/serviceentry.yaml")[0]["spec"]["hosts"][0]
        vhosts = [{"name": f"{own}:80", "domains": [own, f"{own}:80"],
                   "routes": [{"match": {"prefix": "/"}, "route": {"cluster": cluster_name(own, 80)}}]}]
        for vs in objects(tree, "sidecar/routes.yaml"):
            host = vs["spec"]["hosts"][0]
            vhosts.append({"name": f"{host}:80", "domains": [host, f"{host}:80"], "routes": routes(vs)})
        name, route_name = "0.0.0.0_80", "80"
    else:
        assert context == "GATEWAY"
        vs = objects(tree, "gateway/routes.yaml")[0]
        gateway = objects(tree, "gateway/gateway.yaml")[0]
        assert gateway["spec"]["servers"][0]["port"]["protocol"] == "HTTP"
        vhosts = [{"name": "*:8080", "domains": ["*"], "routes": routes(vs)}]
        name, route_name = "0.0.0.0_8080", "http.8080"
    # VIRTUAL_HOST patches merge into the virtual host they name.
    for p in ef["spec"]["configPatches"]:
        if p["applyTo"] == "VIRTUAL_HOST":
            assert p["patch"]["operation"] == "MERGE"
            target = p["match"]["routeConfiguration"]["vhost"]["name"]
            vhost = next(v for v in vhosts if v["name"] == target)
            vhost.update(json.loads(json.dumps(p["patch"]["value"])))
    clusters = {r["route"]["cluster"] for v in vhosts for r in v["routes"]}
    route_config = {"name": route_name, "virtual_hosts": vhosts}
    bootstrap = {
        "node": {"id": f"router~127.0.0.1~{mode_dir}.llm-gateway~llm-gateway.svc.cluster.local",
                 "cluster": "llm-gateway.llm-gateway"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [listener(name, port, route_config, [http_filter(ef, ecds_path)])],
            "clusters": [static_cluster(c, upstream if not c.endswith(".mesh.internal") else "127.0.0.1:9")
                         for c in sorted(clusters)],
        },
    }
    # The BOOTSTRAP patch merges into the proxy's bootstrap (Istio's own
    # stats_config is empty here).
    for p in ef["spec"]["configPatches"]:
        if p["applyTo"] == "BOOTSTRAP":
            assert p["patch"]["operation"] == "MERGE"
            bootstrap.update(json.loads(json.dumps(p["patch"]["value"])))
    return bootstrap


def sidecar_bootstrap(tree: Path, port: int, admin_port: int, stable: str, canary: str):
    """A mesh client's sidecar calling the gateway Service: the canary
    VirtualService's routes, the two subsets' clusters."""
    vs = objects(tree, "canary/virtualservice.yaml")[0]
    host = vs["spec"]["hosts"][0]
    route_config = {"name": "80", "virtual_hosts": [
        {"name": f"{host}:80", "domains": ["*"], "routes": routes(vs)}]}
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [listener("0.0.0.0_80", port, route_config, [])],
            "clusters": [static_cluster(cluster_name(host, 80, "stable"), stable),
                         static_cluster(cluster_name(host, 80, "canary"), canary)],
        },
    }
