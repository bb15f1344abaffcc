// A minimal proxy-wasm host in Node.js (V8, like Envoy's runtime): drives the
// real filter .wasm through whole requests so its own Wasm code can be
// profiled by function, which Envoy's stripped binary does not allow.
// Headers, bodies, shared data and metrics live in JS maps; nothing here is
// Envoy's cost, so use it to find the filter's hot functions, and
// `make profile` to count what a request costs inside Envoy.
//
//   node bench/wasm-host.mjs <filter.wasm> <plugin-config.json> <model> \
//        [iterations] [streamed-response-file] [chunks]
//   node --cpu-prof --cpu-prof-dir target/prof bench/wasm-host.mjs …
//
// <plugin-config.json> is the filter's configuration (the `configuration`
// value of a rendered bootstrap). Without a response file the upstream
// answers with an OpenAI chat completion (profile passthrough models); a
// response file holds what a provider would send: its JSON answer, or the
// raw SSE of a stream (OpenAI, Anthropic or Gemini; a file starting with
// `data:` or `event:`, which also makes the request a streaming one), fed
// to the filter in [chunks] pieces. The last line printed is the count of
// host calls per request, which `make profile` reports.
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';

const [wasmPath, cfgPath, model, itersArg, respFile, chunksArg] = process.argv.slice(2);
const respText = respFile ? readFileSync(respFile) : null;
const stream = !!respText && /^(data:|event:)/.test(respText.subarray(0, 8).toString());
const nchunks = Number(chunksArg || 1);
const iters = Number(itersArg || 20000);
const pluginConfig = Buffer.from(readFileSync(cfgPath));
const enc = new TextEncoder(), dec = new TextDecoder();

let inst, mem;
const u8 = () => new Uint8Array(mem.buffer);
const dv = () => new DataView(mem.buffer);
const str = (p, n) => dec.decode(u8().subarray(p, p + n));
function give(bytes, retPtr, retSize) {
  const p = inst.exports.proxy_on_memory_allocate(bytes.length);
  u8().set(bytes, p);
  dv().setUint32(retPtr, p, true);
  dv().setUint32(retSize, bytes.length, true);
  return 0;
}
let clock = 1_700_000_000_000_000_000n;
const state = { maps: [new Map(), new Map(), new Map(), new Map()], bufs: [], shared: new Map(), metrics: [], hostcalls: 0 };
const OK = 0, NOT_FOUND = 1;
function serializeMap(m) {
  const entries = [...m.entries()];
  let size = 4 + entries.length * 8;
  const kv = entries.map(([k, v]) => [enc.encode(k), enc.encode(v)]);
  for (const [k, v] of kv) size += k.length + v.length + 2;
  const out = new Uint8Array(size), d = new DataView(out.buffer);
  d.setUint32(0, entries.length, true);
  let o = 4;
  for (const [k, v] of kv) { d.setUint32(o, k.length, true); d.setUint32(o + 4, v.length, true); o += 8; }
  for (const [k, v] of kv) { out.set(k, o); o += k.length + 1; out.set(v, o); o += v.length + 1; }
  return out;
}
const env = {
  proxy_log: (l, p, n) => { state.hostcalls++; if (l >= 3) console.error('wasm log', l, str(p, n)); return OK; },
  proxy_get_log_level: (ret) => { state.hostcalls++; dv().setUint32(ret, 2, true); return OK; },
  proxy_get_current_time_nanoseconds: (ret) => { state.hostcalls++; clock += 1000n; dv().setBigUint64(ret, clock, true); return OK; },
  proxy_get_header_map_pairs: (t, rp, rs) => { state.hostcalls++; return give(serializeMap(state.maps[t]), rp, rs); },
  proxy_get_header_map_value: (t, kp, kn, rp, rs) => { state.hostcalls++; const v = state.maps[t].get(str(kp, kn)); return v === undefined ? NOT_FOUND : give(enc.encode(v), rp, rs); },
  proxy_replace_header_map_value: (t, kp, kn, vp, vn) => { state.hostcalls++; state.maps[t].set(str(kp, kn), str(vp, vn)); return OK; },
  proxy_add_header_map_value: (t, kp, kn, vp, vn) => { state.hostcalls++; state.maps[t].set(str(kp, kn), str(vp, vn)); return OK; },
  proxy_remove_header_map_value: (t, kp, kn) => { state.hostcalls++; state.maps[t].delete(str(kp, kn)); return OK; },
  proxy_set_header_map_pairs: () => { state.hostcalls++; return OK; },
  proxy_get_buffer_bytes: (t, start, max, rp, rs) => {
    state.hostcalls++;
    const b = t === 7 ? pluginConfig : state.bufs[t];
    if (!b) return NOT_FOUND;
    return give(b.subarray(start, start + max), rp, rs);
  },
  proxy_set_buffer_bytes: (t, start, size, dp, dn) => { state.hostcalls++; state.bufs[t] = Buffer.from(u8().slice(dp, dp + dn)); return OK; },
  proxy_get_property: () => { state.hostcalls++; return NOT_FOUND; },
  proxy_set_property: () => { state.hostcalls++; return OK; },
  proxy_get_shared_data: (kp, kn, rp, rs, rc) => {
    state.hostcalls++;
    const e = state.shared.get(str(kp, kn));
    if (!e) return NOT_FOUND;
    give(e.v, rp, rs); dv().setUint32(rc, e.cas, true); return OK;
  },
  proxy_set_shared_data: (kp, kn, vp, vn, cas) => {
    state.hostcalls++;
    const k = str(kp, kn), e = state.shared.get(k);
    if (e && cas !== 0 && cas !== e.cas) return 8; // CasMismatch
    state.shared.set(k, { v: u8().slice(vp, vp + vn), cas: (e ? e.cas : 0) + 1 }); return OK;
  },
  proxy_define_metric: (t, p, n, ret) => { state.hostcalls++; state.metrics.push(0n); dv().setUint32(ret, state.metrics.length, true); return OK; },
  proxy_increment_metric: (id, off) => { state.hostcalls++; state.metrics[id - 1] += off; return OK; },
  proxy_record_metric: (id, v) => { state.hostcalls++; state.metrics[id - 1] = v; return OK; },
  proxy_send_local_response: (status) => { state.hostcalls++; console.error('local response', status); return OK; },
  proxy_set_effective_context: () => OK,
  proxy_continue_stream: () => OK, proxy_close_stream: () => OK, proxy_done: () => OK, proxy_get_status: () => OK,
  proxy_set_tick_period_milliseconds: () => OK, proxy_http_call: () => 1, proxy_call_foreign_function: () => 1,
  proxy_grpc_call: () => 1, proxy_grpc_stream: () => 1, proxy_grpc_send: () => 1, proxy_grpc_cancel: () => 1, proxy_grpc_close: () => 1,
  proxy_register_shared_queue: () => 1, proxy_resolve_shared_queue: () => 1, proxy_enqueue_shared_queue: () => 1, proxy_dequeue_shared_queue: () => 1,
};
const wasi = new WASI({ version: 'preview1', args: [], env: {}, returnOnExit: true });
const module = new WebAssembly.Module(readFileSync(wasmPath));
inst = new WebAssembly.Instance(module, { env, wasi_snapshot_preview1: wasi.wasiImport });
mem = inst.exports.memory;
wasi.initialize({ exports: { memory: mem, _initialize: inst.exports._initialize } });
const X = inst.exports;
X.proxy_on_context_create(1, 0);
X.proxy_on_vm_start(1, 0);
if (!X.proxy_on_configure(1, pluginConfig.length)) throw new Error('configure failed');

