// test/e2e/status-page.test.mjs — GET /status on the admin listener, in a real headless browser (Debian's chromium
// driven by puppeteer-core): the page loads with no console error and no failed or outside request, shows the
// queue, the seeded agents (one named `<script>…`, which must render as text and never run), the alerts section
// and then a seeded firing alert (its text escaped too), and both sparklines; a screenshot goes to the test
// output directory (E2E_OUTPUT_DIR, default test/e2e/output).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import puppeteer from 'puppeteer-core';
import { startCluster } from './lib/cluster.mjs';
import { getText, seedDashboardData } from './lib/dashboards.mjs';
import { freePort } from './lib/net.mjs';
import { REPO_ROOT } from './lib/paths.mjs';
import { useStack } from './lib/stack.mjs';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const OUTPUT_DIR = process.env.E2E_OUTPUT_DIR || join(REPO_ROOT, 'test', 'e2e', 'output');
const HOSTILE_NAME = '<script>window.__pwned = 1; alert("pwned")</script>';

const cluster = await startCluster();
after(() => cluster.destroy());

// launchChromium starts a headless chromium that talks to nothing on its own, with a fresh profile.
async function launchChromium(t) {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: scripts/install-deps installs Debian's chromium`);
    const profile = mkdtempSync(join(tmpdir(), 'darkspere-chromium-'));
    const browser = await puppeteer.launch({
        executablePath: CHROMIUM,
        headless: true,
        userDataDir: profile,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
            '--disable-component-update', '--disable-sync', '--no-first-run', `--user-data-dir=${profile}`],
    });
    t.after(async () => {
        await browser.close().catch(() => {});
        rmSync(profile, { recursive: true, force: true });
    });
    return browser;
}

