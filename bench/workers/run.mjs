// bench/workers/run.mjs — replies/s with 1, 2 and 3 darkspere-worker processes on one database, each against
// pgbench's built-in TPC-B-like run just before it on the same cluster (bench/e2e/run.mjs's inbound part, with
// the webhooks spread over several workers).
//
//   bench/run-workers.sh      (checks the build, then node bench/workers/run.mjs)
//
// Environment: ROUNDS (3), WORKERS ("1,2,3": the worker counts measured in every round, in this order in odd
// rounds and reversed in even ones), MESSAGES per measurement (4000), CONCURRENCY = conversations at once (300),
// PHONES (2000), TPCB_SECONDS (10), WARMUP messages before the first round (1000), WORKER_ARGS (extra worker
// flags), AUTOVACUUM_NAPTIME (10s).
//
// Per round and worker count n: start n workers (distinct names and ports, the worker's default settings except
// deadlines/lease as in bench/e2e/run.mjs), pgbench -c 8 -j 2 -T TPCB_SECONDS (workers idle), then MESSAGES
// signed webhooks from CONCURRENCY closed-loop conversations of the native peer (bench/peer/), conversation c
// posting to worker c % n, each webhook signed for that worker's own URL. The native peer is also the instant
// echo agent and the Twilio stand-in for every worker. Throughput = replies received by the stand-in per second
// over the 10 %–90 % replies; ratio = that / the TPC-B TPS just measured. CPU seconds by process group (every
// process named postgres, the workers, the native peer, this Node process) over the measurement, from /proc.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startCluster } from '../../test/e2e/lib/cluster.mjs';
import { randomHex, sleep } from '../../test/e2e/lib/net.mjs';
import { startWorker } from '../../test/e2e/lib/worker.mjs';
import { startNativePeer } from '../e2e/native-peer.mjs';

const run = promisify(execFile);
const env = process.env;
const ROUNDS = Number(env.ROUNDS || 3);
const WORKERS = (env.WORKERS || '1,2,3').split(',').map(Number);
const MESSAGES = Number(env.MESSAGES || 4000);
const CONCURRENCY = Number(env.CONCURRENCY || 300);
const PHONES = Number(env.PHONES || 2000);
const TPCB_SECONDS = Number(env.TPCB_SECONDS || 10);
const WARMUP = Number(env.WARMUP || 1000);
const AUTOVACUUM_NAPTIME = env.AUTOVACUUM_NAPTIME || '10s';
if (!/^[0-9]+(s|min)?$/.test(AUTOVACUUM_NAPTIME)) throw new Error(`AUTOVACUUM_NAPTIME must be like 10s or 1min, not ${AUTOVACUUM_NAPTIME}`);
if (!WORKERS.every((n) => Number.isInteger(n) && n >= 1 && n <= 8)) throw new Error(`WORKERS must list counts 1..8, not ${env.WORKERS}`);
const WAIT_MS = 180000;

const SID = 'AC0be0c000000000000000000000000002';
const NUMBER = '+14155550101';

const log = (...a) => console.log(...a);
const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    if (!s.length) return NaN;
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : String(x));

// cpuSeconds sums user+system CPU seconds of our cluster's PostgreSQL processes (the postmaster in data/
// postmaster.pid and its children: other clusters on a shared machine are not counted), the workers (by pid), the
// native peer, and this process; `machine` is every core's busy time from /proc/stat (all users), so
// machine − the rest is what other processes on the machine took meanwhile.
function cpuSeconds(postmasterPid, workerPids, peerPid, ticksPerSecond) {
    const sum = { postgres: 0, workers: 0, peer: 0, harness: 0, machine: 0 };
    const workers = new Set(workerPids);
    for (const entry of readdirSync('/proc')) {
        if (!/^[0-9]+$/.test(entry)) continue;
        let stat;
        try {
            stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        } catch {
            continue;
        }
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields[0] is field 3 (state)
        const ticks = Number(fields[11]) + Number(fields[12]);
        const pid = Number(entry);
        const ppid = Number(fields[1]);
        if (pid === process.pid) sum.harness += ticks;
        else if (workers.has(pid)) sum.workers += ticks;
        else if (pid === peerPid) sum.peer += ticks;
        else if (pid === postmasterPid || ppid === postmasterPid) sum.postgres += ticks;
    }
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    sum.machine = cpu.slice(0, 8).reduce((a, b) => a + b, 0) - cpu[3] - cpu[4]; // all but idle and iowait
    for (const k of Object.keys(sum)) sum[k] /= ticksPerSecond;
    return sum;
}

