-- One wrk script for every operation of `make bench`, configured by environment variables:
--   BENCH_METHOD        GET or POST
--   BENCH_PATH          the request path (with its query string)
--   BENCH_BODY          the body; "{value}" is replaced by the next value of BENCH_VALUES
--   BENCH_VALUES        a file of values, one a line; each is sent once and never reused
--   BENCH_HEADERS       headers, "Name: value" separated by "\n"
-- When the values run out, the request is sent with the value "exhausted" (the server answers
-- 4xx, which wrk counts as an error) and counted in "exhausted": a run never silently reuses a
-- value. `done` prints one line "BENCH_JSON {...}" with the throughput, the latency percentiles
-- (microseconds) and the errors.

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("id", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local body_template = os.getenv("BENCH_BODY")
local values_file = os.getenv("BENCH_VALUES")
local header_text = os.getenv("BENCH_HEADERS") or ""

local headers = {}
for line in string.gmatch(header_text, "[^\n]+") do
  local name, value = string.match(line, "^([^:]+):%s*(.*)$")
  if name then headers[name] = value end
end

local has_header_value = string.find(header_text, "{value}", 1, true) ~= nil

local values = nil
local next_index = 1
exhausted = 0
local fixed_request = nil

function init(args)
  -- `id` and the thread count are set by setup(); each thread takes every n-th line.
  local step = tonumber(os.getenv("BENCH_THREADS") or "1")
  if values_file and values_file ~= "" then
    values = {}
    local n = 0
    for line in io.lines(values_file) do
      if line ~= "" then
        if n % step == id then table.insert(values, line) end
        n = n + 1
      end
    end
  elseif body_template == nil or body_template == "" then
    fixed_request = wrk.format(method, path, headers, nil)
  else
    fixed_request = wrk.format(method, path, headers, body_template)
  end
end

function request()
  if fixed_request then return fixed_request end
  local value = values[next_index]
  if value == nil then
    exhausted = exhausted + 1
    value = "exhausted"
  else
    next_index = next_index + 1
  end
  local body = nil
  local target = path
  if body_template and body_template ~= "" then
    body = string.gsub(body_template, "{value}", value)
  else
    target = string.gsub(path, "{value}", value)
  end
  local sent = headers
  if has_header_value then
    -- A header carries the value (a DPoP proof): this request's copy of the headers.
    sent = {}
    for name, header in pairs(headers) do sent[name] = string.gsub(header, "{value}", value) end
  end
  return wrk.format(method, target, sent, body)
end

function done(summary, latency, requests)
  local total_exhausted = 0
  for _, thread in ipairs(threads) do
    total_exhausted = total_exhausted + (thread:get("exhausted") or 0)
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "max_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, '
      .. '"status": %d, "timeout": %d}, "exhausted": %d}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, total_exhausted))
end
