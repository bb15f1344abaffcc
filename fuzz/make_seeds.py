#!/usr/bin/env python3
"""Writes the fuzz targets' seed inputs into fuzz/seeds/<target>/.

Sources: the repository's provider fixtures (tests/fixtures/**), the
configs (config/*.yaml, plugin part only, as the renderer splits it), JSON
configs and model_map entries written in src/ tests, and a few hand-made
edge cases. Run from anywhere: `python3 fuzz/make_seeds.py` (needs PyYAML).
The output is deterministic; the seeds are committed.

Input layouts (see each check's module doc in fuzz/src/):
  sse_framer, stream_*, pass_stream: [flags, seed, body...]
  responses_decode:                [status - 400, body...]
  request_*, model_splice, config:   the body as is
  model_map: a line-based text format (fuzz/src/model_map.rs)
  guard_stream:                      [actions, seed, text...]
  eventstream:                       [seed, AWS event-stream bytes...]
"""

import json
import re
import shutil
import struct
import zlib
from pathlib import Path

import yaml

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
FIX = ROOT / "tests" / "fixtures"
SEEDS = FUZZ / "seeds"
SECRET = "sk-fuzz-secret"

# Sections of gateway.yaml the filter reads (tools/render/src/gateway_file.rs
# PLUGIN_SECTIONS); listener, admin and envoy go to the renderer.
PLUGIN_SECTIONS = {
    "providers", "log_fields", "models", "limits", "pricing", "consumers", "auth",
    "metrics", "health", "failover", "rate_limits", "model_map", "routing_rules",
}

out = {}


def seed(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-")
    files = out.setdefault(target, {})
    assert name not in files, (target, name)
    files[name] = data


def load(path):
    return json.loads(path.read_text())


def compact(v):
    # serde_json's to_string: no spaces, UTF-8 kept.
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def raw_strings(path):
    """Rust raw string literals r#"..."# in a source file."""
    return re.findall(r'r#"(.*?)"#', path.read_text(), flags=re.S)


# -- SSE streams ---------------------------------------------------------

anthropic_sse = {p.name: p.read_bytes() for p in sorted((FIX / "anthropic").glob("*.sse"))}
anthropic_streams = load(FIX / "anthropic" / "streams.json")
gemini_streams = load(FIX / "gemini" / "streams.json")


def gemini_body(case):
    body = ""
    for ev in case["events"]:
        data = ev if isinstance(ev, str) else compact(ev)
        body += "data: " + data + "\r\n\r\n"
    return (body + case.get("tail", "")).encode()


for i, case in enumerate(anthropic_streams):
    flags = 1 if case["include_usage"] else 0
    body = anthropic_sse[case["sse"]]
    seed("stream_anthropic", f"{case['name']}", bytes([flags, 17 * i + 3]) + body)
for name, body in anthropic_sse.items():
    seed("stream_anthropic", f"file-{name}", bytes([1, 200]) + body)
    seed("sse_framer", f"anthropic-{name}", bytes([0, 91]) + body)

for i, case in enumerate(gemini_streams):
    flags = 1 if case["include_usage"] else 0
    body = gemini_body(case)
    seed("stream_gemini", case["name"], bytes([flags, 13 * i + 5]) + body)
    seed("sse_framer", f"gemini-{case['name']}", bytes([0, 40 + i]) + body)

openai_streams = load(FIX / "openai_chat" / "streams.json")


def openai_body(case):
    # As src/wire/openai/egress/tests.rs `stream_body` assembles a case.
    sep = case.get("separator", "\n\n")
    body = case.get("prefix", "")
    for ev in case["events"]:
        body += "data: " + (ev if isinstance(ev, str) else compact(ev)) + sep
    return (body + case.get("tail", "")).encode()


for i, case in enumerate(openai_streams):
    body = openai_body(case)
    seed("stream_openai", case["name"], bytes([i % 2, (19 * i + 2) % 256]) + body)
# The OpenAI-shaped output of the other fixtures is a provider stream too.
for i, case in enumerate(anthropic_streams):
    frames = "".join(
        "data: " + (f if isinstance(f, str) else compact(f)) + "\n\n" for f in case["openai"]
    )
    seed("stream_openai", f"anthropic-fixture-output-{case['name']}", bytes([1, (23 * i + 1) % 256]) + frames.encode())
for name, body in {
    "interleaved-tool-calls": b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"f","arguments":"{"}}]}}]}\n\n'
    + b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"g","arguments":"{}"}}]}}]}\n\n'
    + b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]}}]}\n\n'
    + b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}\n\ndata: [DONE]\n\n',
    "text-after-finish-and-usage": b'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n'
    + b'data: {"choices":[{"index":0,"delta":{"content":"b"}}]}\n\ndata: [DONE]\n\n',
    "reasoning-text-tool": b'data: {"choices":[{"index":0,"delta":{"reasoning_content":"think"}}]}\n\n'
    + b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
    + b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"x","function":{"name":"f","arguments":"{}"}}]}}]}\n\n'
    + b'data: {"choices":[{"index":0,"delta":{"content":"after"},"finish_reason":"length"}]}\n\n',
    "invalid-utf8-after-done": b'data: {"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":"stop"}],"usage":{"prompt_tokens":2,"completion_tokens":1}}\n\ndata: [DONE]\n\ndata: \xff\n\n',
}.items():
    seed("stream_openai", name, bytes([1, 61]) + body)

