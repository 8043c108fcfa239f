// test/e2e/grafana-dashboard.test.mjs — docs/grafana/darkspere.json: every PostgreSQL panel's SQL runs, as a
// darkspere_monitor login (what Grafana logs in as), against a database with traffic, without error and with rows;
// every Prometheus panel names only metrics the worker really exports (its /metrics, scraped from the admin
// listener).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { getText, monitorDb, seedDashboardData } from './lib/dashboards.mjs';
import { freePort } from './lib/net.mjs';
import { REPO_ROOT } from './lib/paths.mjs';
import { useStack } from './lib/stack.mjs';

const DASHBOARD = join(REPO_ROOT, 'docs', 'grafana', 'darkspere.json');
const cluster = await startCluster();
after(() => cluster.destroy());

// panels lists every panel, rows' nested panels included.
function panels(dashboard) {
    return dashboard.panels.flatMap((p) => [p, ...(p.panels || [])]).filter((p) => p.type !== 'row');
}

describe('the Grafana dashboard', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
    const all = panels(dashboard);
    const inputs = new Map(dashboard.__inputs.map((i) => [`\${${i.name}}`, i.pluginId]));

    test('is well formed: unique ids, a place on the grid, a data source it declares', () => {
        assert.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'unique panel ids');
        for (const p of all) {
            assert.ok(p.title && p.gridPos && p.targets?.length, `panel ${p.id} has a title, a place and targets`);
            for (const t of p.targets) {
                const ds = t.datasource || p.datasource;
                assert.equal(inputs.get(ds.uid), ds.type, `panel "${p.title}": data source ${ds.uid} is an input of its type`);
            }
        }
        assert.ok(all.some((p) => p.datasource.type === 'prometheus'), 'has Prometheus panels');
        assert.ok(all.some((p) => p.datasource.type === 'grafana-postgresql-datasource'), 'has PostgreSQL panels');
    });

    test('every panel has data: PostgreSQL panels as darkspere_monitor, Prometheus panels from the worker\'s /metrics',
        { timeout: 90000 }, async (t) => {
            const adminPort = await freePort();
            const stack = await useStack(t, cluster, {
                agents: [{ kind: 'http' }],
                worker: { extraArgs: ['--admin-listen', `127.0.0.1:${adminPort}`] },
            });
            await stack.worker.waitForLog((r) => r.msg === 'admin listening' && r.port === adminPort);
            await seedDashboardData(stack);
            const monitor = await monitorDb(stack);
            t.after(() => monitor.end());

            const sqlTargets = all.flatMap((p) => p.targets.filter((x) => x.rawSql).map((x) => ({ p, x })));
            assert.ok(sqlTargets.length >= 8, `${sqlTargets.length} SQL targets`);
            for (const { p, x } of sqlTargets) {
                assert.doesNotMatch(x.rawSql, /\$__|\$\{?[A-Za-z]/, `panel "${p.title}": plain SQL, no Grafana macro`);
                let rows;
                try {
                    rows = await monitor.query(x.rawSql);
                } catch (err) {
                    assert.fail(`panel "${p.title}" fails as darkspere_monitor: ${err.message}\n${x.rawSql}`);
                }
                assert.ok(rows.length > 0, `panel "${p.title}" is empty:\n${x.rawSql}`);
                if (x.format === 'time_series') {
                    assert.ok(rows.every((r) => r.time instanceof Date), `panel "${p.title}": a time column`);
                }
                const numbers = rows.flatMap((r) => Object.values(r)).filter((v) => typeof v === 'number'
                    || (typeof v === 'string' && /^-?[0-9.]+$/.test(v)));
                assert.ok(numbers.length > 0, `panel "${p.title}" has numbers to show`);
            }

            const { status, text } = await getText(`http://127.0.0.1:${adminPort}/metrics`);
            assert.equal(status, 200);
            // Every series name, and every family a # TYPE line declares (a family may have no series yet,
            // e.g. darkspere_queue_depth before its first read); a histogram exports _bucket, _sum and _count.
            const exported = new Set(text.split('\n').filter((l) => l && !l.startsWith('#'))
                .map((l) => l.split(/[{ ]/)[0]));
            for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
                exported.add(name);
                if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(name + s);
            }
            const promTargets = all.flatMap((p) => p.targets.filter((x) => x.expr).map((x) => ({ p, x })));
            assert.ok(promTargets.length >= 6, `${promTargets.length} Prometheus targets`);
            for (const { p, x } of promTargets) {
                const names = x.expr.match(/\bdarkspere_[a-z0-9_]+/g) || [];
                assert.ok(names.length > 0, `panel "${p.title}": ${x.expr} names a darkspere metric`);
                for (const name of names) {
                    assert.ok(exported.has(name), `panel "${p.title}": the worker exports no ${name}`);
                }
            }
            t.diagnostic(`${sqlTargets.length} SQL targets with rows, ${promTargets.length} Prometheus targets checked `
                + `against ${exported.size} exported series names`);
        });
});
