"""`make oci`: the filter as an OCI image in the layout Istio's agent pulls
(one tar+gzip layer holding plugin.wasm), built without a container engine,
reproducibly, and readable by a standard OCI tool (skopeo)."""

import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile

import pytest

from harness import ROOT, WASM

BUILD = ROOT / "oci/build.py"


def build(out, tag="1.2.3"):
    r = subprocess.run([sys.executable, str(BUILD), str(WASM), str(out), tag],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def read_blob(layout, descriptor):
    algo, digest = descriptor["digest"].split(":")
    data = (layout / "blobs" / algo / digest).read_bytes()
    assert algo == "sha256" and hashlib.sha256(data).hexdigest() == digest
    assert len(data) == descriptor["size"]
    return data


def test_layout_holds_plugin_wasm_as_istio_expects(tmp_path):
    layout = tmp_path / "plugin"
    out = build(layout)
    assert hashlib.sha256(WASM.read_bytes()).hexdigest() in out
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    [desc] = index["manifests"]
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == "1.2.3"
    manifest = json.loads(read_blob(layout, desc))
    assert manifest["mediaType"] == desc["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    # Istio's fetcher takes the last layer of an OCI image; a tar+gzip one
    # must hold a file named plugin.wasm.
    layer = manifest["layers"][-1]
    assert layer["mediaType"] == "application/vnd.oci.image.layer.v1.tar+gzip"
    tar_bytes = gzip.decompress(read_blob(layout, layer))
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        assert tar.getnames() == ["plugin.wasm"]
        assert tar.extractfile("plugin.wasm").read() == WASM.read_bytes()
    config = json.loads(read_blob(layout, manifest["config"]))
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(tar_bytes).hexdigest()}"]


def test_build_is_reproducible(tmp_path):
    build(tmp_path / "a")
    build(tmp_path / "b")
    assert (tmp_path / "a/index.json").read_text() == (tmp_path / "b/index.json").read_text()
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()


def test_a_standard_oci_tool_reads_layout_and_archive(tmp_path):
    if not shutil.which("skopeo"):
        pytest.fail("skopeo is missing: `make test` installs it (scripts/install-deps.sh venv)")
    layout = tmp_path / "plugin"
    build(layout, "t1")
    info = json.loads(subprocess.run(["skopeo", "inspect", f"oci:{layout}:t1"], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["Os"] == "wasip1" and len(info["Layers"]) == 1
    copied = tmp_path / "copied"
    subprocess.run(["skopeo", "copy", "-q", f"oci-archive:{tmp_path / 'plugin.tar'}:t1", f"dir:{copied}"],
                   check=True, capture_output=True, timeout=60)
    layer = copied / info["Layers"][0].split(":")[1]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer.read_bytes()))) as tar:
        assert tar.extractfile("plugin.wasm").read() == WASM.read_bytes()