SSE_EDGES = {
    "crlf-cr-lf": b"data: a\r\ndata: b\n\r\ndata: c\r\n\rdata: d\n\r\r\n\n",
    "lone-cr": b"data: a\r\rdata: b\rdata: c\r\r\revent: e\rdata: d\r\r",
    "bom": "\ufeffdata: bom\n\n\ufeffdata: not-a-field\n\ndata: end\n\n".encode(),
    "fields": b"data\n\ndata\ndata\n\nevent: x\nevent\ndata: y\n\nretry: 1000\nfoo: bar\nDATA: no\ndata : no\ndata: kept\n\n",
    "ids": b"id: 42\ndata: x\n\nid: 4\x003\ndata: y\n\ndata: z\nid: 7\nid: 8\x00\n\nid:\ndata: v\n\n",
    "comments": b": ping\n\nevent: a\n: mid\ndata: {\"x\":1}\n\n: bye",
    "utf8": "event: 事件\ndata: 你好\ndata: 🚀\n\ndata: é😀\n\n".encode(),
    "invalid-utf8": b"data: ok\n\ndata: \xf0\x9f\n\ndata: \xc3",
    "no-final-blank": b"data: one\n\ndata: last",
    "final-cr": b"event: done\ndata: z\r",
    "long-line": b"data: " + b"x" * 400 + b"\n\n" + b"data: " + b"y" * 40,
}
for i, (name, body) in enumerate(SSE_EDGES.items()):
    for flags in (0, 1, 2, 3):
        seed("sse_framer", f"{name}-cap{flags}", bytes([flags, 7 * i + 1]) + body)

# OpenAI streams and bodies for the usage tap: the fixtures' expected output.
for i, case in enumerate(anthropic_streams):
    frames = "".join(
        "data: " + (f if isinstance(f, str) else compact(f)) + "\n\n" for f in case["openai"]
    )
    seed("pass_stream", f"stream-{case['name']}", bytes([1, 11 * i]) + frames.encode())
seed(
    "pass_stream",
    "stream-deepseek-cache",
    bytes([1, 77])
    + b'data: {"choices":[{"delta":{"content":"hi"}}],"usage":null}\n\n'
    + b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,"prompt_cache_hit_tokens":1}}\n\n'
    + b"data: [DONE]\n\n",
)
for i, case in enumerate(load(FIX / "anthropic" / "responses.json")):
    if "openai" in case:
        seed("pass_stream", f"body-{case['name']}", bytes([1, 5 * i]) + compact(case["openai"]).encode())
    if "anthropic" in case:
        seed("pass_stream", f"body-anthropic-{case['name']}", bytes([1, 3 * i]) + compact(case["anthropic"]).encode())
for name, body in anthropic_sse.items():
    seed("pass_stream", f"stream-anthropic-{name}", bytes([0, 31]) + body)
for i, case in enumerate(openai_streams):
    seed("pass_stream", f"stream-openai-{case['name']}", bytes([0, (7 * i + 4) % 256]) + openai_body(case))
for i, case in enumerate(load(FIX / "openai_chat" / "responses.json")):
    if "body" in case:
        seed("pass_stream", f"body-openai-{case['name']}", bytes([1, 9 * i % 256]) + compact(case["body"]).encode())
