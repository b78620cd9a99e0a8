#!/usr/bin/env python3
"""A complete FlowFabric worker on redis-py: registration and heartbeat, a
blocking claim loop, lease renewal while a job runs, a graceful drain on
SIGTERM, a complete that survives a lost reply, and an idempotent producer.

  worker.py [--host H] [--port P] [--lane L] [--max-jobs N]   work (0: until SIGTERM)
  worker.py --submit N [--lane L]                               submit N jobs, print ids

Single server here. In a cluster FF.CLAIM has no key: run one loop per primary
(RedisCluster(...).get_primaries(), a plain Redis connection to each); a job's
id routes its later calls, FF.PARTITION's tag routes the submit."""
import argparse, json, os, signal, socket, threading, time
import redis

WORKER, TTL_MS, BLOCK_MS = "py-worker", 15_000, 2_000  # BLOCK stays below the socket timeout

def submit(r, lane, payload, key, ttl_ms=86_400_000):
    # redis-py re-sends a write whose reply timed out: with IDEMPOTENCY the
    # re-send returns the first id instead of making a second job.
    tag = r.execute_command("FF.PARTITION", lane)  # {fp:N}; '*' also works on one server
    return r.execute_command("FF.SUBMIT", tag, lane, payload, "IDEMPOTENCY", key, ttl_ms)

def claim(r, instance, lane, lease_ms):
    # id, payload, lease id, lease epoch, attempt id (the fence: job[2:5]),
    # attempt index, lease expiry, resumed; None when BLOCK ran out.
    return r.execute_command("FF.CLAIM", WORKER, instance, 1, lane, "LEASE", lease_ms, "BLOCK", BLOCK_MS)

def complete(r, job, result):
    """True once the job is done, also when an earlier send of this complete
    succeeded and only its reply was lost (a retry, ours or redis-py's)."""
    try:
        return r.execute_command("FF.COMPLETE", job[0], *job[2:5], "RESULT", result) == "OK"
    except redis.ResponseError as e:
        code, *detail = str(e).split()
        d = dict(kv.split("=", 1) for kv in detail if "=" in kv)
        return code == "EXECUTION_NOT_ACTIVE" and d.get("terminal_outcome") == "success" and d.get("attempt_id") == job[4]

def keep_lease(r, job, lease_ms, done):
    while not done.wait(lease_ms / 3000):  # renew at a third of the lease
        try:
            r.execute_command("FF.RENEW", job[0], *job[2:5], "LEASE", lease_ms)
        except redis.ResponseError as e:  # expired or revoked: the complete will fail too
            return print("lease lost", job[0], e, flush=True)

def keep_alive(r, instance, lane, stop):
    while not stop.wait(TTL_MS / 3000):
        try:
            r.execute_command("FF.HEARTBEAT", instance)
        except redis.ResponseError:  # WORKER_NOT_FOUND or WORKER_DEAD: register again
            r.execute_command("FF.REGISTER", instance, WORKER, TTL_MS, "LANES", 1, lane)

def work(payload):  # the application's part: here, sleep as asked and echo
    job = json.loads(payload)
    time.sleep(job.get("sleep", 0))
    return json.dumps({"done": job})

def run(r, lane, lease_ms, max_jobs):
    instance, stopping, done = f"{socket.gethostname()}-{os.getpid()}", threading.Event(), 0
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())  # drain: finish the job in hand, claim no more
    r.execute_command("FF.REGISTER", instance, WORKER, TTL_MS, "LANES", 1, lane)
    threading.Thread(target=keep_alive, args=(r, instance, lane, stopping), daemon=True).start()
    while not stopping.is_set() and (max_jobs == 0 or done < max_jobs):
        if (job := claim(r, instance, lane, lease_ms)) is None:
            continue
        print("claimed", job[0], flush=True)
        held = threading.Event()
        threading.Thread(target=keep_lease, args=(r, job, lease_ms, held), daemon=True).start()
        try:
            ok = complete(r, job, work(job[1]))
        except Exception as e:  # the job failed: FF.FAIL retries it if its retry policy allows
            r.execute_command("FF.FAIL", job[0], *job[2:5], "REASON", repr(e)[:200])
            ok = False
        held.set()
        print("completed" if ok else "not completed", job[0], flush=True)
        done += 1
    print("drained", flush=True)

if __name__ == "__main__":
    a = argparse.ArgumentParser()
    for flag, default in [("--host", "127.0.0.1"), ("--port", 6379), ("--lane", "email"),
                          ("--lease-ms", 30_000), ("--max-jobs", 0), ("--submit", 0)]:
        a.add_argument(flag, default=default, type=type(default))
    o = a.parse_args()
    r = redis.Redis(host=o.host, port=o.port, decode_responses=True, socket_timeout=BLOCK_MS / 1000 + 5)
    for i in range(o.submit):
        print(submit(r, o.lane, json.dumps({"n": i}), f"example-{o.lane}-{i}"))
    if not o.submit:
        run(r, o.lane, o.lease_ms, o.max_jobs)
