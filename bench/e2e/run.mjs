// bench/e2e/run.mjs — end-to-end benchmarks of DarkSpere on one machine: a throwaway cluster with the extension,
// the real darkspere-worker, loopback peers (Twilio Messages API stand-in, plain HTTP agents) and a load generator
// posting signed webhooks. Every load is a bounded count with a bounded wait.
//
//   node bench/e2e/run.mjs            (or bench/run-e2e.sh, which checks the build first)
//
// Environment: ROUNDS (3), MESSAGES per inbound round (9000), CONCURRENCY = conversations at once (300),
// TPCB_SECONDS (20), SLOW_CALLS (2000), OUTBOUND jobs per dispatch round (3000), MAX_IN_FLIGHT (worker default when
// unset), WORKER_ARGS (extra worker flags, e.g. "--pool-size 4"), PARTS (comma list of inbound,slow,outbound;
// default all), PG_STATS=1 (print pg_stat_statements for each inbound round and the slow part; slows the run, not for reporting),
// AUTOVACUUM_NAPTIME (10s, the setting the README recommends; PostgreSQL's default is 1min),
// PEERS (native): who plays the inbound part's load generator, instant agent and Twilio stand-in —
//   native  build/bench/peer/darkspere-bench-peer (bench/peer/, C++, one single-threaded process; BENCH_PEER_BIN
//           overrides the path): a fraction of the Node peers' CPU, so less of the 2 shared cores goes to the
//           harness. The worker runs against its stand-in for the inbound part, then is restarted against the Node
//           stand-in. Its warm-up is closed-loop (each conversation awaits its reply) where the Node one is not.
//   node    this process: the load generator signs with the twilio SDK, the peers are test/e2e's Node peers.
// The slow and outbound parts use test/e2e's Node peers either way (with PEERS=native, the slow part's probe is
// answered by the native instant agent).
//
// Parts:
//   inbound   per round: pgbench TPC-B-like (-c 8 -j 2 -T 20) on the same cluster, then MESSAGES signed webhooks
//             → worker → instant agent → Twilio stand-in, from CONCURRENCY conversations that each wait for their
//             reply before texting again. Throughput = replies received by the stand-in per second;
//             platform latency = webhook sent → stand-in received the send, minus the agent call time the worker
//             measured (jobs.result.latency_ms). CPU per message by process group: postgres, node (this
//             process), worker, and peer (the native peer process, PEERS=native only).
//   slow      SLOW_CALLS agent calls to an agent answering after 2 s, created at once; meanwhile a probe texts a
//             fast agent every 50 ms; its end-to-end latency is compared with the same probe before the load.
//             Worker VmHWM/VmRSS from /proc.
//   outbound  OUTBOUND sms_send jobs made ready with the worker stopped (receive_sms + claim_jobs + complete_job
//             in SQL), then the worker starts and drains them to the stand-in: jobs/s.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startCluster } from '../../test/e2e/lib/cluster.mjs';
import { randomHex, sleep } from '../../test/e2e/lib/net.mjs';
import { inboundParams, signedPost } from '../../test/e2e/lib/twilio-webhook.mjs';
import { startWorker } from '../../test/e2e/lib/worker.mjs';
import { startHttpAgent } from '../../test/e2e/peers/http-agent.mjs';
import { startTwilioApi } from '../../test/e2e/peers/twilio-api.mjs';
import { startNativePeer } from './native-peer.mjs';

const run = promisify(execFile);
const env = process.env;
const ROUNDS = Number(env.ROUNDS || 3);
const MESSAGES = Number(env.MESSAGES || 9000);
const CONCURRENCY = Number(env.CONCURRENCY || 300);
const TPCB_SECONDS = Number(env.TPCB_SECONDS || 20);
const SLOW_CALLS = Number(env.SLOW_CALLS || 2000);
const OUTBOUND = Number(env.OUTBOUND || 3000);
const PARTS = new Set((env.PARTS || 'inbound,slow,outbound').split(','));
const PG_STATS = env.PG_STATS === '1'; // profile: print the statements PostgreSQL spent its time on
const PEERS = env.PEERS || 'native';
const AUTOVACUUM_NAPTIME = env.AUTOVACUUM_NAPTIME || '10s';
if (!/^[0-9]+(s|min)?$/.test(AUTOVACUUM_NAPTIME)) throw new Error(`AUTOVACUUM_NAPTIME must be like 10s or 1min, not ${AUTOVACUUM_NAPTIME}`);
if (!['native', 'node'].includes(PEERS)) throw new Error(`PEERS must be native or node, not ${PEERS}`);
const WAIT_MS = 180000; // upper bound on any wait for replies

const SID = 'AC0be0c000000000000000000000000001';
const FAST_NUMBER = '+14155550101';
const SLOW_NUMBER = '+14155550102';
const OUT_NUMBER = '+14155550103';

