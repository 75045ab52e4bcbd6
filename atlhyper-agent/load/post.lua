-- wrk script: POST /metrics/node with a realistic snapshot, a different node and a newer
-- timestamp each time, so every request takes the agent's full ingest path (parse, validate,
-- replace the latest snapshot, append a ring point).
--   NODES=1000 wrk -t2 -c64 -d30s -s post.lua http://127.0.0.1:8082
-- template.lua is written by make_snapshot.py next to this file.

local parts
local counter = 0
local nodes = tonumber(os.getenv("NODES") or "1000")
local threads_total = 1
local id_seq = 0

function setup(thread)
  thread:set("thread_id", id_seq)
  id_seq = id_seq + 1
end

function init(args)
  -- thread_id is a global set by setup() through thread:set().
  thread_id = thread_id or 0
  local dir = os.getenv("LOAD_DIR") or "."
  parts = dofile(dir .. "/template.lua")
  threads_total = tonumber(os.getenv("THREADS") or "2")
  wrk.method = "POST"
  wrk.path = "/metrics/node"
  wrk.headers["Content-Type"] = "application/json"
end

-- A day ago: recent, so the agent keeps the timestamps (one older than 30 days, or more than
-- 5 min ahead, is replaced by the receive time, and the snapshot re-encoded).
local base = os.time() - 86400

function request()
  -- Each thread owns the nodes congruent to its id, so timestamps per node only increase.
  local per_thread = math.floor(nodes / threads_total)
  local node = thread_id + threads_total * (counter % per_thread)
  local round = math.floor(counter / per_thread)
  counter = counter + 1
  local ts = os.date("!%Y-%m-%dT%H:%M:%SZ", base + round * 5)
  local body = parts[1] .. "load-node-" .. node .. parts[2] .. ts .. parts[3]
  return wrk.format(nil, nil, nil, body)
end

-- DELAY_MS throttles each connection (closed loop): -c20 with DELAY_MS=10 gives about 2000/s.
local delay_ms = tonumber(os.getenv("DELAY_MS") or "")
if delay_ms then
  function delay()
    return delay_ms
  end
end

local statuses = {}
function response(status, headers, body)
  if status ~= 200 then
    statuses[status] = (statuses[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  io.write(string.format("non-2xx: %d, errors: connect %d read %d write %d timeout %d\n",
    summary.errors.status, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("p%g: %.3f ms\n", p, latency:percentile(p) / 1000))
  end
end
