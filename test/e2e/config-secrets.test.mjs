// test/e2e/config-secrets.test.mjs — Twilio tokens stay out of other users' reach: a config file that group or
// others may read is refused at start (exit 2, a hint naming the file and its mode), one of mode 0600 is used,
// and a token given on the command line (readable in /proc/<pid>/cmdline) draws a warning that never holds it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { freePort } from './lib/net.mjs';
import { workerBinary } from './lib/paths.mjs';
import { startWorker } from './lib/worker.mjs';

const cluster = await startCluster();
const dir = mkdtempSync(join(tmpdir(), 'darkspere-conf-'));
const TOKEN = 'f00dfeedf00dfeedf00dfeedf00dfeed';
after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await cluster.destroy();
});

function configFile(name, mode) {
    const path = join(dir, name);
    writeFileSync(path, `twilio-account = AC0e2e0000000000000000000000000001:${TOKEN}\n`);
    chmodSync(path, mode);
    return path;
}

// runToExit runs the worker with args and resolves with {code, output} once it exits (it must, within 20 s).
function runToExit(args) {
    return new Promise((resolve, reject) => {
        const proc = spawn(workerBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let output = '';
        proc.stdout.on('data', (d) => { output += d; });
        proc.stderr.on('data', (d) => { output += d; });
        const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`worker did not exit; output:\n${output}`)); }, 20000);
        proc.on('exit', (code) => { clearTimeout(timer); resolve({ code, output }); });
    });
}

describe('item 18: Twilio tokens are not readable by other local users', () => {
    for (const mode of [0o644, 0o640]) {
        test(`a config file of mode 0${mode.toString(8)} is refused: exit 2, the hint names the file and mode`, async () => {
            const path = configFile(`worker-${mode.toString(8)}.conf`, mode);
            const { code, output } = await runToExit(['--config', path, '--db', cluster.conninfo('postgres'),
                '--listen', `127.0.0.1:${await freePort()}`]);
            assert.equal(code, 2, output);
            const line = JSON.parse(output.split('\n').find((l) => l.includes('invalid configuration')));
            assert.match(line.error, new RegExp(`${path.replace(/[.]/g, '\\.')}.*mode 0${mode.toString(8)}`));
            assert.match(line.hint, new RegExp(`chmod 600 ${path.replace(/[.]/g, '\\.')}`));
            assert.ok(!output.includes(TOKEN), 'the token is never logged');
        });
    }

    test('a config file of mode 0600 is accepted, and no argv warning is logged', { timeout: 60000 }, async () => {
        const { name } = await cluster.createDatabase();
        const path = configFile('worker-600.conf', 0o600);
        const worker = await startWorker({ conninfo: cluster.conninfo(name), extraArgs: ['--config', path] });
        try {
            assert.ok(!worker.logs.some((l) => /command line/.test(l.msg ?? '')), 'no warning about the command line');
        } finally {
            await worker.stop();
        }
    });

    test('a token on the command line → a warning at start that does not contain it', { timeout: 60000 }, async () => {
        const { name } = await cluster.createDatabase();
        const worker = await startWorker({ conninfo: cluster.conninfo(name),
            extraArgs: ['--twilio-account', `AC0e2e0000000000000000000000000002:${TOKEN}`] });
        try {
            const warning = await worker.waitForLog((l) => l.level === 'warn' && /command line/.test(l.msg ?? ''),
                { message: 'a warning about a token on the command line' });
            assert.match(warning.hint, /DARKSPERE_TWILIO_ACCOUNTS|0600/);
            assert.ok(!worker.tail(5000).includes(TOKEN), 'the token is never logged');
        } finally {
            await worker.stop();
        }
    });
});
