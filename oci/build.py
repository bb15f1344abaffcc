#!/usr/bin/env python3
"""Builds the filter's OCI image without a container engine: an OCI image
layout (directory and tar archive) holding one layer with `plugin.wasm`,
what `docker build -f oci/Dockerfile` makes (`FROM scratch`, one COPY) and
what Istio's agent pulls (a tar+gzip layer, the module found as
`plugin.wasm`). The build is reproducible: the same .wasm gives the same
digests. Push with any OCI registry client, e.g.
`skopeo copy oci-archive:target/oci/llm-gateway-plugin.tar docker://REGISTRY/llm-gateway-plugin:TAG`
or `oras cp --from-oci-layout target/oci/llm-gateway-plugin:TAG REGISTRY/...`.

usage: oci/build.py WASM OUT_DIR TAG
"""

import gzip
import hashlib
import io
import json
import sys
import tarfile
from pathlib import Path

LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def layer_bytes(wasm: bytes) -> tuple[bytes, bytes]:
    """(the tar, the gzip of it): one file, fixed owner, mode and time."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("plugin.wasm")
        info.size, info.mode, info.mtime = len(wasm), 0o444, 0
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        tar.addfile(info, io.BytesIO(wasm))
    tar_bytes = raw.getvalue()
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0, filename="") as gz:
        gz.write(tar_bytes)
    return tar_bytes, packed.getvalue()


def blob(out: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    path = out / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build(wasm_path: Path, out: Path, tag: str) -> dict:
    wasm = wasm_path.read_bytes()
    tar_bytes, gz = layer_bytes(wasm)
    if out.exists():
        for p in sorted(out.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
    out.mkdir(parents=True, exist_ok=True)
    layer = {"mediaType": LAYER, **blob(out, gz)}
    config = {
        "architecture": "wasm", "os": "wasip1",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{hashlib.sha256(tar_bytes).hexdigest()}"]},
        "history": [{"created_by": "COPY plugin.wasm ./ (oci/build.py)"}],
    }
    manifest = {
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, **blob(out, canonical(config))},
        "layers": [layer],
        "annotations": {"module.wasm.image/variant": "compat",
                        "org.opencontainers.image.title": "llm-gateway proxy-wasm filter"},
    }
    manifest_desc = {"mediaType": MANIFEST, **blob(out, canonical(manifest)),
                     "annotations": {"org.opencontainers.image.ref.name": tag}}
    (out / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (out / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": INDEX,
                                                "manifests": [manifest_desc]}, indent=1))
    archive = out.with_suffix(".tar")
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for p in sorted(out.rglob("*")):
            info = tar.gettarinfo(str(p), arcname=str(p.relative_to(out)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if p.is_file():
                with open(p, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    return {"manifest": manifest_desc["digest"], "wasm_sha256": hashlib.sha256(wasm).hexdigest(),
            "layout": str(out), "archive": str(archive)}


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    result = build(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
    print(f"==> OCI image layout {result['layout']} (and {result['archive']})")
    print(f"    tag {sys.argv[3]}, manifest {result['manifest']}")
    print(f"    plugin.wasm sha256 {result['wasm_sha256']} (kubernetes.plugin.sha256 for https:// delivery)")
