// test/e2e/lib/cluster.mjs — a throwaway PostgreSQL cluster per test file, through scripts/pgcluster, with one
// fresh database (extension created) per test so tests in a file share a server but no data.
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { onExit } from './cleanup.mjs';
import { Db } from './db.mjs';
import { PGCLUSTER } from './paths.mjs';

const run = promisify(execFile);
const PGCLUSTER_TIMEOUT_MS = 120000;

// The worker logs in as this role, a member of darkspere_worker and nothing else, as in production
// (docs/security.md): a worker that needed one more privilege fails its e2e tests. Test setup keeps running as
// the cluster's superuser.
export const WORKER_LOGIN = 'darkspere_e2e_worker';
const CREATE_WORKER_LOGIN = `DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '${WORKER_LOGIN}') THEN
        CREATE ROLE ${WORKER_LOGIN} LOGIN IN ROLE darkspere_worker;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- created concurrently for another database of this cluster
END
$$`;

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

// startCluster initialises and starts a cluster in a new temporary directory and resolves with
// {env, host, port, conninfo(db), createDatabase(), restart(), stop(), start(), dir}.
export async function startCluster() {
    const root = mkdtempSync(join(clusterParent(), 'darkspere-e2e-'));
    chmodSync(root, 0o755); // the cluster runs as an unprivileged user when we are root; it must reach its dir
    const dir = join(root, 'pg');
    const unregister = onExit(() => {
        spawnSync(PGCLUSTER, ['stop', dir], { stdio: 'ignore', timeout: 30000 });
        rmSync(root, { recursive: true, force: true });
    });
    const { stdout } = await run(PGCLUSTER, ['start', dir], { timeout: PGCLUSTER_TIMEOUT_MS });
    const env = parseEnvLines(stdout);
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
                await admin.query(`CREATE DATABASE ${name}`);
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
            return { name, db };
        },
        async stop() {
            await run(PGCLUSTER, ['stop', dir], { timeout: PGCLUSTER_TIMEOUT_MS });
        },
        // start brings a stopped cluster back on the same port. `pgcluster start` may move a cluster to a new port
        // when the old one still has TIME_WAIT sockets from our clients; `restart` never does, and starts a
        // stopped cluster too.
        async start() {
            await run(PGCLUSTER, ['restart', dir], { timeout: PGCLUSTER_TIMEOUT_MS });
        },
        // restart stops (fast shutdown: sessions are cut) and starts again on the same port.
        async restart() {
            await run(PGCLUSTER, ['restart', dir], { timeout: PGCLUSTER_TIMEOUT_MS });
        },
        // destroy closes our connections, stops the server and removes its directory.
        async destroy() {
            await Promise.allSettled([...dbs].map((db) => db.end()));
            await cluster.stop().catch(() => {});
            rmSync(root, { recursive: true, force: true });
            unregister();
        },
    };
    return cluster;
}