const log = (...a) => console.log(...a);
const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    if (!s.length) return NaN;
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const pct = (xs, p) => {
    const s = [...xs].sort((a, b) => a - b);
    if (!s.length) return NaN;
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : String(x));
const phone = (base, i) => `+1${base}${String(i).padStart(7, '0')}`;

function hardware() {
    const cpu = cpus()[0]?.model || 'unknown';
    return `nproc ${cpus().length}, cpu ${cpu}, memory ${(totalmem() / 2 ** 30).toFixed(1)} GiB`;
}

function procStatus(pid) {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number((new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text) || [])[1] || 0);
    return { hwmMiB: kb('VmHWM') / 1024, rssMiB: kb('VmRSS') / 1024 };
}

// cpuSeconds sums user+system CPU time of the PostgreSQL processes (every process named postgres on the machine:
// run the benchmark on a machine without another cluster), of this Node process (with PEERS=node the load
// generator and every peer; with PEERS=native only the harness, idle during a round since the worker logs to a
// file), of the worker, and of the native peer process when peerPid is given (load generator, instant agent and
// Twilio stand-in). A process that exits takes its time with it; the pool's backends live through a round.
function cpuSeconds(workerPid, peerPid, ticksPerSecond) {
    const sum = { postgres: 0, node: 0, worker: 0 };
    if (peerPid) sum.peer = 0;
    for (const entry of readdirSync('/proc')) {
        if (!/^[0-9]+$/.test(entry)) continue;
        let stat;
        try {
            stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        } catch {
            continue; // exited meanwhile
        }
        const close = stat.lastIndexOf(')');
        const comm = stat.slice(stat.indexOf('(') + 1, close);
        const fields = stat.slice(close + 2).split(' '); // fields[0] is field 3 (state); utime, stime are 14, 15
        const ticks = Number(fields[11]) + Number(fields[12]);
        const pid = Number(entry);
        if (pid === process.pid) sum.node += ticks;
        else if (pid === workerPid) sum.worker += ticks;
        else if (peerPid && pid === peerPid) sum.peer += ticks;
        else if (comm === 'postgres') sum.postgres += ticks;
    }
    for (const k of Object.keys(sum)) sum[k] /= ticksPerSecond;
    return sum;
}

// nativeRound runs msgs as a closed-loop round of the native peer: message i is `${prefix}${i}` from phone
// (i % phones) of base 20000, as the Node rounds build them. It throws, like waitCount, unless every reply came.
async function nativeRound(peer, worker, authToken, { tag, prefix, messages, phones }) {
    const r = await peer.round({
        tag, body_prefix: prefix, messages, concurrency: CONCURRENCY, phones, from_base: '20000', to: FAST_NUMBER,
        target: `${worker.url}/twilio/sms`, account_sid: SID, auth_token: authToken,
        post_timeout_ms: 30000, reply_timeout_ms: WAIT_MS, deadline_ms: 2 * WAIT_MS,
    });
    if (r.received < messages) {
        throw new Error(`native round ${tag}: ${r.received}/${messages} replies at the stand-in`
            + ` (reply timeouts ${r.replyTimeouts}, statuses ${JSON.stringify(r.statuses)}${r.error ? `, ${r.error}` : ''})`);
    }
    if (r.otherMessages || r.duplicateReplies) {
        log(`    native round ${tag}: the stand-in also got ${r.otherMessages} other sends and ${r.duplicateReplies} duplicate replies`);
    }
    return r;
}

// postWebhooks posts msgs[i] as signed webhooks from `lanes` concurrent conversations: a lane posts a webhook,
// and when `awaitReply(i)` is given, waits for that message's reply at the stand-in before its next one (a closed
// loop, like people who text and wait for the answer, so the measured rate is one the platform sustains rather
// than a burst it queues). Returns per-message send times and the webhook answer statuses and times.
async function postWebhooks(worker, authToken, msgs, lanes, awaitReply = null) {
    const sentAt = new Array(msgs.length);
    const statuses = {};
    const respMs = [];
    let next = 0;
    const target = `${worker.url}/twilio/sms`;
    async function lane() {
        for (;;) {
            const i = next++;
            if (i >= msgs.length) return;
            const { from, to, body } = msgs[i];
            const params = inboundParams({ accountSid: SID, from, to, body });
            const replied = awaitReply ? awaitReply(i) : null;
            sentAt[i] = Date.now();
            let status;
            try {
                status = (await signedPost({ target, authToken, params, timeoutMs: 30000 })).status;
            } catch (err) {
                status = `error ${err.message}`;
            }
            respMs.push(Date.now() - sentAt[i]);
            statuses[status] = (statuses[status] || 0) + 1;
            if (replied) await replied;
        }
    }
    await Promise.all(Array.from({ length: lanes }, lane));
    return { sentAt, statuses, respMs };
}

