"""The Kubernetes and Istio manifests under istio/: current with the gateway
file, valid against Kubernetes' and Istio's schemas (offline), and the
Deployment's Envoy configuration is the one `make run` serves, which runs and
reloads when its ConfigMap changes the way the kubelet changes it."""

import copy
import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from harness import RENDER, ROOT, WASM, Gateway, Mock, free_port

CONFIG = ROOT / "config/gateway.kubernetes.yaml"
TREE = ROOT / "istio"
K8S_VERSION = "1.33.0"
CONFIG_DIR = "/etc/llm-gateway"


def docs_in(tree: Path):
    """(file, object) for every object of every manifest under `tree`."""
    out = []
    for path in sorted(tree.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((path.relative_to(tree), doc))
    return out


def render_tree(config_path: Path, out: Path):
    r = subprocess.run([str(RENDER), "istio", "--config", str(config_path), "--out", str(out)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return out


def test_istio_tree_is_current():
    r = subprocess.run([str(RENDER), "istio", "--config", str(CONFIG), "--out", str(TREE), "--check"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{r.stderr}: run `make render`"


# --- offline schema validation ------------------------------------------

ISTIO_KINDS = {
    ("networking.istio.io/v1", "VirtualService"), ("networking.istio.io/v1", "DestinationRule"),
    ("networking.istio.io/v1", "ServiceEntry"), ("networking.istio.io/v1", "Gateway"),
    ("networking.istio.io/v1alpha3", "EnvoyFilter"),
}
# Objects that are not Kubernetes objects, or only a part of one.
NOT_OBJECTS = {"Kustomization"}
PATCHES = {Path("sidecar/pod-patch.yaml"), Path("prometheus-adapter-values.yaml")}


def istio_model(api_version, kind):
    from cloudcoil.models.istio.networking import v1, v1alpha3
    module = {"networking.istio.io/v1": v1, "networking.istio.io/v1alpha3": v1alpha3}[api_version]
    return getattr(module, kind)


def unknown_fields(model, value, where="$"):
    """Keys of `value` the model does not declare, recursively (the models
    themselves accept anything extra; the API server, validating strictly,
    does not). Free-form fields (Struct, Any) are not descended into."""
    import typing
    from pydantic import BaseModel
    found = []
    if not isinstance(value, dict):
        return found
    fields = {}
    for name, f in model.model_fields.items():
        fields[f.alias or name] = f.annotation
        fields[name] = f.annotation
    for key, v in value.items():
        if key not in fields:
            found.append(f"{where}.{key}")
            continue
        for t in models_in(fields[key], typing, BaseModel):
            if isinstance(v, list):
                for i, item in enumerate(v):
                    found += unknown_fields(t, item, f"{where}.{key}[{i}]")
            elif isinstance(v, dict) and not is_map(fields[key], typing):
                found += unknown_fields(t, v, f"{where}.{key}")
            elif isinstance(v, dict):
                for mk, mv in v.items():
                    found += unknown_fields(t, mv, f"{where}.{key}.{mk}")
            break
    return found


def models_in(annotation, typing, base):
    """The pydantic model types an annotation holds (through Optional,
    List, Dict, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, base):
        return [annotation]
    out = []
    for arg in typing.get_args(annotation):
        out += models_in(arg, typing, base)
    return out


def is_map(annotation, typing):
    origin = typing.get_origin(annotation)
    if origin is dict:
        return True
    return any(is_map(a, typing) for a in typing.get_args(annotation))


def validate(doc):
    """Problems with one object: [] when valid."""
    key = (doc.get("apiVersion"), doc.get("kind"))
    if key in ISTIO_KINDS:
        model = istio_model(*key)
        try:
            model.model_validate(doc)
        except Exception as e:  # pydantic's ValidationError
            return [str(e)]
        return unknown_fields(model, doc)
    import kubernetes_validate
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{e.message} at {list(e.path)}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {key}"]
    return []


SHIPPED = [(f, d) for f, d in docs_in(TREE) if d.get("kind") not in NOT_OBJECTS and f not in PATCHES]


@pytest.mark.parametrize("doc", [d for _, d in SHIPPED],
                         ids=[f"{f}:{d['kind']}/{d['metadata']['name']}" for f, d in SHIPPED])
def test_manifest_validates(doc):
    assert validate(doc) == []


def test_every_kind_is_covered():
    kinds = {d["kind"] for _, d in SHIPPED}
    assert kinds >= {"Namespace", "ConfigMap", "Deployment", "Service", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget", "NetworkPolicy", "ServiceEntry", "DestinationRule",
                     "VirtualService", "Gateway", "EnvoyFilter"}


def shipped(kind, name):
    return copy.deepcopy(next(d for _, d in SHIPPED if d["kind"] == kind and d["metadata"]["name"] == name))


@pytest.mark.parametrize("kind,name,mutate,problem", [
    ("Deployment", "llm-gateway",
     lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(containerPort="http"),
     "'http' is not of type 'integer'"),
    ("Deployment", "llm-gateway",
     lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinesProbe={}), "readinesProbe"),
    ("HorizontalPodAutoscaler", "llm-gateway", lambda d: d["spec"].update(minReplicas="two"), "two"),
    ("VirtualService", "llm-gateway-canary",
     lambda d: d["spec"]["http"][1].update(mirrorPercentag={"value": 5}), "mirrorPercentag"),
    ("DestinationRule", "llm-gateway-api-openai-com",
     lambda d: d["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"].update(mode="SIMPEL"), "SIMPEL"),
    ("EnvoyFilter", "llm-gateway",
     lambda d: d["spec"]["configPatches"][1].update(applyTo="HTTP_FILTERS"), "HTTP_FILTERS"),
    ("ServiceEntry", "llm-gateway-api-openai-com",
     lambda d: d["spec"]["ports"][0].update(protocl="HTTP"), "protocl"),
])
def test_validation_catches_mistakes(kind, name, mutate, problem):
    """The checks can fail: a typo'd field, a wrong enum or type is caught."""
    doc = shipped(kind, name)
    assert validate(doc) == []
    mutate(doc)
    problems = validate(doc)
    assert problems and problem in " ".join(problems), problems


def test_kustomizations_name_existing_files():
    for path in TREE.rglob("kustomization.yaml"):
        k = yaml.safe_load(path.read_text())
        for res in k["resources"]:
            target = path.parent / res
            assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{path}: {res}"


def test_keys_come_from_the_secret(tmp_path):
    """No key in any manifest; a literal key in the gateway file is refused."""
    text = "".join(p.read_text() for p in TREE.rglob("*.yaml"))
    assert "secretKeyRef" in text and "sk-" not in text
    bad = tmp_path / "gateway.yaml"
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["providers"][0]["api_key"] = "sk-live-123"
    bad.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([str(RENDER), "istio", "--config", str(bad), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "providers[0] (openai): in Kubernetes a key comes from the Secret" in r.stderr
    assert "sk-live-123" not in r.stderr


def test_bad_kubernetes_section_names_the_field(tmp_path):
    cfg = yaml.safe_load(CONFIG.read_text())
    cfg["kubernetes"]["canary"]["percent"] = 150
    bad = tmp_path / "gateway.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([str(RENDER), "istio", "--config", str(bad), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "kubernetes.canary.percent" in r.stderr, r.stderr


# --- the Deployment's Envoy is the one `make run` starts -----------------

def configmap_files(tree: Path):
    cm = next(d for f, d in docs_in(tree) if d["kind"] == "ConfigMap")
    return cm["data"]


def test_configmap_holds_the_make_run_configuration(tmp_path):
    """`make run` renders the gateway file with `--out-dir`; the ConfigMap
    holds the same files, differing only where the Pod differs: the
    directory, the .wasm's path and the addresses bound."""
    out = tmp_path / "xds"
    subprocess.run([str(RENDER), "--config", str(CONFIG), "--wasm", str(WASM), "--out-dir", str(out)],
                   check=True, capture_output=True, timeout=60)
    local = {p.name: p.read_text() for p in out.iterdir() if not p.name.endswith(".wasm")}
    staged = next(p.name for p in out.iterdir() if p.name.endswith(".wasm"))
    pod = configmap_files(TREE)
    assert sorted(pod) == sorted(local)
    for name, text in local.items():
        text = (text.replace(f"{out.resolve()}/{staged}", f"{CONFIG_DIR}/plugin/llm_gateway.wasm")
                .replace(str(out.resolve()), CONFIG_DIR))
        mine = yaml.safe_load(pod[name])
        theirs = yaml.safe_load(text)
        if name == "bootstrap.yaml":
            assert theirs["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
            theirs["admin"]["address"]["socket_address"]["address"] = "0.0.0.0"
        if name == "lds.json":
            addr = theirs["resources"][0]["address"]["socket_address"]
            assert addr["address"] == "127.0.0.1"
            addr["address"] = "0.0.0.0"
        assert mine == theirs, name


class KubeletVolume:
    """A ConfigMap volume as the kubelet lays it out: each key a link to
    `..data/<key>`, `..data` a link to a timestamped directory, replaced on
    an update by renaming a new link over it (one atomic step)."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True)
        self.generation = 0

    def project(self, files: dict):
        self.generation += 1
        version = self.root / f"..2026_12_03_{self.generation:02d}"
        version.mkdir()
        for name, text in files.items():
            (version / name).write_text(text)
        tmp_link = self.root / "..data_tmp"
        os.symlink(version.name, tmp_link)
        os.rename(tmp_link, self.root / "..data")
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                os.symlink(f"..data/{name}", link)


def pod_files(tree: Path, mount: Path):
    """The ConfigMap's files with the Pod's paths at `mount` and loopback
    instead of the Pod's address (only loopback is reachable here)."""
    return {name: text.replace(CONFIG_DIR, str(mount)).replace("0.0.0.0", "127.0.0.1")
            for name, text in configmap_files(tree).items()}


def test_configmap_configuration_runs_and_reloads_like_in_a_pod(tmp_path):
    """Envoy started from the ConfigMap's files serves; a changed ConfigMap
    (a new model) applies without a restart, as the kubelet swaps it in."""
    mock = Mock()
    envoy = None
    try:
        port, admin = free_port(), free_port()
        cfg = yaml.safe_load(CONFIG.read_text())
        cfg["listener"]["port"], cfg["admin"]["port"] = port, admin
        cfg["providers"].append({"name": "mock", "type": "openai", "base_url": f"{mock.url}/v1",
                                 "api_key": "env:MOCK_API_KEY"})
        cfg["models"].append({"name": "mock-gpt", "targets": [{"provider": "mock", "model": "gpt-4o-mini"}]})
        gw_file = tmp_path / "gateway.yaml"
        gw_file.write_text(yaml.safe_dump(cfg))
        mount = tmp_path / "volume"
        volume = KubeletVolume(mount)
        (mount / "plugin").mkdir()
        (mount / "plugin/llm_gateway.wasm").write_bytes(WASM.read_bytes())
        volume.project(pod_files(render_tree(gw_file, tmp_path / "tree1"), mount))

        envoy = Gateway.__new__(Gateway)
        envoy.port, envoy.admin_port = port, admin
        envoy._start(mount / "bootstrap.yaml", tmp_path, 2, {"MOCK_API_KEY": "sk-upstream"})
        pid = envoy.proc.pid
        r = envoy.post("/v1/chat/completions", {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text
        assert mock.last()["headers"]["authorization"] == "Bearer sk-upstream"

        cfg["models"].append({"name": "mock-gpt-next", "targets": [{"provider": "mock", "model": "gpt-4.1"}]})
        gw_file.write_text(yaml.safe_dump(cfg))
        volume.project(pod_files(render_tree(gw_file, tmp_path / "tree2"), mount))
        deadline = time.time() + 15
        while time.time() < deadline:
            ids = [m["id"] for m in envoy.client.get(envoy.url + "/v1/models").json()["data"]]
            if "mock-gpt-next" in ids:
                break
            time.sleep(0.2)
        assert "mock-gpt-next" in ids
        r = envoy.post("/v1/chat/completions",
                       {"model": "mock-gpt-next", "messages": [{"role": "user", "content": "hi"}]})
        assert r.status_code == 200, r.text
        assert json.loads(mock.last()["body"])["model"] == "gpt-4.1"
        assert envoy.proc.pid == pid and envoy.proc.poll() is None
    finally:
        if envoy:
            envoy.stop()
        mock.stop()
