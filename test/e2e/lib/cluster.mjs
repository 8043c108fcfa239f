// test/e2e/lib/cluster.mjs — a throwaway PostgreSQL cluster per test file, through scripts/pgcluster, with one
// fresh database (extension created) per test so tests in a file share a server but no data.
//
// Citus mode (DARKSPERE_E2E_CITUS=1, test/citus/e2e): the cluster is a Citus coordinator and two workers
// (test/citus/nodes), each database is a Citus database on all three with the layout of test/citus/distribute.sql,
// and the worker and the tests talk to the coordinator only, as in production (docs/scaling.md). A Citus cluster
// cannot be stopped or restarted by a test.
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { onExit } from './cleanup.mjs';
import { Db } from './db.mjs';
import { CITUS_NODES, PGCLUSTER } from './paths.mjs';

const run = promisify(execFile);
const PGCLUSTER_TIMEOUT_MS = 120000;
const CITUS = process.env.DARKSPERE_E2E_CITUS === '1';

// The worker logs in as this role, a member of darkspere_worker and nothing else, as in production
// (docs/security.md): a worker that needed one more privilege fails its e2e tests. Test setup keeps running as
// the cluster's superuser.
export const WORKER_LOGIN = 'darkspere_e2e_worker';

// everyQueue — the rows of `sql` (a query of the job queue's tables or views, e.g. darkspere.dead_jobs) over every
// queue: the database's own and, in Citus mode, each worker node's, where delegated texts queue their jobs (one
// queue per node, docs/scaling.md). db: a connection to the coordinator.
export async function everyQueue(db, sql) {
    const rows = await db.query(sql);
    if (!CITUS) return rows;
    const nodes = await db.query('SELECT success, result FROM pg_catalog.run_command_on_workers($1)', [
        `SELECT coalesce(json_agg(q), '[]') FROM (${sql}) q`,
    ]);
    for (const node of nodes) {
        if (!node.success) throw new Error(`everyQueue on a worker node: ${node.result}`);
        rows.push(...JSON.parse(node.result));
    }
    return rows;
}
const CREATE_WORKER_LOGIN = `DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '${WORKER_LOGIN}') THEN
        CREATE ROLE ${WORKER_LOGIN} LOGIN IN ROLE darkspere_worker;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created concurrently for another database of this cluster
END
$$`;

// notCitus refuses what the Citus mode does not offer: stopping or restarting one node of three is a failover
// test of its own, which the subset run on Citus (test/citus/e2e) does not include.
function notCitus(what) {
    if (CITUS) throw new Error(`cluster.${what}() is not supported in Citus mode (DARKSPERE_E2E_CITUS=1): run this test without Citus`);
}

function parseEnvLines(text) {
    const env = {};
    for (const line of text.split('\n')) {
        const m = /^(PG[A-Z]+)=(.*)$/.exec(line.trim());
        if (m) env[m[1]] = m[2];
    }
    if (!env.PGPORT) throw new Error(`scripts/pgcluster printed no PGPORT:\n${text}`);
    return env;
}

// clusterParent is where cluster directories go: os.tmpdir(), unless we are root and it (or a directory above it)
// is closed to other users — the cluster runs as user postgres then and could not reach it — in which case /tmp.
function clusterParent() {
    const base = resolve(tmpdir());
    if (process.getuid?.() !== 0) return base;
    for (let d = base; ; d = dirname(d)) {
        try {
            if ((statSync(d).mode & 0o001) === 0) return '/tmp';
        } catch {
            return '/tmp';
        }
        if (d === dirname(d)) return base;
    }
}

// Server log errors of a Citus cluster's nodes, printed when a test file ends: a statement Citus refuses fails a
// test as a missing reply or a timeout, and the worker's log goes with its test; this says which statement it was
// and what Citus said. Each distinct (node, error, statement) once, with how often it happened.
function citusLogErrors(root) {
    const seen = new Map();
    for (const node of ['coordinator', 'worker1', 'worker2']) {
        const file = join(root, node, 'server.log');
        if (!existsSync(file)) continue;
        // Entries start with log_line_prefix ('%m [%p] '); an unprefixed line continues the one before it.
        const entries = [];
        for (const line of readFileSync(file, 'utf8').split('\n')) {
            const m = /^\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] (\w+):\s+(.*)$/.exec(line);
            if (m) entries.push({ level: m[1], text: m[2] });
            else if (entries.length && line.trim()) entries.at(-1).text += ` ${line.trim()}`;
        }
        entries.forEach((e, i) => {
            if (e.level !== 'ERROR') return;
            let key = `${node}: ERROR: ${e.text}`;
            // DETAIL, HINT, CONTEXT (Citus: which node ran the command) and STATEMENT follow their ERROR.
            for (const more of entries.slice(i + 1)) {
                if (!['DETAIL', 'HINT', 'CONTEXT', 'STATEMENT'].includes(more.level)) break;
                key += `\n    ${more.level}: ${more.text.replace(/\s+/g, ' ').slice(0, 400)}`;
            }
            seen.set(key, (seen.get(key) || 0) + 1);
        });
    }
    return [...seen].map(([key, n]) => `${key}${n > 1 ? `\n    (${n} times)` : ''}`);
}