describe('the status page', () => {
    test('renders in headless chromium: agents, queue, alerts, sparklines; no errors, nothing fetched',
        { timeout: 120000 }, async (t) => {
            const adminPort = await freePort();
            const stack = await useStack(t, cluster, {
                agents: [{ kind: 'http', name: HOSTILE_NAME }, { kind: 'http', name: 'steady-agent' }],
                worker: { extraArgs: ['--admin-listen', `127.0.0.1:${adminPort}`] },
            });
            await stack.worker.waitForLog((r) => r.msg === 'admin listening' && r.port === adminPort);
            await seedDashboardData(stack);
            const admin = `http://127.0.0.1:${adminPort}`;

            // Served on the admin listener only, with a policy that lets the page load nothing.
            assert.equal((await getText(`${stack.worker.url}/status`)).status, 404, 'no /status on the public port');
            const plain = await getText(`${admin}/status`);
            assert.equal(plain.status, 200);
            assert.match(plain.headers.get('content-type'), /^text\/html/);
            assert.match(plain.headers.get('content-security-policy'), /default-src 'none'/);
            assert.ok(!plain.text.includes(HOSTILE_NAME), 'the agent name is never in the HTML unescaped');

            const browser = await launchChromium(t);
            const page = await browser.newPage();
            const problems = [];
            const requested = [];
            page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
            page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
            page.on('requestfailed', (r) => problems.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
            page.on('response', (r) => { if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`); });
            page.on('request', (r) => requested.push(r.url()));
            page.on('dialog', async (d) => { problems.push(`dialog: ${d.message()}`); await d.dismiss(); });

            const res = await page.goto(`${admin}/status`, { waitUntil: 'networkidle0', timeout: 30000 });
            assert.equal(res.status(), 200);
            await new Promise((r) => setTimeout(r, 1500)); // the inline script's first ticks
            assert.deepEqual(problems, [], 'no console errors, page errors, failed requests or dialogs');
            assert.deepEqual(requested.filter((u) => !u.startsWith(`${admin}/`) && !u.startsWith('data:')), [],
                'nothing requested but the page itself');

            const seen = await page.evaluate(() => ({
                title: document.title,
                agents: [...document.querySelectorAll('#agents tr.agent td:first-child')].map((td) => td.firstChild.textContent.trim()),
                scripts: document.querySelectorAll('script').length,
                pwned: window.__pwned === 1,
                pending: document.getElementById('queue-pending')?.textContent,
                queueRows: document.querySelectorAll('#queue tr').length - 1,
                alerts: document.getElementById('alerts')?.textContent || null,
                alertRows: document.querySelectorAll('#alerts tr.alert').length,
                sparklines: document.querySelectorAll('svg.spark').length,
                trafficDrawn: document.querySelector('svg.spark')?.querySelectorAll('polyline, circle').length,
                latencyRows: document.querySelectorAll('#latency tr').length - 1,
                age: document.getElementById('age').textContent,
            }));
            assert.equal(seen.title, 'DarkSpere status');
            assert.deepEqual(seen.agents.sort(), [HOSTILE_NAME, 'steady-agent'].sort(),
                'both agents listed; the hostile name shown as text');
            assert.equal(seen.scripts, 1, 'only the page\'s own script');
            assert.equal(seen.pwned, false, 'the agent name did not run');
            assert.ok(Number(seen.pending) >= 1, `queue shows pending jobs (${seen.pending})`);
            assert.ok(seen.queueRows >= 1, 'queue table');
            assert.ok(seen.alerts !== null, 'an alerts section');
            assert.equal(seen.sparklines, 2, 'traffic and latency sparklines');
            assert.ok(seen.trafficDrawn >= 1, 'the traffic sparkline draws the seeded minute');
            assert.equal(seen.latencyRows, 5, 'latency per stage over the last hour');
            assert.match(seen.age, /page age [0-9]+ s/, 'the inline script runs');

            // An alert on the page: a firing row of darkspere.alerts whose subject (tenant-chosen text, such as an
            // agent's name) would run if it were not escaped.
            const ALERT_TEXT = '<img src=x onerror="window.__pwned = 1">error rate above 10 %';
            await stack.db.query(`INSERT INTO darkspere.alerts (rule, subject, severity, state, value, threshold)
                                  VALUES ('error_rate', $1, 'critical', 'firing', 42, 10)`, [ALERT_TEXT]);
            await new Promise((r) => setTimeout(r, 2100)); // past the 2 s a page is reused
            await page.reload({ waitUntil: 'networkidle0', timeout: 30000 });
            const withAlert = await page.evaluate(() => ({
                rows: [...document.querySelectorAll('#alerts tr.alert')].map((tr) => tr.textContent),
                pwned: window.__pwned === 1,
                images: document.querySelectorAll('img').length,
            }));
            const shown = withAlert.rows.find((row) => row.includes(ALERT_TEXT));
            assert.ok(shown && shown.includes('firing'), `the seeded alert shown as text: ${withAlert.rows.join(' | ')}`);
            assert.equal(withAlert.pwned, false, 'the alert text did not run');
            assert.equal(withAlert.images, 0, 'no element made from data');
            assert.deepEqual(problems, [], 'no console errors, page errors, failed requests or dialogs after reload');

            mkdirSync(OUTPUT_DIR, { recursive: true });
            const shot = join(OUTPUT_DIR, 'status-page.png');
            await page.screenshot({ path: shot, fullPage: true });
            const png = readFileSync(shot);
            assert.ok(png.length > 5000 && png.subarray(1, 4).toString() === 'PNG', `a PNG screenshot at ${shot}`);
            t.diagnostic(`screenshot: ${shot} (${png.length} bytes)`);

            // With the database down the page still answers, 503, saying so (escaped like the rest).
            await cluster.stop();
            try {
                await new Promise((r) => setTimeout(r, 2100)); // past the 2 s a page is reused
                const down = await getText(`${admin}/status`);
                assert.equal(down.status, 503);
                assert.match(down.text, /The database could not be read/);
                assert.match(down.headers.get('content-security-policy'), /default-src 'none'/);
            } finally {
                await cluster.start();
            }
        });
});
