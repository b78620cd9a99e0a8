#!/usr/bin/env node
// A complete FlowFabric worker on ioredis: registration and heartbeat, a
// blocking claim loop, lease renewal while a job runs, a graceful drain on
// SIGTERM, a complete that survives a lost reply, and an idempotent producer.
//
//   node worker.js [host] [port] [lane]
//
// Single server here. In a cluster FF.CLAIM has no key: run one loop per
// primary (new Redis.Cluster(...).nodes('master'), a connection to each).
// ioredis does not know module commands' keys, so a keyed FF.* call through a
// Cluster reaches its node by a MOVED redirect; a worker's own calls go to the
// node it claimed from, which holds the job.
'use strict';
const os = require('os');
const Redis = require('ioredis');

const WORKER = 'node-worker', TTL_MS = 15000, LEASE_MS = 30000, BLOCK_MS = 2000;

// ioredis re-sends commands in flight after a reconnect: with IDEMPOTENCY a
// re-sent submit returns the first id instead of making a second job.
async function submit(r, lane, payload, key, ttlMs = 86400000) {
  const tag = await r.call('FF.PARTITION', lane); // {fp:N}; '*' also works on one server
  return r.call('FF.SUBMIT', tag, lane, payload, 'IDEMPOTENCY', key, ttlMs);
}

// job: id, payload, lease id, lease epoch, attempt id (the fence: job.slice(2, 5)),
// attempt index, lease expiry, resumed. True once the job is done, also when an
// earlier send of this complete succeeded and only its reply was lost.
async function complete(r, job, result) {
  try {
    return (await r.call('FF.COMPLETE', job[0], ...job.slice(2, 5), 'RESULT', result)) === 'OK';
  } catch (e) {
    const [code, ...detail] = String(e.message).split(' ');
    const d = Object.fromEntries(detail.map((kv) => [kv.split('=')[0], kv.slice(kv.indexOf('=') + 1)]));
    return code === 'EXECUTION_NOT_ACTIVE' && d.terminal_outcome === 'success' && d.attempt_id === job[4];
  }
}

async function work(payload) { // the application's part: here, sleep as asked and echo
  const job = JSON.parse(payload);
  await new Promise((done) => setTimeout(done, (job.sleep || 0) * 1000));
  return JSON.stringify({ done: job });
}

async function main() {
  const [host = '127.0.0.1', port = '6379', lane = 'email'] = process.argv.slice(2);
  const claimer = new Redis({ host, port: Number(port) }); // no commandTimeout below BLOCK
  const calls = claimer.duplicate(); // the blocked claimer's connection waits: the rest go here
  const instance = `${os.hostname()}-${process.pid}`;
  let stopping = false;
  process.on('SIGTERM', () => { stopping = true; }); // drain: finish the job in hand, claim no more
  const register = () => calls.call('FF.REGISTER', instance, WORKER, TTL_MS, 'LANES', 1, lane);
  await register();
  const beat = setInterval(() => calls.call('FF.HEARTBEAT', instance) // WORKER_NOT_FOUND/DEAD: again
    .catch(() => register().catch(() => {})), TTL_MS / 3);
  while (!stopping) {
    const job = await claimer.call('FF.CLAIM', WORKER, instance, 1, lane, 'LEASE', LEASE_MS, 'BLOCK', BLOCK_MS);
    if (job === null) continue;
    console.log('claimed', job[0]);
    const renew = setInterval(() => calls.call('FF.RENEW', job[0], ...job.slice(2, 5), 'LEASE', LEASE_MS)
      .catch((e) => { console.log('lease lost', job[0], e.message); clearInterval(renew); }), LEASE_MS / 3);
    try {
      console.log((await complete(calls, job, await work(job[1]))) ? 'completed' : 'not completed', job[0]);
    } catch (e) { // the job failed: FF.FAIL retries it if its retry policy allows
      await calls.call('FF.FAIL', job[0], ...job.slice(2, 5), 'REASON', String(e).slice(0, 200));
    } finally {
      clearInterval(renew);
    }
  }
  clearInterval(beat);
  await Promise.all([claimer.quit(), calls.quit()]);
  console.log('drained');
}

module.exports = { submit, complete };
if (require.main === module) main().catch((e) => { console.error(e); process.exit(1); });