// serversIn returns the PostgreSQL server(s) of a cluster under root: one pgcluster node, or in Citus mode a
// coordinator and two workers. {dir, start() → PG* env of the node clients use, stop(), stopSync(),
// createDatabase(name, admin), distribute(name), printErrors?()}.
function serversIn(root) {
    if (!CITUS) {
        const dir = join(root, 'pg');
        return {
            dir,
            async start() {
                const { stdout } = await run(PGCLUSTER, ['start', dir], { timeout: PGCLUSTER_TIMEOUT_MS });
                return parseEnvLines(stdout);
            },
            stop: () => run(PGCLUSTER, ['stop', dir], { timeout: PGCLUSTER_TIMEOUT_MS }),
            stopSync: () => spawnSync(PGCLUSTER, ['stop', dir], { stdio: 'ignore', timeout: 30000 }),
            async createDatabase(name, admin) {
                await admin.query(`CREATE DATABASE ${name}`);
            },
            async distribute() {},
        };
    }
    const nodes = (cmd, ...args) => run(CITUS_NODES, [cmd, root, ...args], { timeout: PGCLUSTER_TIMEOUT_MS });
    return {
        dir: join(root, 'coordinator'),
        async start() {
            let stdout;
            try {
                ({ stdout } = await nodes('start'));
            } catch (err) {
                throw new Error(`test/citus/nodes start failed: ${err.stderr || err.message}`);
            }
            const port = Object.fromEntries(stdout.trim().split('\n').map((line) => line.split(' ')));
            if (!port.coordinator) throw new Error(`test/citus/nodes printed no coordinator port:\n${stdout}`);
            return { PGHOST: '127.0.0.1', PGPORT: port.coordinator, PGUSER: 'postgres', PGDATABASE: 'postgres' };
        },
        stop: () => nodes('stop'),
        stopSync: () => spawnSync(CITUS_NODES, ['stop', root], { stdio: 'ignore', timeout: 60000 }),
        // The database on all three nodes, Citus in it on each, the nodes registered in it: Citus keeps its
        // node list per database.
        async createDatabase(name) {
            await nodes('database', name);
        },
        // After CREATE EXTENSION darkspere (which Citus runs on the workers too): the tables as docs/scaling.md
        // places them. Before any rows: the stack's account, numbers and agents go in through the coordinator.
        async distribute(name) {
            try {
                await nodes('distribute', name);
            } catch (err) {
                throw new Error(`test/citus/distribute.sql failed in ${name}: ${err.stderr || err.message}`);
            }
        },
        // printErrors writes the nodes' server log errors to stderr (citusLogErrors).
        printErrors() {
            const errors = citusLogErrors(root);
            if (errors.length) process.stderr.write(`citus: server log errors of ${root}:\n${errors.join('\n')}\n`);
        },
    };
}

// startCluster initialises and starts a cluster in a new temporary directory and resolves with
// {env, host, port, conninfo(db), createDatabase(), restart(), stop(), start(), dir}.
export async function startCluster() {
    const root = mkdtempSync(join(clusterParent(), 'darkspere-e2e-'));
    chmodSync(root, 0o755); // the cluster runs as an unprivileged user when we are root; it must reach its dir
    const servers = serversIn(root);
    const { dir } = servers;
    const unregister = onExit(() => {
        servers.stopSync();
        rmSync(root, { recursive: true, force: true });
    });
    const env = await servers.start();
    let databases = 0;
    const dbs = new Set();

    const cluster = {
        dir,
        env,
        host: env.PGHOST,
        port: Number(env.PGPORT),
        user: env.PGUSER,
        // conninfo is the libpq connection string of the superuser for database `name`.
        conninfo(name = env.PGDATABASE, user = env.PGUSER) {
            return `host=${env.PGHOST} port=${env.PGPORT} user=${user} dbname=${name} connect_timeout=5`;
        },
        // workerConninfo is the connection string the worker gets: the darkspere_worker login (createDatabase
        // makes sure it exists).
        workerConninfo(name = env.PGDATABASE) {
            return cluster.conninfo(name, WORKER_LOGIN);
        },
        db(name = env.PGDATABASE) {
            const db = new Db({ host: env.PGHOST, port: Number(env.PGPORT), user: env.PGUSER, database: name });
            dbs.add(db);
            return db;
        },
        // createDatabase makes a new database with the darkspere extension and resolves with {name, db}.
        async createDatabase(prefix = 't') {
            databases += 1;
            const name = `${prefix}_${process.pid}_${databases}`;
            const admin = cluster.db();
            try {
                await servers.createDatabase(name, admin);
                // Health probes are off unless a test turns them on (health-probes.test.mjs): the peers of the
                // other tests serve no /health, and probe jobs would change what their queues and agents show.
                // Set before any session of the new database starts, so every one of them has it.
                await admin.query(`ALTER DATABASE ${name} SET darkspere.probe_interval = 0`);
            } finally {
                await admin.end();
                dbs.delete(admin);
            }
            const db = cluster.db(name);
            await db.query('CREATE EXTENSION darkspere'); // creates role darkspere_worker on first use
            await db.query(CREATE_WORKER_LOGIN);
            await servers.distribute(name);
            return { name, db };
        },
        async stop() {
            notCitus('stop');
            await servers.stop();
        },
        // start brings a stopped cluster back on the same port. `pgcluster start` may move a cluster to a new port
        // when the old one still has TIME_WAIT sockets from our clients; `restart` never does, and starts a
        // stopped cluster too.
        async start() {
            notCitus('start');
            await run(PGCLUSTER, ['restart', dir], { timeout: PGCLUSTER_TIMEOUT_MS });
        },
        // restart stops (fast shutdown: sessions are cut) and starts again on the same port.
        async restart() {
            notCitus('restart');
            await run(PGCLUSTER, ['restart', dir], { timeout: PGCLUSTER_TIMEOUT_MS });
        },
        // destroy closes our connections, stops the server and removes its directory.
        async destroy() {
            await Promise.allSettled([...dbs].map((db) => db.end()));
            servers.printErrors?.();
            await servers.stop().catch(() => {});
            rmSync(root, { recursive: true, force: true });
            unregister();
        },
    };
    return cluster;
}
