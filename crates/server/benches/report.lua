-- wrk script: every request reports a new case with an Idempotency-Key (the command id) of
-- its own. The bearer token comes from the environment variable TOKEN. wrk counts any answer
-- other than 2xx/3xx as "Non-2xx or 3xx responses".
local token = os.getenv("TOKEN")
local threads = 0
local counter = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0))
end

local function key()
  counter = counter + 1
  return string.format("%08x-%04x-4%03x-a%03x-%012x", math.random(0, 0x7fffffff),
    tid or 0, math.random(0, 0xfff), math.random(0, 0xfff), counter)
end

local body = '{"channel":"hotline","kind":"complaint","summary":"压测案件：小区垃圾清运不及时",'
  .. '"locality":"loc-zhongshan","village":"vil-renmin","subject":"物业公司",'
  .. '"focus_area":"living_environment","reporter":{"type":"anonymous"}}'

request = function()
  return wrk.format("POST", "/api/v1/cases", {
    ["Authorization"] = "Bearer " .. token,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = key(),
  }, body)
end
