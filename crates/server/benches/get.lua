-- wrk script: GET with the bearer token from the environment variable TOKEN.
local token = os.getenv("TOKEN")
request = function()
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. token })
end
