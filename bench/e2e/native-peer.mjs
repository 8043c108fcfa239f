// bench/e2e/native-peer.mjs — drives darkspere-bench-peer (bench/peer/) from a benchmark harness; shared by
// bench/e2e/run.mjs and bench/workers/run.mjs.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { onExit } from '../../test/e2e/lib/cleanup.mjs';
import { sleep } from '../../test/e2e/lib/net.mjs';
import { REPO_ROOT } from '../../test/e2e/lib/paths.mjs';

const env = process.env;

// startNativePeer runs darkspere-bench-peer (bench/peer/) with the account's credentials and resolves with
// {proc, url, round(spec), close()}. The peer answers each stdin command with one JSON line on stdout; every wait
// for a line is bounded, and a peer that exits fails whatever waits.
export async function startNativePeer(accounts) {
    const bin = env.BENCH_PEER_BIN || join(REPO_ROOT, 'build', 'bench', 'peer', 'darkspere-bench-peer');
    const args = ['--port', '0', '--agent-name', 'fast'];
    for (const [sid, token] of Object.entries(accounts)) args.push('--account', `${sid}:${token}`);
    const proc = spawn(bin, args, { stdio: ['pipe', 'pipe', 'inherit'] });
    const unregister = onExit(() => proc.kill('SIGKILL'));
    const waiting = []; // {resolve, reject} for the next lines, in order
    let exit = null;
    const exited = new Promise((resolve) => {
        const gone = (why) => {
            if (exit) return;
            exit = why;
            unregister();
            for (const w of waiting.splice(0)) w.reject(new Error(`darkspere-bench-peer ${why}`));
            resolve();
        };
        proc.on('exit', (code, signal) => gone(`exited (code ${code}, signal ${signal})`));
        proc.on('error', (err) => gone(`failed: ${err.message} (${bin}; run \`make\`)`));
    });
    createInterface({ input: proc.stdout }).on('line', (line) => waiting.shift()?.resolve(line));
    const nextLine = (timeoutMs, what) => new Promise((resolve, reject) => {
        if (exit) return reject(new Error(`darkspere-bench-peer ${exit}`));
        const w = {
            resolve: (line) => {
                clearTimeout(timer);
                try {
                    resolve(JSON.parse(line));
                } catch {
                    reject(new Error(`darkspere-bench-peer: not JSON: ${line.slice(0, 200)}`));
                }
            },
            reject: (err) => {
                clearTimeout(timer);
                reject(err);
            },
        };
        const timer = setTimeout(() => {
            waiting.splice(waiting.indexOf(w), 1);
            reject(new Error(`darkspere-bench-peer: no ${what} within ${timeoutMs} ms`));
        }, timeoutMs);
        waiting.push(w);
    });
    const hello = await nextLine(10000, 'listening line');
    return {
        proc,
        url: hello.url,
        // round runs one load round (spec: see bench/peer/round.hpp) and resolves with its result line.
        async round(spec) {
            const answer = nextLine(spec.deadline_ms + 30000, `result of round ${spec.tag}`);
            proc.stdin.write(`round ${JSON.stringify(spec)}\n`);
            const result = await answer;
            if (!result.sentAt) throw new Error(`darkspere-bench-peer refused round ${spec.tag}: ${result.error}`);
            return result;
        },
        async close() {
            if (exit) return;
            proc.stdin.end(); // end of input ends the peer
            await Promise.race([exited, sleep(5000)]);
            if (!exit) proc.kill('SIGKILL');
            await exited;
        },
    };
}