const body = Buffer.from(JSON.stringify({ model, ...(stream ? { stream: true } : {}), messages: [{ role: 'system', content: 'You are a helpful assistant.' }, { role: 'user', content: 'Say hello in one short sentence.' }] }));
const respBody = respText ?? Buffer.from('{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":21,"completion_tokens":9,"total_tokens":30}}');
function one(ctx) {
  state.maps[0] = new Map([[':method', 'POST'], [':path', '/v1/chat/completions'], [':authority', '127.0.0.1:10000'], [':scheme', 'http'],
    ['content-type', 'application/json'], ['content-length', String(body.length)], ['user-agent', 'wrk'], ['authorization', 'Bearer sk-up'],
    ['x-forwarded-proto', 'http'], ['x-request-id', 'abc-123']]);
  state.bufs[0] = body;
  X.proxy_on_context_create(ctx, 1);
  X.proxy_on_request_headers(ctx, state.maps[0].size, 0);
  X.proxy_on_request_body(ctx, body.length, 1);
  state.maps[2] = stream ? new Map([[':status', '200'], ['content-type', 'text/event-stream']]) : new Map([[':status', '200'], ['content-type', 'application/json'], ['content-length', String(respBody.length)]]);
  X.proxy_on_response_headers(ctx, 3, 0);
  const step = Math.ceil(respBody.length / nchunks);
  for (let o = 0; o < respBody.length; o += step) {
    state.bufs[1] = respBody.subarray(o, Math.min(o + step, respBody.length));
    X.proxy_on_response_body(ctx, state.bufs[1].length, o + step >= respBody.length ? 1 : 0);
  }
  X.proxy_on_log(ctx);
  X.proxy_on_done(ctx);
  X.proxy_on_delete(ctx);
}
for (let i = 0; i < 2000; i++) one(2 + i);
state.hostcalls = 0;
const t0 = process.hrtime.bigint();
for (let i = 0; i < iters; i++) one(10000 + i);
const ns = Number(process.hrtime.bigint() - t0) / iters;
console.log(`${(ns / 1000).toFixed(2)} µs/request in node (JS host included), ${(state.hostcalls / iters).toFixed(1)} hostcalls/request; upstream path ${state.maps[0].get(':path')} cluster ${state.maps[0].get('x-llm-gateway-cluster')}`);
