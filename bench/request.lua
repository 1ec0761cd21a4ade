-- wrk script: POST one prepared request body; print rps and latency percentiles as JSON.
-- The body comes from the file BENCH_BODY, its content type from BENCH_CONTENT_TYPE, and one optional
-- extra header from BENCH_HEADER_NAME / BENCH_HEADER_VALUE (the v2 protocol's binary header length).
local handle = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = handle:read("*a")
handle:close()
wrk.method = "POST"
local content_type = os.getenv("BENCH_CONTENT_TYPE")
if content_type and content_type ~= "" then wrk.headers["Content-Type"] = content_type end
local header_name = os.getenv("BENCH_HEADER_NAME")
if header_name and header_name ~= "" then wrk.headers[header_name] = os.getenv("BENCH_HEADER_VALUE") end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    'RESULT {"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.2f, "p95_ms": %.2f, "p99_ms": %.2f, "errors": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000, errors))
end
