"""The semantic cache with a real sentence-embedding model
(all-MiniLM-L6-v2, served by tests/embeddings/server.py as an
OpenAI-compatible `/v1/embeddings` provider), measured on the labelled
paraphrase set tests/embeddings/pairs.jsonl through Envoy: for each pair
the first prompt is answered and stored, the second asked; a hit is the
gateway's decision. The test checks that every decision is the one the
model's cosine similarity at the threshold implies (the int8 index loses
nothing that matters), and writes precision and recall per language to
target/semantic-cache-quality.json (the numbers in README)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from harness import Gateway, Mock, stop

ROOT = Path(__file__).resolve().parents[2]
EMBED_PY = ROOT / ".venv-embed" / "bin" / "python"
PAIRS = [json.loads(line) for line in (ROOT / "tests/embeddings/pairs.jsonl").read_text().splitlines()
         if line.strip()]
THRESHOLD = 0.9
# Decisions this close to the threshold may flip with int8 vectors.
MARGIN = 0.003


@pytest.fixture(scope="module")
def embedder():
    proc = subprocess.Popen([str(EMBED_PY), str(ROOT / "tests/embeddings/server.py"), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = ""
        while "listening on" not in line:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("the embeddings server did not start")
        yield "http://" + line.rsplit(" ", 1)[1].strip()
    finally:
        stop(proc)


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_semantic_decisions_on_the_labelled_set(embedder, tmp_path):
    mock = Mock()
    try:
        gw = Gateway({
            "providers": [
                {"name": "oai", "type": "openai", "base_url": f"{mock.url}/v1", "api_key": "sk-upstream"},
                {"name": "minilm", "type": "openai", "base_url": f"{embedder}/v1", "api_key": "unused"},
            ],
            "models": [
                {"name": "gpt", "targets": [{"provider": "oai", "model": "gpt-4o-mini"}],
                 "cache": {"mode": "semantic", "embeddings_model": "minilm", "similarity": THRESHOLD,
                           "embeddings_timeout_ms": 5000, "scope": "shared"}},
                {"name": "minilm", "targets": [{"provider": "minilm", "model": "all-MiniLM-L6-v2"}]},
            ],
        }, tmp_path / "gw")
    except Exception:
        mock.stop()
        raise
    try:
        with httpx.Client(timeout=30) as c:
            def ask(text, i):
                # Each pair its own group (max_tokens differs): pairs never meet.
                r = c.post(gw.url + "/v1/chat/completions", json={
                    "model": "gpt", "temperature": 0, "max_tokens": 100 + i,
                    "messages": [{"role": "user", "content": text}]})
                assert r.status_code == 200, r.text
                return r.headers["x-llm-gateway-cache"]

            def embed(text):
                r = c.post(embedder + "/v1/embeddings", json={"model": "m", "input": text})
                return r.json()["data"][0]["embedding"]

            rows, mismatches = [], []
            for i, p in enumerate(PAIRS):
                assert ask(p["a"], i) == "store"
                hit = ask(p["b"], i) == "hit"
                sim = cosine(embed(p["a"]), embed(p["b"]))
                rows.append({**p, "hit": hit, "cosine": round(sim, 4)})
                if abs(sim - THRESHOLD) > MARGIN and hit != (sim >= THRESHOLD):
                    mismatches.append((p["a"], p["b"], sim, hit))
    finally:
        gw.stop()
        mock.stop()
    assert not mismatches, mismatches

    def score(lang=None):
        sel = [r for r in rows if lang in (None, r["lang"])]
        tp = sum(r["hit"] and r["paraphrase"] for r in sel)
        fp = sum(r["hit"] and not r["paraphrase"] for r in sel)
        fn = sum(not r["hit"] and r["paraphrase"] for r in sel)
        return {"pairs": len(sel), "hits": tp + fp, "true_hits": tp, "wrong_hits": fp,
                "precision": round(tp / (tp + fp), 3) if tp + fp else None,
                "recall": round(tp / (tp + fn), 3) if tp + fn else None}

    report = {"threshold": THRESHOLD, "model": "all-MiniLM-L6-v2",
              "all": score(), "en": score("en"), "zh": score("zh"), "pairs": rows}
    out = ROOT / "target" / "semantic-cache-quality.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=1))
    print(json.dumps({k: report[k] for k in ("all", "en", "zh")}), file=sys.stderr)
    assert report["all"]["pairs"] >= 50
    assert report["en"]["true_hits"] > 0