sdk_samples = load(FIX / "responses" / "sdk_samples.json")
for i, case in enumerate(sdk_samples["streams"]):
    seed("pass_stream", f"stream-responses-{case['name']}", bytes([0, 13 * i + 6]) + case["sse"].encode())
for i, case in enumerate(sdk_samples["responses"]):
    seed("pass_stream", f"body-responses-{case['name']}", bytes([1, 17 * i]) + compact(case["response"]).encode())
seed(
    "pass_stream",
    "body-details",
    bytes([0, 9])
    + b'{"id":"x","usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10,'
    + b'"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":1}}}',
)

# -- requests --------------------------------------------------------------

seen = set()
for provider in ("anthropic", "gemini"):
    for case in load(FIX / provider / "requests.json"):
        body = dict(case["openai"])
        if "model" in case:
            body["model"] = case["model"]
        data = json.dumps(body, ensure_ascii=False)
        if data in seen:
            continue
        seen.add(data)
        seed("request_openai", f"{provider}-{case['name']}", data)
        seed("model_splice", f"{provider}-{case['name']}", data)
for case in load(FIX / "openai_chat" / "requests.json"):
    if "openai_in" not in case:
        continue  # a hub-only case
    data = json.dumps(case["openai_in"], ensure_ascii=False)
    if data in seen:
        continue
    seen.add(data)
    seed("request_openai", f"openai-chat-{case['name']}", data)
for case in load(FIX / "anthropic_ingress" / "requests.json"):
    data = json.dumps(case["anthropic"], ensure_ascii=False)
    seed("request_anthropic", case["name"], data)
    seed("model_splice", f"anthropic-ingress-{case['name']}", data)