// batchStats sums, over the workers, the statements and items of their ack and receive batches and the batches
// that failed and were redone one by one (GET /metrics).
async function batchStats(workers) {
    const sum = { acks: 0, ackStatements: 0, received: 0, receiveStatements: 0, ackFallbacks: 0, receiveFallbacks: 0 };
    for (const w of workers) {
        const text = await (await fetch(`${w.url}/metrics`, { signal: AbortSignal.timeout(10000) })).text();
        const value = (name) => Number((new RegExp(`^${name} (\\S+)$`, 'm').exec(text) || [])[1] || 0);
        sum.acks += value('darkspere_ack_batch_size_sum');
        sum.ackStatements += value('darkspere_ack_batch_size_count');
        sum.received += value('darkspere_receive_batch_size_sum');
        sum.receiveStatements += value('darkspere_receive_batch_size_count');
        sum.ackFallbacks += value('darkspere_ack_batch_fallbacks_total');
        sum.receiveFallbacks += value('darkspere_receive_batch_fallbacks_total');
    }
    return sum;
}

async function main() {
    log(`== nproc ${cpus().length}, cpu ${cpus()[0]?.model}, memory ${(totalmem() / 2 ** 30).toFixed(1)} GiB`);
    log(`== ROUNDS=${ROUNDS} WORKERS=${WORKERS.join(',')} MESSAGES=${MESSAGES} CONCURRENCY=${CONCURRENCY} PHONES=${PHONES}`
        + ` TPCB_SECONDS=${TPCB_SECONDS} WARMUP=${WARMUP}`);
    const ticksPerSecond = Number((await run('getconf', ['CLK_TCK'])).stdout.trim()) || 100;
    const cluster = await startCluster();
    const { name: dbName, db } = await cluster.createDatabase('bench');
    const postmasterPid = Number(readFileSync(join(cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    const authToken = randomHex(32);
    const peer = await startNativePeer({ [SID]: authToken });
    const logDir = mkdtempSync(join(tmpdir(), 'darkspere-bench-workers-'));
    let running = [];
    let started = 0;
    const workerArgs = ['--max-in-flight-per-account', '2500'];
    if (env.WORKER_ARGS) workerArgs.push(...env.WORKER_ARGS.split(' ').filter(Boolean));
    const startWorkers = async (n) => {
        running = [];
        for (let k = 1; k <= n; k++) {
            started += 1;
            running.push(await startWorker({
                logFile: join(logDir, `worker-${started}.log`),
                name: `bench-w${k}-${started}`,
                conninfo: cluster.conninfo(dbName),
                twilioAccounts: { [SID]: authToken },
                twilioBase: peer.url,
                agentDeadlineMs: 10000,
                twilioDeadlineMs: 10000,
                leaseSeconds: 30,
                pollIntervalMs: 1000,
                tickIntervalMs: 1000,
                extraArgs: workerArgs,
            }));
        }
    };
    const stopWorkers = async () => {
        await Promise.all(running.map((w) => w.stop('SIGTERM').catch(() => w.kill())));
        running = [];
    };
    const pgbench = async (args) => (await run('pgbench', args, {
        env: { ...process.env, ...cluster.env, PGDATABASE: dbName }, maxBuffer: 16 << 20, timeout: (TPCB_SECONDS + 120) * 1000,
    })).stdout;
    const round = async (tag, messages) => {
        const r = await peer.round({
            tag, body_prefix: `bench ${tag} `, messages, concurrency: CONCURRENCY, phones: PHONES, from_base: '20000',
            to: NUMBER, targets: running.map((w) => `${w.url}/twilio/sms`), account_sid: SID, auth_token: authToken,
            post_timeout_ms: 30000, reply_timeout_ms: WAIT_MS, deadline_ms: 2 * WAIT_MS,
        });
        // A webhook the worker answered with an error gets no reply (Twilio would not retry it either): counted
        // and reported, not waited for. Every accepted one must be answered.
        const accepted = Object.entries(r.statuses).filter(([k]) => /^2\d\d$/.test(k)).reduce((a, [, v]) => a + v, 0);
        if (r.received < accepted) {
            throw new Error(`round ${tag}: ${r.received}/${accepted} replies to accepted webhooks (reply timeouts ${r.replyTimeouts}, statuses ${JSON.stringify(r.statuses)})`);
        }
        return r;
    };
    try {
        await db.query(`ALTER SYSTEM SET autovacuum_naptime = '${AUTOVACUUM_NAPTIME}'`);
        await db.query('SELECT pg_reload_conf()');
        // As in bench/e2e/run.mjs: benchmark phones text far more often than people; lift the per-phone rules.
        await db.query(`UPDATE darkspere.rate_limit_rules SET max_hits = 1000000 WHERE scope IN ('phone', 'phone_ceiling', 'phone_out')`);
        const account = await db.value(`SELECT darkspere.create_account('bench-workers', 'enterprise')`);
        await db.query('SELECT darkspere.add_number($1, $2, $3)', [account, NUMBER, SID]);
        await db.query(`SELECT * FROM darkspere.register_agent($1, 'fast-agent', $2, 'http', 1000)`, [account, `${peer.url}/agent`]);
        await db.query('ALTER TABLE darkspere.agents DROP CONSTRAINT agents_capacity_max');
        await db.query('UPDATE darkspere.agents SET capacity = 100000');
        log(`== pgbench -i -s 10 (database ${dbName})`);
        await pgbench(['-i', '-q', '-s', '10']);

        await startWorkers(Math.max(...WORKERS));
        log(`== warm-up: ${WARMUP} messages over ${running.length} workers (sessions for the phones)`);
        await round('warm', WARMUP);
        await stopWorkers();

        const results = [];
        for (let r = 1; r <= ROUNDS; r++) {
            const order = r % 2 ? WORKERS : [...WORKERS].reverse();
            for (const n of order) {
                await startWorkers(n);
                const tpcbOut = await pgbench(['-c', '8', '-j', '2', '-T', String(TPCB_SECONDS)]);
                const tpcb = Number(/tps = ([\d.]+) \(without initial/.exec(tpcbOut)[1]);
                await sleep(1000);
                const pids = running.map((w) => w.proc.pid);
                const cpu0 = cpuSeconds(postmasterPid, pids, peer.proc.pid, ticksPerSecond);
                const batches0 = await batchStats(running);
                const t0 = Date.now();
                const res = await round(`r${r}n${n}`, MESSAGES);
                const wall = (Date.now() - t0) / 1000;
                const cpu1 = cpuSeconds(postmasterPid, pids, peer.proc.pid, ticksPerSecond);
                const batches1 = await batchStats(running);
                const batches = Object.fromEntries(Object.keys(batches1).map((k) => [k, batches1[k] - batches0[k]]));
                const perWorker = running.map((w) => {
                    const stat = readFileSync(`/proc/${w.proc.pid}/stat`, 'utf8');
                    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
                    return (Number(f[11]) + Number(f[12])) / ticksPerSecond;
                });
                const recv = res.receivedAt.filter((x) => x !== null).sort((a, b) => a - b);
                const lo = recv[Math.floor(0.1 * recv.length)];
                const hi = recv[Math.floor(0.9 * recv.length) - 1];
                const sustained = (Math.floor(0.9 * recv.length) - Math.floor(0.1 * recv.length)) / ((hi - lo) / 1000);
                const cores = Object.fromEntries(Object.keys(cpu1).map((k) => [k, (cpu1[k] - cpu0[k]) / wall]));
                const msPer = Object.fromEntries(Object.keys(cpu1).map((k) => [k, ((cpu1[k] - cpu0[k]) * 1000) / MESSAGES]));
                const total = cores.postgres + cores.workers + cores.peer + cores.harness;
                cores.others = Math.max(0, cores.machine - total); // other users of the shared machine
                results.push({ round: r, workers: n, tpcb, sustained, ratio: sustained / tpcb, cores, msPer, total, statuses: res.statuses, batches });
                log(`  ${new Date(t0).toISOString().slice(11, 19)} round ${r}, ${n} worker(s): tpcb ${f1(tpcb)} tps | ${MESSAGES} replies, sustained ${f1(sustained)}/s | ratio ${(sustained / tpcb).toFixed(3)}`
                    + ` | statuses ${JSON.stringify(res.statuses)}`);
                log(`    cores busy: ${['postgres', 'workers', 'peer', 'harness'].map((k) => `${k} ${cores[k].toFixed(2)}`).join(', ')} = ${total.toFixed(2)};`
                    + ` other processes ${cores.others.toFixed(2)}; machine ${cores.machine.toFixed(2)} of ${cpus().length}`
                    + ` | cpu per message: ${Object.entries(msPer).filter(([k]) => k !== 'machine').map(([k, v]) => `${k} ${v.toFixed(2)} ms`).join(', ')}`
                    + ` | worker CPU since start: ${perWorker.map((s) => s.toFixed(1)).join(' / ')} s`);
                log(`    batches (all workers): ${batches.ackStatements} ack statements, ${(batches.acks / batches.ackStatements).toFixed(1)} acks each;`
                    + ` ${batches.receiveStatements} receive_sms_batch statements, ${(batches.received / batches.receiveStatements).toFixed(1)} messages each;`
                    + ` redone one by one after an error: ${batches.ackFallbacks} ack and ${batches.receiveFallbacks} receive batches`);
                await stopWorkers();
            }
        }
        log('== medians by worker count');
        log('| workers | TPC-B TPS | replies/s (sustained) | ratio (rounds) | cores busy: postgres / workers / peer / harness = ours | other processes | CPU per message: postgres / workers / peer | webhooks not 2xx (all rounds) |');
        log('|---:|---:|---:|---:|---|---:|---|---:|');
        for (const n of WORKERS) {
            const R = results.filter((x) => x.workers === n);
            const m = (f) => median(R.map(f));
            log(`| ${n} | ${m((x) => x.tpcb).toFixed(0)} | ${m((x) => x.sustained).toFixed(0)} | ${m((x) => x.ratio).toFixed(3)}`
                + ` (${R.map((x) => x.ratio.toFixed(3)).join(', ')}) | ${['postgres', 'workers', 'peer', 'harness'].map((k) => m((x) => x.cores[k]).toFixed(2)).join(' / ')}`
                + ` = ${m((x) => x.total).toFixed(2)} | ${m((x) => x.cores.others).toFixed(2)}`
                + ` | ${['postgres', 'workers', 'peer'].map((k) => m((x) => x.msPer[k]).toFixed(2)).join(' / ')} ms`
                + ` | ${R.reduce((a, x) => a + Object.entries(x.statuses).filter(([k]) => !/^2\d\d$/.test(k)).reduce((b, [, v]) => b + v, 0), 0)} |`);
        }
        log(`RESULTS ${JSON.stringify(results)}`);
        // Webhooks answered with an error: the server log says why (e.g. a deadlock between two workers' statements).
        const serverLog = readFileSync(join(cluster.dir, 'server.log'), 'utf8').split('\n');
        const errors = serverLog.filter((l) => /ERROR:/.test(l));
        log(`== server log: ${errors.length} ERROR lines${errors.length ? '; the first with their details:' : ''}`);
        for (const [i, l] of serverLog.entries()) {
            if (/ERROR:/.test(l) && errors.indexOf(l) < 3) log(serverLog.slice(i, i + 8).map((x) => `   ${x.slice(0, 400)}`).join('\n'));
        }
        rmSync(logDir, { recursive: true, force: true });
    } catch (err) {
        log(`== worker logs kept in ${logDir}`);
        throw err;
    } finally {
        await stopWorkers();
        await peer.close();
        await db.end();
        await cluster.destroy();
    }
}

main().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
});
