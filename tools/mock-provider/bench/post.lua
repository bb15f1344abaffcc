-- wrk script: small non-streaming OpenAI chat completion over keep-alive.
-- Usage: wrk -t1 -c64 -d5s -s bench/post.lua http://127.0.0.1:18080
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
wrk.body = '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello in one short sentence."}]}'