for name, body in {
    "count-tokens": {"model": "claude-x", "system": "Be brief.", "messages": [{"role": "user", "content": "How many tokens?"}],
                     "tools": [{"name": "f", "input_schema": {"type": "object"}}]},
    "stream-tools-thinking": {"model": "claude-x", "max_tokens": 2048, "stream": True,
                              "thinking": {"type": "enabled", "budget_tokens": 1024},
                              "tools": [{"name": "get_weather", "description": "w", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                              "messages": [{"role": "user", "content": [{"type": "text", "text": "Paris?"}]}]},
    "big-numbers": {"model": "m", "max_tokens": 4294967296, "top_k": 1e300, "temperature": 1.0,
                    "messages": [{"role": "user", "content": "x"}]},
}.items():
    seed("request_anthropic", name, json.dumps(body, ensure_ascii=False))
for case in load(FIX / "responses" / "requests.json"):
    data = json.dumps(case["responses"], ensure_ascii=False)
    seed("request_responses", case["name"], data)
    seed("model_splice", f"responses-{case['name']}", data)
for name, body in {
    "everything": {"model": "gpt-4.1", "instructions": "Be brief.", "stream": True, "store": False,
                   "max_output_tokens": 16, "temperature": 2, "top_p": 0, "parallel_tool_calls": False,
                   "reasoning": {"effort": "xhigh", "summary": "auto"}, "text": {"format": {"type": "json_schema", "name": "r", "schema": {"type": "object"}, "strict": True}},
                   "tool_choice": {"type": "function", "name": "f"}, "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
                   "input": [{"role": "developer", "content": "d"}, {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"},
                             {"type": "input_image", "image_url": "data:image/png;base64,QUJD", "detail": "low"},
                             {"type": "input_file", "file_data": "data:application/pdf;base64,QUJD", "filename": "a.pdf"}]},
                             {"type": "reasoning", "summary": []}, {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                             {"type": "function_call_output", "call_id": "c", "output": [{"type": "input_text", "text": "ok"}]}]},
    "max-output-tokens-2-32": {"model": "m", "input": "x", "max_output_tokens": 4294967296},
}.items():
    seed("request_responses", name, json.dumps(body, ensure_ascii=False))
for name, body in {
    "embeddings-strings": {"model": "gemini-embedding-001", "input": ["a", "b"], "dimensions": 8, "task_type": "RETRIEVAL_QUERY"},
    "embeddings-string": {"model": "e", "input": "one", "encoding_format": "base64"},
    "embeddings-tokens": {"model": "e", "input": [1, 2, 3]},
}.items():
    seed("request_openai", name, json.dumps(body))
SPLICE_EDGES = {
    "nested-model": r'  {  "messages" : [ {"model":"inner","content":"\"model\":\"x\""} ] ,  "model"  :  "m" , "n": -1.5e3 }  ',
    "deep": r'{"a":{"model":"deep","b":[1,[2,{"model":3}]]},"model":"m","t":true,"f":null}',
    "escapes": '{"x":"\\\\","model":"\u00e9\\u00e9","y":["]","}"]}',
    "escaped-key": r'{"mod\u0065l":"a","model":"b"}',
    "duplicate": r'{"model":"a","model":"b"}',
    "absent": r'{"messages":[]}',
    "array": r'["model"]',
    "truncated": r'{"model":"m"',
    "number-model": '{"model":12.5e-3,"stream":true}',
}
for name, body in SPLICE_EDGES.items():
    seed("model_splice", name, body)

# -- responses and errors ------------------------------------------------------

for provider, key in (("anthropic", "anthropic"), ("gemini", "gemini")):
    for case in load(FIX / provider / "responses.json"):
        body = case["raw"] if "raw" in case else compact(case[key])
        seed("responses_decode", f"{provider}-response-{case['name']}", bytes([100]) + body.encode())
    for case in load(FIX / provider / "errors.json"):
        body = case["body"]
        body = body if isinstance(body, str) else compact(body)
        status = case["status"] - 400
        if 0 <= status < 200:
            seed("responses_decode", f"{provider}-error-{case['name']}", bytes([status]) + body.encode())
for case in load(FIX / "openai_chat" / "responses.json"):
    body = case["raw"] if "raw" in case else compact(case["body"])
    seed("responses_decode", f"openai-response-{case['name']}", bytes([100]) + body.encode())
for case in load(FIX / "openai_chat" / "errors.json"):
    body = case["body"]
    body = body if isinstance(body, str) else compact(body)
    status = case["status"] - 400
    if 0 <= status < 200:
        seed("responses_decode", f"openai-error-{case['name']}", bytes([status]) + body.encode())
for name, (status, body) in {
    # Errors as the gateway renders them for its clients (a failover
    # attempt's error, read back by Wire::decode_error).
    "rendered-anthropic-overloaded": (529, {"type": "error", "error": {"type": "overloaded_error", "message": f"Overloaded {SECRET}"}}),
    "rendered-anthropic-billing": (402, {"type": "error", "error": {"type": "billing_error", "message": "no credit"}}),
    "rendered-responses": (429, {"error": {"message": "slow down", "type": "rate_limit_error", "param": SECRET, "code": "rate_limit_exceeded"}}),
    "openai-embeddings": (500, {"object": "list", "data": [{"object": "embedding", "index": 1, "embedding": [0.5]}, {"object": "embedding", "index": 0, "embedding": "AAAAPw=="}], "model": "e", "usage": {"prompt_tokens": 2, "total_tokens": 2}}),
    "anthropic-tool-args-not-object": (500, {"choices": [{"message": {"tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}, "finish_reason": "tool_calls"}]}),
    "gemini-embeddings": (500, {"embeddings": [{"values": [0.1, -0.2, 3]}, {"values": [1e-3, 0]}]}),
    "gemini-embeddings-usage": (500, {"embeddings": [{"values": [1]}], "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7}}),
    "gemini-embeddings-stats": (500, {"embeddings": [{"values": [1], "statistics": {"tokenCount": 3.0}}, {"values": [2], "statistics": {"tokenCount": 4}}]}),
    "openai-error-secret": (401, {"error": {"message": f"Incorrect API key provided: {SECRET}", "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}),
    "error-string": (500, {"error": "model crashed"}),
    "message-only": (400, {"message": "bad thing", "code": 1214}),
    "google-style": (403, {"error": {"code": 403, "message": "denied", "status": "PERMISSION_DENIED"}}),
}.items():
    seed("responses_decode", name, bytes([status - 400]) + compact(body).encode())
seed("responses_decode", "text-no-healthy-upstream", bytes([103]) + b"no healthy upstream")
seed("responses_decode", "text-secret", bytes([102]) + f"upstream said {SECRET}".encode())

# -- configs -------------------------------------------------------------------

for path in sorted((ROOT / "config").glob("*.yaml")):
    doc = yaml.safe_load(path.read_text())
    plugin = {k: v for k, v in doc.items() if k in PLUGIN_SECTIONS}
    seed("config", f"yaml-{path.stem}", json.dumps(plugin, indent=1, ensure_ascii=False))
n = 0
for path in sorted((ROOT / "src").rglob("*.rs")):
    for text in raw_strings(path):
        try:
            v = json.loads(text)
        except ValueError:
            continue
        if isinstance(v, dict) and "providers" in v:
            n += 1
            seed("config", f"src-{path.stem}-{n}", text.strip())

# -- model_map -----------------------------------------------------------------


def map_lines(entries):
    lines = []
    for e in entries:
        to = e.get("to", "")
        kinds = [k for k in ("alias", "prefix", "regex") if k in e]
        if len(kinds) != 1:
            lines.append("\t".join(["x", e.get("alias", ""), e.get("prefix", ""), to]))
            continue
        fields = [kinds[0][0], e[kinds[0]], to]
        if "model" in e:
            fields.append(e["model"])
        lines.append("\t".join(fields))
    return lines


mapping_rs = ROOT / "src" / "route_select" / "mapping.rs"
resolved = sorted(set(re.findall(r'\.resolve\("((?:[^"\\]|\\.)*)"\)', mapping_rs.read_text())))
n = 0
for text in raw_strings(mapping_rs):
    try:
        entries = json.loads(text)
    except ValueError:
        continue
    if not (isinstance(entries, list) and entries and all(isinstance(e, dict) for e in entries)):
        continue
    n += 1
    lines = map_lines(entries)
    lines += ["=" + m for m in sorted({e.get("to", "") for e in entries})]
    lines += ["?" + r for r in resolved]
    seed("model_map", f"mapping-rs-{n}", "\n".join(lines) + "\n")
seed(
    "model_map",
    "docs-example",
    "\n".join([
        "a\tgpt4\tpool",
        "p\tclaude-\talt",
        "p\topenai/\tm\t$1",
        "r\t^qwen-(\\w+)$\tpool\tqwen-$1",
        "r\t^(?P<family>llama)-(?<size>\\d+)b$\talt\t${family}3:${size}B-$$-${1}x",
        "?claude-sonnet-4-5",
        "?openai/gpt-4o",
        "?qwen-max",
        "?llama-70b",
    ]) + "\n",
)

# -- guard_stream: [actions, seed, text] ------------------------------------------

GUARD_TEXTS = [
    "你好，这是机密文件，不能外传。Call 13812345678 or mail li.lei@example.com.",
    "ＡＢＣＤ abcd bcd — the secret sauce is sauce. 敏感词词",
    "身份证11010519491231002X，卡号4111111111111111，IP 192.168.1.20。",
    "機密文件 and 内部代号 X; refund abc",
    "",
]
for i, text in enumerate(GUARD_TEXTS):
    for actions in (0, 0b010101, 0b101010, 0b100100):
        seed("guard_stream", f"text{i}-actions{actions}",
             bytes([actions, (i * 37 + actions) % 256]) + text.encode())

# -- eventstream: Bedrock-style streams in AWS's binary framing ---------------------


def es_header(name, tag, value=b""):
    n = name.encode()
    return bytes([len(n)]) + n + bytes([tag]) + value


def es_string(name, text):
    v = text.encode()
    return es_header(name, 7, struct.pack(">H", len(v)) + v)


def es_message(headers, payload):
    h = b"".join(headers)
    prelude = struct.pack(">II", 16 + len(h) + len(payload), len(h))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + h + payload
    return body + struct.pack(">I", zlib.crc32(body))


def es_event(kind, obj):
    return es_message([es_string(":event-type", kind), es_string(":content-type", "application/json"),
                       es_string(":message-type", "event")], json.dumps(obj).encode())


BEDROCK = [
    es_event("messageStart", {"role": "assistant"}),
    es_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Hello 你好"}}),
    es_event("contentBlockStop", {"contentBlockIndex": 0}),
    es_event("messageStop", {"stopReason": "end_turn"}),
    es_event("metadata", {"usage": {"inputTokens": 3, "outputTokens": 8, "totalTokens": 11},
                          "metrics": {"latencyMs": 120}}),
]
EXCEPTION = es_message([es_string(":exception-type", "throttlingException"),
                        es_string(":content-type", "application/json"),
                        es_string(":message-type", "exception")],
                       b'{"message":"Too many requests, please wait before trying again."}')
EVERY_TYPE = es_message([es_header("t", 0), es_header("f", 1), es_header("b", 2, b"\xf9"),
                         es_header("s", 3, struct.pack(">h", -300)), es_header("i", 4, struct.pack(">i", 70000)),
                         es_header("l", 5, struct.pack(">q", -5)), es_header("y", 6, b"\x00\x03abc"),
                         es_header("ts", 8, struct.pack(">q", 1700000000000)), es_header("u", 9, bytes(16))],
                        b"{}")
ES_CASES = {
    "bedrock-text": b"".join(BEDROCK),
    "exception": BEDROCK[0] + EXCEPTION,
    "every-header-type": EVERY_TYPE,
    "empty-message": es_message([], b""),
    "truncated": b"".join(BEDROCK)[:-7],
    "bad-crc": b"".join(BEDROCK)[:-1] + b"\x00",
}
for i, (name, body) in enumerate(ES_CASES.items()):
    seed("eventstream", name, bytes([i * 53 % 256]) + body)

# -- stream_bedrock: ConverseStream bodies, [flags, seed, body...] ------------------

TOOL_STREAM = [
    es_event("messageStart", {"role": "assistant", "p": "abcd"}),
    es_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
    es_event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"reasoningContent": {"signature": "c2ln"}}}),
    es_event("contentBlockStop", {"contentBlockIndex": 0}),
    es_event("contentBlockStart", {"contentBlockIndex": 1,
                                   "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "weather"}}}),
    es_event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
    es_event("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Paris\"}"}}}),
    es_event("contentBlockStop", {"contentBlockIndex": 1}),
    es_event("messageStop", {"stopReason": "tool_use"}),
    es_event("metadata", {"usage": {"inputTokens": 9, "outputTokens": 4, "totalTokens": 13,
                                    "cacheReadInputTokens": 2}}),
]
BEDROCK_STREAMS = {
    "text": b"".join(BEDROCK),
    "reasoning-and-tool": b"".join(TOOL_STREAM),
    "exception-mid-stream": b"".join(BEDROCK[:2]) + EXCEPTION,
    "no-message-stop": b"".join(BEDROCK[:3]),
    "max-tokens": b"".join(BEDROCK[:3]) + es_event("messageStop", {"stopReason": "max_tokens"}),
    "orphan-tool-delta": es_event("contentBlockDelta", {"contentBlockIndex": 4,
                                                         "delta": {"toolUse": {"input": "{}"}}}),
    "bad-crc": b"".join(BEDROCK)[:-1] + b"\x00",
}
for i, (name, body) in enumerate(BEDROCK_STREAMS.items()):
    seed("stream_bedrock", name, bytes([i % 2, i * 29 % 256]) + body)

# -- stream_ernie: ERNIE v1 SSE streams, [flags, seed, body...] --------------------


def ernie_chunk(i, result, end=False, **extra):
    obj = {"id": "as-1", "object": "chat.completion", "created": 1700000000, "sentence_id": i,
           "is_end": end, "is_truncated": False, "result": result, "need_clear_history": False,
           "finish_reason": "normal", **extra}
    if end:
        obj["usage"] = {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10}
    return "data: " + json.dumps(obj, ensure_ascii=False) + "\n\n"


ERNIE_STREAMS = {
    "text": ernie_chunk(0, "你好，") + ernie_chunk(1, "世界", end=True),
    "length": ernie_chunk(0, "长") + ernie_chunk(1, "文", end=True, finish_reason="length"),
    "function-call": ernie_chunk(0, "", end=True, finish_reason="function_call",
                                 function_call={"name": "weather", "thoughts": "t",
                                                "arguments": "{\"city\":\"北京\"}"}),
    "error-mid-stream": ernie_chunk(0, "部分") + 'data: {"error_code":336100,"error_msg":"internal error"}\n\n',
    "no-is-end": ernie_chunk(0, "x"),
    "token-expired": 'data: {"error_code":111,"error_msg":"Access token expired"}\n\n',
}
for i, (name, body) in enumerate(ERNIE_STREAMS.items()):
    seed("stream_ernie", name, bytes([i % 2, i * 31 % 256]) + body.encode())

# -- write -------------------------------------------------------------------------

if SEEDS.exists():
    shutil.rmtree(SEEDS)
total = 0
for target, files in sorted(out.items()):
    d = SEEDS / target
    d.mkdir(parents=True)
    for name, data in files.items():
        (d / name).write_bytes(data)
        total += len(data)
    print(f"{target}: {len(files)} seeds")
print(f"{sum(len(f) for f in out.values())} seeds, {total} bytes in {SEEDS.relative_to(ROOT)}")
