wrk.method = "POST"
wrk.body = string.rep("z", 10240)
wrk.headers["Content-Type"] = "application/octet-stream"
