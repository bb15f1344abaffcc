-- wrk script for bench/run.py: OpenAI chat completions over keep-alive, the
-- same small request for every system under test. Driven by environment
-- variables so one script serves every scenario:
--
--   BENCH_PATH     request path (default /v1/chat/completions)
--   BENCH_MODEL    the "model" field (default gpt-4o-mini)
--   BENCH_STREAM   "1" adds "stream": true
--   BENCH_HEADERS  extra headers, "name: value" pairs separated by "\n"
--   BENCH_BODY     the whole request body (overrides BENCH_MODEL/BENCH_STREAM;
--                  used for the mock's native Anthropic/Gemini endpoints)
--   BENCH_MIX      comma-separated models: rotate over them, alternating
--                  streamed and non-streamed requests (memory soak)
--   BENCH_OUT      file to write the JSON summary to (default: stdout)
--
-- Example: BENCH_MODEL=gpt-4o-mini BENCH_STREAM=1 \
--   BENCH_HEADERS=$'authorization: Bearer sk-bench\nx-mock-chunk-chars: 2' \
--   wrk -t1 -c32 -d10s -s bench/chat.lua http://127.0.0.1:18080

local SYSTEM = "You are a helpful assistant."
local USER = "Say hello in one short sentence."

local function body_for(model, stream)
  local b = '{"model":"' .. model .. '","messages":[{"role":"system","content":"' .. SYSTEM
    .. '"},{"role":"user","content":"' .. USER .. '"}]'
  if stream then
    b = b .. ',"stream":true'
  end
  return b .. "}"
end

local path = os.getenv("BENCH_PATH") or "/v1/chat/completions"
local model = os.getenv("BENCH_MODEL") or "gpt-4o-mini"
local stream = os.getenv("BENCH_STREAM") == "1"
local out = os.getenv("BENCH_OUT")

wrk.method = "POST"
wrk.path = path
wrk.headers["Content-Type"] = "application/json"
for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
  local name, value = string.match(line, "^%s*([^:]+):%s*(.-)%s*$")
  if name then
    wrk.headers[name] = value
  end
end
wrk.body = os.getenv("BENCH_BODY") or body_for(model, stream)

local mix = os.getenv("BENCH_MIX")
if mix and mix ~= "" then
  local requests = {}
  local i = 0
  -- Built in init(): only then does wrk.headers carry the Host header.
  function init(args)
    for m in string.gmatch(mix, "[^,]+") do
      for _, s in ipairs({ false, true }) do
        requests[#requests + 1] = wrk.format("POST", path, nil, body_for(m, s))
      end
    end
  end
  function request()
    i = i % #requests + 1
    return requests[i]
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local pct = {}
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    pct[#pct + 1] = string.format('"%s":%d', tostring(p), latency:percentile(p))
  end
  local json = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,"percentiles":{%s}}}',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency.min, latency.max, table.concat(pct, ",")
  )
  if out then
    local f = assert(io.open(out, "w"))
    f:write(json, "\n")
    f:close()
  else
    io.write(json, "\n")
  end
end
