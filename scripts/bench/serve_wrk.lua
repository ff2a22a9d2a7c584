-- wrk script of the serving benchmark (scripts/bench/serve_bench.sh): POSTs the request
-- bodies of the file $KILN_BENCH_BODIES (one JSON body per line) to the URL's path, in
-- turn, and prints the results as one JSON line starting with "RESULT " when done.
local bodies = {}
local i = 0

function init(args)
  for line in io.lines(os.getenv("KILN_BENCH_BODIES")) do
    if #line > 0 then
      bodies[#bodies + 1] = line
    end
  end
  assert(#bodies > 0, "no request bodies in $KILN_BENCH_BODIES")
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  i = i % #bodies + 1
  return wrk.format("POST", nil, nil, bodies[i])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
