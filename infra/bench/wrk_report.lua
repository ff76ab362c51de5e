-- wrk script for infra/bench/http_load.py: sends the caller's headers on every request and
-- prints the figures as one JSON line (prefixed BENCH_JSON) for the benchmark to read.
-- The headers come from the environment so no token is ever written to a file or argv:
--   BENCH_AUTHORIZATION  -> Authorization
--   BENCH_DEVICE_ID      -> X-Device-Id

local authorization = os.getenv("BENCH_AUTHORIZATION")
local device_id = os.getenv("BENCH_DEVICE_ID")

wrk.method = "GET"
if authorization and authorization ~= "" then
  wrk.headers["Authorization"] = authorization
end
if device_id and device_id ~= "" then
  wrk.headers["X-Device-Id"] = device_id
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "durationUs": %d, "bytes": %d, "non2xx": %d, "connectErrors": %d, ' ..
    '"readErrors": %d, "writeErrors": %d, "timeouts": %d, "p50Us": %d, "p90Us": %d, "p99Us": %d, ' ..
    '"meanUs": %.1f, "maxUs": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
