#!/usr/bin/env python3
"""Measure how well an embeddings endpoint separates paraphrases from hard negatives.

Starts nothing: point it at a running OpenAI-compatible server, e.g.

    .venv-embed/bin/python tests/embeddings/server.py --port 0   # prints the port
    python3 tests/embeddings/evaluate.py --url http://127.0.0.1:PORT

Standard library only (any Python 3.9+). For every pair of pairs.jsonl it prints
the cosine similarity of the float vectors and of the int8-quantized vectors
(q = round(v * 127 / max|v|), rounding half away from zero like Rust's
f32::round, which the gateway's semantic cache uses), then precision and recall
(paraphrase = positive, predicted positive = cosine >= threshold, i.e. a cache
hit) per threshold for all pairs, English only and Chinese only, and the
threshold that gives precision 1.0 (no wrong cache hit) with the best recall.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import statistics
import struct
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

THRESHOLDS = (0.80, 0.85, 0.88, 0.90, 0.92, 0.95)
HERE = Path(__file__).resolve().parent


def endpoint(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1/embeddings") else url + "/v1/embeddings"


def post(url: str, body: dict, timeout: float = 120.0, quiet: bool = False) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": "Bearer test"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        if quiet:
            raise SystemExit(1)
        raise SystemExit(f"{url}: HTTP {e.code}: {e.read().decode(errors='replace')}")


def embed_all(url: str, model: str, texts: list[str], chunk: int = 64) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for i in range(0, len(texts), chunk):
        part = texts[i:i + chunk]
        resp = post(url, {"model": model, "input": part, "encoding_format": "float"})
        data = sorted(resp["data"], key=lambda d: d["index"])
        if len(data) != len(part):
            raise SystemExit(f"asked for {len(part)} embeddings, got {len(data)}")
        for t, d in zip(part, data):
            emb = d["embedding"]
            if isinstance(emb, str):  # base64 little-endian float32
                raw = base64.b64decode(emb)
                emb = list(struct.unpack(f"<{len(raw) // 4}f", raw))
            out[t] = emb
    return out


def cosine(a, b) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(y * y for y in b))
    return dot / (na * nb) if na and nb else 0.0


def round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def quantize(v: list[float]) -> list[int]:
    m = max(abs(x) for x in v)
    if m == 0:
        return [0] * len(v)
    return [max(-127, min(127, round_half_away(x * 127.0 / m))) for x in v]


def pr(rows, key: str, thr: float):
    tp = sum(1 for r in rows if r[key] >= thr and r["paraphrase"])
    fp = sum(1 for r in rows if r[key] >= thr and not r["paraphrase"])
    pos = sum(1 for r in rows if r["paraphrase"])
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / pos if pos else None
    return precision, recall, tp, fp


def fmt(x) -> str:
    return "  -  " if x is None else f"{x:.3f}"


def best_with_fp(rows, key: str, max_fp: int):
    """Lowest threshold (a paraphrase's own score) with at most max_fp false hits.

    Returns (threshold, precision, recall, tp, fp) or None if no paraphrase can
    be a hit without more than max_fp wrong hits.
    """
    best = None
    for t in sorted({r[key] for r in rows if r["paraphrase"]}):
        prec, rec, tp, fp = pr(rows, key, t)
        if fp <= max_fp and tp and (best is None or tp > best[3]):
            best = (t, prec, rec, tp, fp)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="base URL of the server, e.g. http://127.0.0.1:8000")
    ap.add_argument("--model", default="all-MiniLM-L6-v2", help="model name sent in requests")
    ap.add_argument("--pairs", default=str(HERE / "pairs.jsonl"))
    ap.add_argument("--latency", type=int, default=20,
                    help="time this many single short-prompt requests first (0 = skip)")
    args = ap.parse_args(argv)
    url = endpoint(args.url)

    pairs = [json.loads(line) for line in Path(args.pairs).read_text(encoding="utf-8").splitlines() if line.strip()]
    for p in pairs:
        assert set(p) >= {"a", "b", "paraphrase", "lang"}, p

    if args.latency > 0:
        prompt = "How do I reverse a list in Python?"
        post(url, {"model": args.model, "input": prompt})  # warm the connection path
        ts = []
        for _ in range(args.latency):
            t0 = time.perf_counter()
            post(url, {"model": args.model, "input": prompt})
            ts.append((time.perf_counter() - t0) * 1000)
        ts.sort()
        p90 = ts[min(len(ts) - 1, int(round(0.9 * len(ts))) - 1)]
        print(f"latency, 1 short prompt ({len(prompt)} chars), {len(ts)} requests: "
              f"median {statistics.median(ts):.1f} ms, p90 {p90:.1f} ms, min {ts[0]:.1f} ms, max {ts[-1]:.1f} ms")

    texts = sorted({t for p in pairs for t in (p["a"], p["b"])})
    t0 = time.perf_counter()
    emb = embed_all(url, args.model, texts)
    dt = time.perf_counter() - t0
    dims = {len(v) for v in emb.values()}
    print(f"embedded {len(texts)} distinct texts in {dt:.2f}s (batches of 64), dimensions {sorted(dims)}")
    q = {t: quantize(v) for t, v in emb.items()}

    # Vocabulary coverage, if the server has the (non-OpenAI) /tokenize debug route.
    try:
        toks = post(url.rsplit("/v1/embeddings", 1)[0] + "/tokenize", {"input": texts}, quiet=True)["tokens"]
    except (SystemExit, KeyError, OSError):
        toks = None
    if toks:
        by_text = dict(zip(texts, toks))
        for lang in sorted({p["lang"] for p in pairs}):
            lt = {t for p in pairs if p["lang"] == lang for t in (p["a"], p["b"])}
            words = [w for t in lt for w in by_text[t] if w not in ("[CLS]", "[SEP]")]
            unk = sum(w == "[UNK]" for w in words)
            print(f"tokens ({lang}): {len(words)} word pieces, {unk} of them [UNK] ({unk / max(1, len(words)):.0%})")

    rows = []
    for p in pairs:
        rows.append(dict(p, cos=cosine(emb[p["a"]], emb[p["b"]]), cos8=cosine(q[p["a"]], q[p["b"]])))

    print()
    print("per pair (P = paraphrase, N = not):")
    print(f"{'lang':4} {'lbl':3} {'cos':>7} {'int8':>7} {'diff':>8}  a | b")
    for r in rows:
        print(f"{r['lang']:4} {'P' if r['paraphrase'] else 'N':3} {r['cos']:7.4f} {r['cos8']:7.4f} "
              f"{r['cos8'] - r['cos']:+8.5f}  {r['a']} | {r['b']}")

    groups = [("all", rows), ("en", [r for r in rows if r["lang"] == "en"]),
              ("zh", [r for r in rows if r["lang"] == "zh"])]
    for key, title in (("cos", "float32 vectors"), ("cos8", "int8-quantized vectors")):
        print()
        print(f"precision / recall ({title}); predicted hit = cosine >= threshold")
        print(f"{'thr':>5} | " + " | ".join(f"{g:^27}" for g, _ in groups))
        print(f"{'':>5} | " + " | ".join(f"{'prec':>6} {'recall':>6} {'TP':>3}/{'FP':<3}   " for _ in groups))
        for thr in THRESHOLDS:
            cells = []
            for _, rs in groups:
                prec, rec, tp, fp = pr(rs, key, thr)
                cells.append(f"{fmt(prec):>6} {fmt(rec):>6} {tp:>3}/{fp:<3}   ")
            print(f"{thr:5.2f} | " + " | ".join(cells))

    print()
    print("positives / negatives:", ", ".join(
        f"{g} {sum(r['paraphrase'] for r in rs)}/{sum(not r['paraphrase'] for r in rs)}" for g, rs in groups))
    for g, rs in groups:
        pos = [r["cos"] for r in rs if r["paraphrase"]]
        neg = [r["cos"] for r in rs if not r["paraphrase"]]
        print(f"{g}: paraphrase cos min {min(pos):.4f} median {statistics.median(pos):.4f}; "
              f"non-paraphrase cos max {max(neg):.4f} median {statistics.median(neg):.4f}")

    print()
    print("decisions changed by int8 quantization (float says hit != int8 says hit):")
    changed = 0
    for thr in THRESHOLDS:
        for r in rows:
            if (r["cos"] >= thr) != (r["cos8"] >= thr):
                changed += 1
                print(f"  thr {thr:.2f}: {r['lang']} {'P' if r['paraphrase'] else 'N'} "
                      f"cos {r['cos']:.4f} int8 {r['cos8']:.4f}  {r['a']} | {r['b']}")
    if not changed:
        print("  none at any listed threshold")
    md = max(abs(r["cos8"] - r["cos"]) for r in rows)
    print(f"  max |cos_int8 - cos_float| over all pairs: {md:.5f}")

    print()
    print("suggested threshold (precision 1.0 on this set, best recall):")
    for g, rs in groups:
        npos = sum(r["paraphrase"] for r in rs)
        for key, title in (("cos", "float"), ("cos8", "int8")):
            listed = [(thr, pr(rs, key, thr)) for thr in THRESHOLDS]
            ok = [(thr, rec) for thr, (prec, rec, tp, fp) in listed if fp == 0]
            lst = (f"of the listed: {ok[0][0]:.2f} (recall {ok[0][1]:.3f})" if ok
                   else "none of the listed thresholds has precision 1.0")
            max_neg = max(r[key] for r in rs if not r["paraphrase"])
            b0 = best_with_fp(rs, key, 0)
            if b0:
                exact = (f"any threshold in ({max_neg:.4f}, {b0[0]:.4f}] gives recall {b0[2]:.3f} "
                         f"({b0[3]} of {npos})")
            else:
                exact = f"no threshold does: a non-paraphrase scores {max_neg:.4f}, above every paraphrase"
            print(f"  {g:3} {title:5}: {lst}; {exact}")
    print()
    print("non-paraphrases scoring above the median paraphrase (they set the threshold):")
    for g, rs in groups[1:]:
        med = statistics.median(r["cos"] for r in rs if r["paraphrase"])
        bad = sorted((r for r in rs if not r["paraphrase"] and r["cos"] >= med), key=lambda r: -r["cos"])
        for r in bad:
            print(f"  {g} cos {r['cos']:.4f}  {r['a']} | {r['b']}")
        if not bad:
            print(f"  {g}: none")
    print()
    print("best recall if k wrong hits are tolerated (float; threshold = that paraphrase's score):")
    for g, rs in groups:
        parts = []
        for k in (0, 1, 2, 3):
            r = best_with_fp(rs, "cos", k)
            parts.append(f"k={k}: " + (f"thr {r[0]:.4f} recall {r[2]:.3f} prec {r[1]:.3f}" if r else "recall 0"))
        print(f"  {g:3} " + "; ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
