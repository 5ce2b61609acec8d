-- keyward redislimit: one check of a key's rate limit (GCRA) and quota,
-- atomically. See doc.go for the design; limiter.go builds the arguments
-- and reads the reply.
--
-- KEYS[1]  the rate key: the theoretical arrival time (TAT), in Unix
--          nanoseconds, as a decimal string
-- KEYS[2]  the quota key of the current period: the requests counted
--          (a policy with one limit passes its one key twice, so that
--          the script always names two keys of one cluster slot)
-- ARGV[1]  "1" to count the request if allowed, "0" to only look (Peek)
-- ARGV[2]  now, Unix seconds; "" to read the server's clock (TIME)
-- ARGV[3]  now, the nanoseconds within that second
-- ARGV[4]  the emission interval T in nanoseconds; "0": no rate limit
-- ARGV[5]  the burst tolerance in nanoseconds, (capacity - 1) * T
-- ARGV[6]  the quota's requests per period; "0": no quota
-- ARGV[7]  the period's start, Unix seconds
-- ARGV[8]  the period's end, Unix seconds
-- ARGV[9]  how long, in milliseconds, a key outlives what it records
--
-- Reply: {allowed, diff, used, now seconds, now nanoseconds}: allowed is 1
-- or 0, or -1 if now (the server's) is outside the period given, which
-- the caller then asks again about; diff is max(TAT - now, 0) before this
-- request, in nanoseconds, at most capacity * T; used is the quota's
-- count before it.
--
-- Numbers are Lua doubles, exact up to 2^53: times are kept as seconds
-- and nanoseconds apart, and only the difference TAT - now (exact below
-- 104 days) is computed in nanoseconds.

local now_s, now_ns = tonumber(ARGV[2]), tonumber(ARGV[3])
if not now_s then
  local t = redis.call('TIME')
  now_s, now_ns = tonumber(t[1]), tonumber(t[2]) * 1000
end
local interval, tau, quota = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local margin = tonumber(ARGV[9])
local ok, diff, used, qend, clamped = 1, 0, 0, 0, false

if quota > 0 then
  qend = tonumber(ARGV[8])
  if now_s < tonumber(ARGV[7]) or now_s >= qend then
    return {-1, 0, 0, now_s, now_ns}
  end
end

-- Both keys in one call: each redis.call costs more than the command.
local vals = redis.call('MGET', KEYS[1], KEYS[2])

if quota > 0 then
  used = tonumber(vals[2] or 0)
  if used >= quota then ok = 0 end
end

if interval > 0 then
  local tat = vals[1]
  if tat then
    local n = #tat
    diff = (tonumber(string.sub(tat, 1, n - 9)) - now_s) * 1e9
      + tonumber(string.sub(tat, n - 8)) - now_ns
    if diff < 0 then diff = 0 end
  end
  if diff > tau + interval then
    -- Full later than a bucket of this policy can be: the policy changed
    -- (a faster or smaller limit). The bucket is empty, and fills from
    -- now: an Allow writes that even if it refuses the request.
    diff, clamped = tau + interval, true
  end
  if diff > tau then ok = 0 end
end

if ARGV[1] == '1' and interval > 0 and (ok == 1 or clamped) then
  -- The new TAT is max(TAT, now) + T if the request is counted; the key
  -- lives until the bucket is full again (plus the margin).
  local debt = diff
  if ok == 1 then debt = diff + interval end
  local ns = now_ns + debt
  local s = now_s + math.floor(ns / 1e9)
  redis.call('SET', KEYS[1], string.format('%d%09d', s, ns % 1e9),
    'PX', math.ceil(debt / 1e6) + margin)
end
if ok == 1 and ARGV[1] == '1' then
  if quota > 0 and redis.call('INCR', KEYS[2]) == 1 then
    -- The period's first request: the key lives until the period ends
    -- (plus the margin).
    redis.call('PEXPIRE', KEYS[2], (qend - now_s) * 1000 - math.floor(now_ns / 1e6) + margin)
  end
end

return {ok, diff, used, now_s, now_ns}