// replyWaiter waits for replies at the stand-in whose body matches `pattern`; its one capture group is the key
// (the echo agent repeats each unique message body). awaitReply(key) — called before the webhook is posted, so a
// fast reply cannot be missed — resolves with the time the stand-in received the reply, and rejects after
// timeoutMs. stop() detaches it from the stand-in.
function replyWaiter(api, pattern, timeoutMs) {
    const waiting = new Map();
    const onMessage = (m) => {
        const match = pattern.exec(m.body);
        const w = match && waiting.get(match[1]);
        if (w) {
            waiting.delete(match[1]);
            w(Date.parse(m.received_at));
        }
    };
    api.events.on('message', onMessage);
    return {
        awaitReply: (key) => new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`no reply to "${key}" within ${timeoutMs} ms`)), timeoutMs);
            waiting.set(String(key), (receivedAt) => {
                clearTimeout(timer);
                resolve(receivedAt);
            });
        }),
        stop: () => api.events.off('message', onMessage),
    };
}

// probeStages splits each probe's end-to-end time (same machine, same clock for all):
//   stored    webhook posted → its inbound row (the receive transaction's start)
//   acked     → its agent_call's ack (that ack transaction's start): the agent call plus the wait for an ack
//   started   → the worker started the Twilio request (worker log: "twilio send finished" ts − latency_ms): the
//             ack statement that created the send, and any wait for a request slot
//   standIn   → the stand-in received it (the Node stand-in's own queue: harness, not platform)
//   platform  webhook posted → Twilio request started, less the agent call: the issue's platform latency
// for the probes whose body starts with `prefix`.
async function probeStages(db, sentAt, receivedAt, prefix, workerLog) {
    const started = new Map(); // request_id → wall ms the Twilio request started
    for (const line of readFileSync(workerLog, 'utf8').split('\n')) {
        if (!line.includes('"twilio send finished"')) continue;
        const e = JSON.parse(line);
        if (e.outcome === 'sent') started.set(e.request_id, Date.parse(e.ts) - e.latency_ms);
    }
    const rows = await db.query(`
        SELECT m.body, m.request_id, extract(epoch FROM m.created_at) * 1000::float8 AS stored,
               extract(epoch FROM ac.finished_at) * 1000::float8 AS agent_acked,
               (ac.result->>'latency_ms')::float AS agent_ms
          FROM darkspere.messages m
          JOIN darkspere.jobs ac ON ac.kind = 'agent_call' AND ac.message_id = m.message_id
         WHERE m.direction = 'in' AND m.body LIKE $1 || '%'`, [prefix]);
    return rows.filter((r) => sentAt.has(r.body) && started.has(r.request_id)).map((r) => {
        const t = sentAt.get(r.body);
        const go = started.get(r.request_id);
        return { body: r.body, agentMs: r.agent_ms, stored: r.stored - t, acked: r.agent_acked - r.stored,
            started: go - r.agent_acked, standIn: receivedAt.get(r.body) - go, platform: go - t - r.agent_ms };
    });
}

function logProbeStages(label, stages) {
    if (!stages.length) return;
    const f = (k) => `${k} ${pct(stages.map((s) => s[k]), 50).toFixed(0)}/${pct(stages.map((s) => s[k]), 99).toFixed(0)}`;
    log(`   probe stages ${label} (ms p50/p99, ${stages.length} probes): ${f('stored')} | ${f('acked')} | ${f('started')}`
        + ` | ${f('standIn')} || platform ${pct(stages.map((s) => s.platform), 50).toFixed(0)}/${pct(stages.map((s) => s.platform), 99).toFixed(0)}`);
    for (const s of [...stages].sort((x, y) => (y.platform + y.standIn) - (x.platform + x.standIn)).slice(0, 3)) {
        log(`     slowest: ${s.body}: stored ${s.stored.toFixed(0)}, agent acked +${s.acked.toFixed(0)} (agent ${s.agentMs} ms),`
            + ` request started +${s.started.toFixed(0)}, at the stand-in +${s.standIn.toFixed(0)}`);
    }
}

// ackStatementStats reads the worker's ack statement counters from GET /metrics: statements, acks in them, and
// the seconds they took (sums since the worker started).
async function ackStatementStats(workerUrl) {
    const text = await (await fetch(`${workerUrl}/metrics`)).text();
    const value = (name) => Number((new RegExp(`^${name} (\\S+)$`, 'm').exec(text) || [])[1] || 0);
    return { count: value('darkspere_ack_batch_size_count'), size: value('darkspere_ack_batch_size_sum'),
        seconds: value('darkspere_ack_batch_seconds_sum') };
}

function ackStatementLine(before, after) {
    const n = after.count - before.count;
    return `ack statements: ${n}, mean ${((after.size - before.size) / n).toFixed(1)} acks`
        + ` and ${((1000 * (after.seconds - before.seconds)) / n).toFixed(1)} ms each`;
}

