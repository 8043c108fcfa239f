// test/e2e/lib/worker.mjs — runs the real darkspere-worker as a child process and reads its JSON-lines log.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { onExit } from './cleanup.mjs';
import { freePort, sleep, waitFor } from './net.mjs';
import { workerBinary } from './paths.mjs';

const READY_TIMEOUT_MS = 20000;
const STOP_TIMEOUT_MS = 15000;

// A worker built with -DSANITIZE=ON (scripts/test sanitize) prints ASan/LSan/UBSan reports on stderr. Any such
// line fails the test that stopped the worker (stop() throws) and, as a backstop for a worker that died on its
// own or was killed, the whole test file (exit code 1, report printed).
const SANITIZER_REPORT = /ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: |SUMMARY: (AddressSanitizer|UndefinedBehaviorSanitizer|LeakSanitizer)/;
const sanitizerReports = [];
process.on('exit', () => {
    if (!sanitizerReports.length) return;
    for (const r of sanitizerReports) process.stderr.write(`sanitizer report from worker ${r.name}:\n${r.lines.join('\n')}\n`);
    process.exitCode = 1;
});

// startWorker spawns darkspere-worker on a free loopback port (or `port`, to restart on the same address) and
// resolves once it logs {"msg":"ready"}. The public URL is the listen address, so signatures are computed
// over the URL tests post to. Resolves with
// {proc, port, url, name, logs, waitForLog(pred), stop(signal), kill(), exited}.
// With logFile, the worker writes its log to that file and this process does not read it (benchmarks: parsing
// every line would put the harness's CPU into the measurement); logs stays empty and waitForLog is unavailable.
export async function startWorker({
    conninfo,
    twilioAccounts = {},
    twilioBase,
    port,
    name = `e2e-${process.pid}-${Math.floor(Math.random() * 1e6)}`,
    agentDeadlineMs = 3000,
    twilioDeadlineMs = 3000,
    leaseSeconds,
    pollIntervalMs = 250,
    tickIntervalMs = 250,
    // Every e2e peer (agents, the Twilio stand-in) listens on plain http at 127.0.0.1, which the worker refuses
    // by default: the tests turn both settings on explicitly. A test of those defaults passes false.
    agentAllowPrivate = true,
    allowInsecureHttp = true,
    extraArgs = [],
    env = {},
    echo = Boolean(process.env.E2E_WORKER_LOG),
    logFile = null,
} = {}) {
    const listenPort = port ?? (await freePort());
    const url = `http://127.0.0.1:${listenPort}`;
    const lease = leaseSeconds ?? Math.ceil((Math.max(agentDeadlineMs, twilioDeadlineMs) + 2000) / 1000);
    const args = [
        '--db', conninfo,
        '--listen', `127.0.0.1:${listenPort}`,
        '--public-url', url,
        '--worker-name', name,
        '--agent-deadline-ms', String(agentDeadlineMs),
        '--twilio-deadline-ms', String(twilioDeadlineMs),
        '--lease-seconds', String(lease),
        '--poll-interval-ms', String(pollIntervalMs),
        '--tick-interval-ms', String(tickIntervalMs),
        '--agent-allow-private', agentAllowPrivate ? 'on' : 'off',
        '--allow-insecure-http', allowInsecureHttp ? 'on' : 'off',
    ];
    for (const [sid, token] of Object.entries(twilioAccounts)) args.push('--twilio-account', `${sid}:${token}`);
    if (twilioBase) args.push('--twilio-base', twilioBase);
    args.push(...extraArgs);

    const logFd = logFile ? openSync(logFile, 'a') : null;
    const proc = spawn(workerBinary(), args, {
        stdio: ['ignore', logFd ?? 'pipe', logFd ?? 'pipe'],
        env: { ...process.env, ...env },
    });
    if (logFd !== null) closeSync(logFd); // the child holds its own copy
    const unregister = onExit(() => proc.kill('SIGKILL'));
    const logs = [];
    const output = [];
    let exit = null;
    let report = null; // {name, lines}: the first sanitizer report in the output, with the lines after it
    const exited = new Promise((resolve) => {
        proc.on('exit', (code, signal) => {
            exit = { code, signal };
            unregister();
            resolve(exit);
        });
    });
    // 'close' comes after the last output is read: a report printed while exiting (LeakSanitizer) is in by then.
    const closed = new Promise((resolve) => proc.on('close', resolve));
    let partial = '';
    const onData = (chunk) => {
        partial += chunk;
        let nl;
        while ((nl = partial.indexOf('\n')) >= 0) {
            const line = partial.slice(0, nl);
            partial = partial.slice(nl + 1);
            if (!line.trim()) continue;
            output.push(line);
            if (output.length > 5000) output.shift();
            if (report) {
                if (report.lines.length < 200) report.lines.push(line);
            } else if (SANITIZER_REPORT.test(line)) {
                report = { name, lines: [line] };
                sanitizerReports.push(report);
            }
            if (echo) process.stderr.write(`[${name}] ${line}\n`);
            try {
                logs.push(JSON.parse(line));
            } catch {
                logs.push({ raw: line });
            }
        }
    };
    if (!logFile) {
        proc.stderr.setEncoding('utf8').on('data', onData);
        proc.stdout.setEncoding('utf8').on('data', onData);
    }
    const fileLines = () => readFileSync(logFile, 'utf8').split('\n').filter((l) => l.trim());
    // assertNoSanitizerReport throws the worker's sanitizer report, if it printed one.
    const assertNoSanitizerReport = async () => {
        if (exit) await closed;
        const lines = logFile ? fileLines() : null;
        const at = lines ? lines.findIndex((l) => SANITIZER_REPORT.test(l)) : -1;
        const found = report ?? (at >= 0 ? { lines: lines.slice(at, at + 200) } : null);
        if (found) throw new Error(`worker ${name}: sanitizer report:\n${found.lines.join('\n')}`);
    };
    const tail = (n = 30) => (logFile ? fileLines() : output).slice(-n).join('\n');
    const handle = {
        proc,
        port: listenPort,
        url,
        name,
        logs,
        tail,
        exited,
        get exit() {
            return exit;
        },
        assertNoSanitizerReport,
        // waitForLog resolves with the first log record matching pred.
        waitForLog(pred, { timeoutMs = 10000, message = 'a worker log line' } = {}) {
            if (logFile) throw new Error('waitForLog: the worker logs to a file (logFile)');
            return waitFor(() => (exit && !logs.some(pred) ? Promise.reject(new Error(`worker exited ${JSON.stringify(exit)}`)) : logs.find(pred)),
                { timeoutMs, message: () => `${message}; worker log tail:\n${tail()}` });
        },
        // stop sends a signal (SIGTERM drains) and resolves with {code, signal} once the process is gone; it
        // throws when the worker printed a sanitizer report (at any time, exit included).
        async stop(signal = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS) {
            if (exit) {
                await assertNoSanitizerReport();
                return exit;
            }
            proc.kill(signal);
            const result = await Promise.race([exited, sleep(timeoutMs).then(() => null)]);
            if (result) {
                await assertNoSanitizerReport();
                return result;
            }
            proc.kill('SIGKILL');
            await exited;
            throw new Error(`worker did not exit within ${timeoutMs} ms of ${signal}; log tail:\n${tail()}`);
        },
        // kill is SIGKILL: no drain, no acks — what a crash looks like to the queue.
        async kill() {
            if (exit) return exit;
            proc.kill('SIGKILL');
            return exited;
        },
    };

    try {
        await Promise.race([
            logFile
                ? waitFor(() => fileLines().some((l) => l.includes('"msg":"ready"')),
                    { timeoutMs: READY_TIMEOUT_MS, message: 'worker {"msg":"ready"} in its log file' })
                : handle.waitForLog((r) => r.msg === 'ready', { timeoutMs: READY_TIMEOUT_MS, message: 'worker {"msg":"ready"}' }),
            exited.then((e) => {
                throw new Error(`worker exited before ready (${JSON.stringify(e)}); output:\n${tail()}`);
            }),
        ]);
    } catch (err) {
        proc.kill('SIGKILL');
        throw err;
    }
    return handle;
}

// readMetric fetches the worker's GET /metrics and returns the value of one unlabelled series (a counter, a gauge,
// or a histogram's _count/_sum), NaN when absent.
export async function readMetric(worker, name) {
    const text = await (await fetch(`${worker.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    return Number((text.match(new RegExp(`^${name} (\\S+)$`, 'm')) || [])[1] ?? NaN);
}