// waitCount resolves when count() ≥ n, or throws after timeoutMs.
async function waitCount(count, n, timeoutMs, what) {
    const deadline = Date.now() + timeoutMs;
    while (count() < n) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${count()}/${n}`);
        await sleep(10);
    }
}

async function pgbench(cluster, dbName, args) {
    const { stdout } = await run('pgbench', args, {
        env: { ...process.env, ...cluster.env, PGDATABASE: dbName },
        maxBuffer: 16 << 20,
        timeout: (TPCB_SECONDS + 120) * 1000,
    });
    return stdout;
}

// enableStatementStats loads pg_stat_statements with nested statements counted (those the extension runs through
// SPI), for PG_STATS=1 runs; it costs some throughput, so figures from such runs are for reading, not reporting.
async function enableStatementStats(cluster) {
    for (const setting of [`shared_preload_libraries = 'pg_stat_statements'`, `pg_stat_statements.track = 'all'`]) {
        const admin = cluster.db(); // the second setting exists only once the library is loaded: restart between
        try {
            await admin.query(`ALTER SYSTEM SET ${setting}`);
        } finally {
            await admin.end();
        }
        await cluster.restart();
    }
}

async function printStatementStats(db) {
    const rows = await db.query(`SELECT calls, round(total_exec_time)::bigint AS ms,
            round((100 * total_exec_time / sum(total_exec_time) OVER ())::numeric, 1) AS pct,
            round((shared_blks_hit + shared_blks_read)::numeric / calls, 1) AS blks,
            regexp_replace(left(query, 110), '\\s+', ' ', 'g') AS query
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY total_exec_time DESC LIMIT 30`);
    const w = await db.one(`SELECT w.wal_records, w.wal_fpi, pg_size_pretty(w.wal_bytes) AS bytes, b.checkpoints_timed + b.checkpoints_req AS checkpoints
        FROM pg_stat_wal w, pg_stat_bgwriter b`);
    log(`== WAL since the reset: ${w.wal_records} records, ${w.wal_fpi} full-page images, ${w.bytes}; checkpoints since start ${w.checkpoints}`);
    const ix = await db.query(`SELECT indexrelname AS name, idx_scan, idx_tup_read FROM pg_stat_user_indexes
        WHERE schemaname = 'darkspere' AND relname IN ('jobs', 'messages', 'sessions') ORDER BY relname, indexrelname`);
    log(`== index scans / entries read since start: ${ix.map((r) => `${r.name} ${r.idx_scan}/${r.idx_tup_read}`).join(', ')}`);
    log('== pg_stat_statements (nested statements included; top-level function calls include their nested time; blocks = shared buffers hit or read)');
    for (const r of rows) log(`  ${String(r.calls).padStart(8)} calls ${String(r.ms).padStart(7)} ms ${String(r.pct).padStart(5)} % ${String(r.blks).padStart(7)} blks/call  ${r.query}`);
}

async function main() {
    log(`== ${hardware()}`);
    const ticksPerSecond = Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
    const cluster = await startCluster();
    if (PG_STATS) await enableStatementStats(cluster);
    const { name: dbName, db } = await cluster.createDatabase('bench');
    if (PG_STATS) await db.query('CREATE EXTENSION pg_stat_statements');
    const authToken = randomHex(32);
    const api = await startTwilioApi({ accounts: { [SID]: authToken } });
    const fast = await startHttpAgent({ name: 'fast', mode: 'echo' });
    const slow = await startHttpAgent({ name: 'slow', mode: 'slow', delayMs: 2000 });
    const native = PEERS === 'native' ? await startNativePeer({ [SID]: authToken }) : null;
    const out = { api, fast, slow, native };
    let worker = null;
    let workerBase = null; // the Twilio base URL the running worker sends to
    const workerArgs = []; // default log level (info): the 'ready' line is an info line the harness waits for
    if (env.MAX_IN_FLIGHT) workerArgs.push('--max-in-flight', env.MAX_IN_FLIGHT);
    // Each part's traffic is one tenant's: give it every slot, as before the per-account share (half of
    // max-in-flight by default) existed, so results stay comparable with earlier runs.
    workerArgs.push('--max-in-flight-per-account', env.MAX_IN_FLIGHT || '2500');
    // The load generator is one client address holding CONCURRENCY connections (as a reverse proxy would): lift the
    // per-address cap (max-connections-per-ip, default 64) to max-connections.
    workerArgs.push('--max-connections-per-ip', '1024');
    if (env.WORKER_ARGS) workerArgs.push(...env.WORKER_ARGS.split(' ').filter(Boolean)); // e.g. "--pool-size 8"
    // The worker logs (info level, a few lines per message) to files, not to a pipe this process would have to
    // read and parse during the measurement; they are removed after a successful run.
    const logDir = mkdtempSync(join(tmpdir(), 'darkspere-bench-logs-'));
    let workers = 0;
    let workerLog = null; // the running worker's log file
    const newWorker = (twilioBase = api.url) => startWorker({
        logFile: (workerLog = join(logDir, `worker-${++workers}.log`)),
        conninfo: cluster.conninfo(dbName),
        twilioAccounts: { [SID]: authToken },
        twilioBase,
        agentDeadlineMs: 10000,
        twilioDeadlineMs: 10000,
        leaseSeconds: 30,
        pollIntervalMs: 1000, // the worker's defaults
        tickIntervalMs: 1000,
        extraArgs: workerArgs,
    });
    try {
        // README (PostgreSQL settings): DarkSpere's hot tables (jobs, sessions, counters) churn, and with autovacuum's default
        // one pass per minute the dead versions pile up between passes (each round slower than the last). The
        // recommended 10 s applies to pgbench's tables too, so the baseline runs on the same server.
        await db.query(`ALTER SYSTEM SET autovacuum_naptime = '${AUTOVACUUM_NAPTIME}'`);
        await db.query('SELECT pg_reload_conf()');
        const settings = await db.query(`SELECT name, setting, unit FROM pg_settings WHERE name IN
            ('shared_buffers','max_connections','fsync','synchronous_commit','max_wal_size','jit','autovacuum_naptime')
            ORDER BY name`);
        log(`== settings: ${settings.map((s) => `${s.name}=${s.setting}${s.unit || ''}`).join(' ')}`);
        // Benchmark traffic repeats phones far more often than a person texts: lift the per-phone limits (rules,
        // so the code path is the production one) — documented in docs/benchmarks.md.
        await db.query(`UPDATE darkspere.rate_limit_rules SET max_hits = 1000000 WHERE scope IN ('phone', 'phone_ceiling', 'phone_out')`);
        const accounts = {};
        for (const [key, number] of [['fast', FAST_NUMBER], ['slow', SLOW_NUMBER], ['out', OUT_NUMBER]]) {
            accounts[key] = await db.value(`SELECT darkspere.create_account($1, 'enterprise')`, [`bench-${key}`]);
            await db.query('SELECT darkspere.add_number($1, $2, $3)', [accounts[key], number, SID]);
        }
        const agentId = {};
        // With PEERS=native the fast number's agent is the native peer's instant agent, for every part.
        const fastUrl = native ? `${native.url}/agent` : fast.url;
        for (const [key, url, account] of [['fast', fastUrl, accounts.fast], ['slow', slow.url, accounts.slow],
            ['out', fast.url, accounts.out]]) {
            agentId[key] = (await db.one(`SELECT * FROM darkspere.register_agent($1, $2, $3, 'http', 1000)`,
                [account, `${key}-agent`, url])).agent_id;
        }
        // One agent per part takes bursts beyond the production ceiling of 1,000 calls: lifted on this throwaway
        // cluster only, so routing never saturates during a burst (as before the ceiling existed).
        await db.query('ALTER TABLE darkspere.agents DROP CONSTRAINT agents_capacity_max');
        await db.query('UPDATE darkspere.agents SET capacity = 100000');
        log(`== pgbench -i -s 10 (database ${dbName})`);
        await pgbench(cluster, dbName, ['-i', '-q', '-s', '10']);
        workerBase = native && PARTS.has('inbound') ? native.url : api.url;
        worker = await newWorker(workerBase);
        log(`== peers: ${native ? `native darkspere-bench-peer pid ${native.proc.pid} at ${native.url}` : 'node (this process)'}`);
        log(`== worker pid ${worker.proc.pid} ${workerArgs.join(' ')}`);

        const results = { inbound: [], slow: null, outbound: [] };
        if (PARTS.has('inbound')) {
            // Warm-up: one message per phone so sessions exist (steady state, like the pgbench bench).
            const phones = 2000;
            const warm = Array.from({ length: phones }, (_, i) => ({ from: phone(20000, i), to: FAST_NUMBER, body: `warm ${i}` }));
            let base = api.messages.length;
            if (native) {
                await nativeRound(native, worker, authToken, { tag: 'warm', prefix: 'warm ', messages: phones, phones });
            } else {
                await postWebhooks(worker, authToken, warm, CONCURRENCY);
                await waitCount(() => api.messages.length - base, phones, WAIT_MS, 'warm-up replies');
            }
            for (let round = 1; round <= ROUNDS; round++) {
                const tpcbOut = await pgbench(cluster, dbName, ['-c', '8', '-j', '2', '-T', String(TPCB_SECONDS)]);
                const tpcb = Number(/tps = ([\d.]+) \(without initial/.exec(tpcbOut)[1]);
                await sleep(1000);
                const tag = `r${round}`;
                const msgs = Array.from({ length: MESSAGES }, (_, i) => ({ from: phone(20000, i % phones), to: FAST_NUMBER, body: `bench ${tag} ${i}` }));
                base = api.messages.length;
                if (PG_STATS) await db.query('SELECT pg_stat_statements_reset(), pg_stat_reset_shared(\'wal\')');
                const acksBefore = await ackStatementStats(worker.url);
                const peerPid = native?.proc.pid;
                const cpu0 = cpuSeconds(worker.proc.pid, peerPid, ticksPerSecond);
                const t0 = Date.now();
                let sent;
                let tPosted;
                let answered; // [{i, at}]: replies at the stand-in, i the message index (null: not one of ours)
                if (native) {
                    const r = await nativeRound(native, worker, authToken, { tag, prefix: `bench ${tag} `, messages: MESSAGES, phones });
                    sent = { sentAt: r.sentAt, statuses: r.statuses, respMs: r.respMs };
                    tPosted = r.endedAt;
                    answered = r.receivedAt.flatMap((at, i) => (at === null ? [] : [{ i, at }]));
                } else {
                    const replies = replyWaiter(api, new RegExp(`bench ${tag} ([0-9]+) \\[history`), WAIT_MS);
                    sent = await postWebhooks(worker, authToken, msgs, CONCURRENCY, replies.awaitReply);
                    replies.stop();
                    tPosted = Date.now();
                    await waitCount(() => api.messages.length - base, MESSAGES, WAIT_MS, `round ${round} replies`);
                    answered = api.messages.slice(base).map((m) => {
                        const match = / ([0-9]+) \[history/.exec(m.body);
                        return { i: match ? Number(match[1]) : null, at: Date.parse(m.received_at) };
                    });
                }
                const cpu1 = cpuSeconds(worker.proc.pid, peerPid, ticksPerSecond);
                const acksAfter = await ackStatementStats(worker.url);
                const wallSeconds = (Date.now() - t0) / 1000;
                // CPU per message (ms) and cores busy, by process group, over the round.
                const cpu = Object.fromEntries(Object.keys(cpu1).map((k) => [k, {
                    msPerMessage: ((cpu1[k] - cpu0[k]) * 1000) / MESSAGES,
                    cores: (cpu1[k] - cpu0[k]) / wallSeconds,
                }]));
                const recv = answered.map((m) => m.at).sort((a, b) => a - b);
                const tEnd = recv[recv.length - 1];
                const overall = MESSAGES / ((tEnd - t0) / 1000);
                const lo = recv[Math.floor(0.1 * MESSAGES)];
                const hi = recv[Math.floor(0.9 * MESSAGES) - 1];
                const sustained = (Math.floor(0.9 * MESSAGES) - Math.floor(0.1 * MESSAGES)) / ((hi - lo) / 1000);
                // Latency per message, matched by the unique body the echo agent repeats.
                const rows = await db.query(`SELECT substring(m.body from '[0-9]+$')::int AS i,
                        (extract(epoch FROM m.created_at) * 1000)::float8 AS created_ms,
                        (j.result ->> 'latency_ms')::int AS agent_ms
                    FROM darkspere.messages m JOIN darkspere.jobs j ON j.message_id = m.message_id AND j.kind = 'agent_call'
                    WHERE m.direction = 'in' AND m.account_id = $1 AND m.body LIKE $2`, [accounts.fast, `bench ${tag} %`]);
                const byIndex = new Map(rows.map((r) => [r.i, r]));
                const latClient = [];
                const latDb = [];
                const agentMs = [];
                for (const { i, at } of answered) {
                    const r = i !== null && byIndex.get(i);
                    if (!r) continue;
                    agentMs.push(r.agent_ms);
                    latClient.push(at - sent.sentAt[r.i] - r.agent_ms);
                    latDb.push(at - r.created_ms - r.agent_ms);
                }
                const res = {
                    round, tpcb, overall, sustained, ratio: sustained / tpcb,
                    postSeconds: (tPosted - t0) / 1000,
                    webhookStatuses: sent.statuses,
                    webhookP50: pct(sent.respMs, 50), webhookP99: pct(sent.respMs, 99),
                    matched: latClient.length,
                    p50: pct(latClient, 50), p99: pct(latClient, 99),
                    dbP50: pct(latDb, 50), dbP99: pct(latDb, 99),
                    agentP50: pct(agentMs, 50),
                    cpu,
                };
                results.inbound.push(res);
                log(`  inbound round ${round}: tpcb ${f1(tpcb)} tps | replies ${MESSAGES} overall ${f1(overall)}/s sustained(10-90%) ${f1(sustained)}/s`
                    + ` ratio ${res.ratio.toFixed(3)} | platform latency p50 ${res.p50} ms p99 ${res.p99} ms (db-clock p50 ${res.dbP50.toFixed(1)} p99 ${res.dbP99.toFixed(1)})`
                    + ` | agent p50 ${res.agentP50} ms | webhook resp p50 ${res.webhookP50} p99 ${res.webhookP99} ms | statuses ${JSON.stringify(sent.statuses)} matched ${res.matched}`);
                log(`    cpu per message: ${Object.entries(cpu).map(([k, v]) => `${k} ${v.msPerMessage.toFixed(2)} ms (${v.cores.toFixed(2)} cores)`).join(', ')}`);
                log(`    ${ackStatementLine(acksBefore, acksAfter)}`);
                if (PG_STATS) await printStatementStats(db);
            }
            const I = results.inbound;
            log(`== inbound medians (${I.length} rounds): tpcb ${f1(median(I.map((r) => r.tpcb)))} tps, sustained ${f1(median(I.map((r) => r.sustained)))} replies/s,`
                + ` overall ${f1(median(I.map((r) => r.overall)))} replies/s, ratio sustained/tpcb ${median(I.map((r) => r.ratio)).toFixed(3)} (target >= 0.5),`
                + ` platform latency p50 ${median(I.map((r) => r.p50))} ms p99 ${median(I.map((r) => r.p99))} ms`
                + ` (db-clock p50 ${median(I.map((r) => r.dbP50)).toFixed(1)} p99 ${median(I.map((r) => r.dbP99)).toFixed(1)})`);
        }

        if (PARTS.has('slow')) {
            if (workerBase !== api.url) {
                // The probe's replies are awaited at the Node stand-in.
                await worker.stop('SIGTERM');
                worker = null;
                worker = await newWorker(api.url);
                workerBase = api.url;
                log(`== worker restarted against the Node Twilio stand-in: pid ${worker.proc.pid}`);
            }
            // Probe: one fast-agent text every 50 ms, end-to-end (webhook sent → reply at the stand-in).
            let slowReplies = 0;
            const countSlow = (m) => { if (m.from === SLOW_NUMBER) slowReplies += 1; };
            api.events.on('message', countSlow);
            const probeReplies = replyWaiter(api, /(probe \S+ [0-9]+) \[history/, 60000);
            const sentAt = new Map(); // probe body → Date.now() before its webhook was posted
            const receivedAt = new Map(); // probe body → when the stand-in received its reply
            const probe = async (label, count) => {
                const lat = [];
                const pending = [];
                for (let i = 0; i < count; i++) {
                    const from = phone(30000, i);
                    const body = `probe ${label} ${i}`;
                    const replied = probeReplies.awaitReply(body);
                    const t = Date.now();
                    sentAt.set(body, t);
                    pending.push((async () => {
                        await signedPost({ target: `${worker.url}/twilio/sms`, authToken, params: inboundParams({ accountSid: SID, from, to: FAST_NUMBER, body }), timeoutMs: 30000 });
                        const at = await replied;
                        receivedAt.set(body, at);
                        lat.push(at - t);
                    })());
                    await sleep(50);
                }
                await Promise.all(pending);
                return lat;
            };
            const before = await probe('idle', 60);
            // SLOW_CALLS agent calls, created in SQL in batches of 500 (one per distinct phone, so no per-session
            // ordering holds any back), committed within about a second.
            const t0 = Date.now();
            for (let b = 0; b < SLOW_CALLS; b += 500) {
                await db.query(`SELECT count(*) FROM generate_series($1::int, $2::int) g,
                    LATERAL darkspere.receive_sms($3, $4, '+1400' || lpad(g::text, 7, '0'), 'slow ' || g, 'SMslow' || g || '_' || $5)`,
                [b, Math.min(SLOW_CALLS, b + 500) - 1, SID, SLOW_NUMBER, randomHex(4)]);
            }
            const tCreated = Date.now();
            let peak = 0;
            let sampling = true;
            const sampler = (async () => {
                while (sampling) {
                    peak = Math.max(peak, slow.requests.length - slow.answered);
                    await sleep(20);
                }
            })();
            const answeredBefore = slow.answered;
            if (PG_STATS) await db.query('SELECT pg_stat_statements_reset()');
            const acksBefore = await ackStatementStats(worker.url);
            const during = await probe('load', 60);
            await waitCount(() => slowReplies, SLOW_CALLS, WAIT_MS, 'slow replies');
            const tDone = Date.now();
            sampling = false;
            await sampler;
            const acksAfter = await ackStatementStats(worker.url);
            const stagesIdle = await probeStages(db, sentAt, receivedAt, 'probe idle ', workerLog);
            const stages = await probeStages(db, sentAt, receivedAt, 'probe load ', workerLog);
            const st = procStatus(worker.proc.pid);
            const dead = await db.value(`SELECT count(*) FROM darkspere.jobs WHERE state = 'dead'`);
            probeReplies.stop();
            api.events.off('message', countSlow);
            results.slow = {
                calls: SLOW_CALLS, createdMs: tCreated - t0, allRepliesMs: tDone - t0,
                peakInAgent: peak, answered: slow.answered - answeredBefore,
                idleP50: pct(before, 50), idleP99: pct(before, 99), loadP50: pct(during, 50), loadP99: pct(during, 99),
                platformIdle: [50, 99].map((q) => pct(stagesIdle.map((x) => x.platform), q)),
                platformLoad: [50, 99].map((q) => pct(stages.map((x) => x.platform), q)),
                hwmMiB: st.hwmMiB, rssMiB: st.rssMiB, dead,
            };
            log(`== slow agent: ${SLOW_CALLS} calls created in ${tCreated - t0} ms; all ${SLOW_CALLS} replies at the stand-in after ${tDone - t0} ms;`
                + ` peak concurrent calls held by the 2 s agent ${peak}; answered ${slow.answered - answeredBefore}; dead jobs ${dead}`);
            log(`   fast agent end-to-end latency: idle p50 ${pct(before, 50)} ms p99 ${pct(before, 99)} ms | during load p50 ${pct(during, 50)} ms p99 ${pct(during, 99)} ms`);
            log(`   worker VmHWM ${st.hwmMiB.toFixed(1)} MiB, VmRSS ${st.rssMiB.toFixed(1)} MiB`);
            logProbeStages('idle', stagesIdle);
            logProbeStages('during load', stages);
            log(`   ${ackStatementLine(acksBefore, acksAfter)} (during the load)`);
            if (PG_STATS) await printStatementStats(db);
        }

        if (PARTS.has('outbound')) {
            for (let round = 1; round <= ROUNDS; round++) {
                await worker.stop('SIGTERM');
                worker = null;
                const tag = randomHex(4);
                // OUTBOUND sessions each with one agent_call, claimed and completed by a stand-in "worker" in SQL:
                // each completion enqueues one sms_send job, which is what we time.
                await db.query(`SELECT count(*) FROM generate_series(1, $1::int) g,
                    LATERAL darkspere.receive_sms($2, $3, '+1500' || lpad(g::text, 7, '0'), 'out ' || g, 'SMout' || g || '_' || $4)`,
                [OUTBOUND, SID, OUT_NUMBER, tag]);
                const done = await db.value(`SELECT count(*) FROM darkspere.claim_jobs('bench-prep', 10000, '10 minutes') c
                    CROSS JOIN LATERAL darkspere.complete_job(c.job_id, c.attempt, jsonb_build_object('reply', 'outbound ' || c.job_id, 'latency_ms', 1)) ok
                    WHERE c.kind = 'agent_call' AND ok`);
                const ready = await db.value(`SELECT count(*) FROM darkspere.jobs WHERE kind = 'sms_send' AND state = 'pending'`);
                const base = api.messages.length;
                const t0 = Date.now();
                worker = await newWorker(api.url);
                workerBase = api.url;
                const tReady = Date.now();
                await waitCount(() => api.messages.length - base, ready, WAIT_MS, 'outbound sends');
                const recv = api.messages.slice(base).map((m) => Date.parse(m.received_at)).sort((a, b) => a - b);
                const span = (recv[recv.length - 1] - recv[0]) / 1000;
                // acks: wait until the queue holds no pending/running sms_send (bounded)
                const deadline = Date.now() + WAIT_MS;
                while (Number(await db.value(`SELECT count(*) FROM darkspere.jobs WHERE kind = 'sms_send' AND state IN ('pending','running')`)) > 0) {
                    if (Date.now() > deadline) throw new Error('outbound acks did not finish');
                    await sleep(20);
                }
                const tAcked = Date.now();
                const res = { round, completedPrep: Number(done), jobs: Number(ready), sendRate: ready / span, ackedRate: ready / ((tAcked - tReady) / 1000), startMs: tReady - t0 };
                results.outbound.push(res);
                log(`  outbound round ${round}: ${ready} sms_send jobs; first→last send ${f1(span * 1000)} ms = ${f1(res.sendRate)} sends/s;`
                    + ` worker ready→all acked ${tAcked - tReady} ms = ${f1(res.ackedRate)} jobs/s`);
            }
            const O = results.outbound;
            log(`== outbound medians: ${f1(median(O.map((r) => r.sendRate)))} sends/s, ${f1(median(O.map((r) => r.ackedRate)))} jobs/s acked`);
        }
        if (worker) log(`== worker final VmHWM ${procStatus(worker.proc.pid).hwmMiB.toFixed(1)} MiB`);
        log(`RESULTS ${JSON.stringify(results)}`);
        rmSync(logDir, { recursive: true, force: true });
    } catch (err) {
        log(`== worker logs kept in ${logDir}`);
        throw err;
    } finally {
        if (worker) await worker.stop('SIGTERM').catch(() => worker.kill());
        await Promise.allSettled([out.fast.close(), out.slow.close(), out.api.close(), out.native?.close()]);
        await db.end();
        await cluster.destroy();
    }
}

main().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
});
