// test/e2e/lib/dashboards.mjs — seeds a stack's database with what the dashboards show (answered conversations, an
// opt-out, a probe result, a blocked subject, a callback for no message, a job waiting in the queue), a
// darkspere_monitor login (what Grafana uses), and GET helpers for the worker's admin listener.
import { Db } from './db.mjs';
import { phone } from './stack.mjs';
import { assertAccepted } from './twiml.mjs';

export const MONITOR_LOGIN = 'darkspere_e2e_monitor';

// seedDashboardData sends `conversations` SMS through the worker and waits for their replies, sends a STOP, and
// adds (as the superuser) the rows no loopback peer produces on its own. Resolves when every view has rows.
export async function seedDashboardData(stack, { conversations = 3 } = {}) {
    for (let i = 0; i < conversations; i += 1) {
        assertAccepted(await stack.sms(phone(100 + i), `hello ${i}`));
    }
    for (let i = 0; i < conversations; i += 1) await stack.waitForReplies(phone(100 + i), 1);
    assertAccepted(await stack.sms(phone(199), 'STOP'));
    const db = stack.db;
    const agentId = stack.agents[0].agentId;
    await db.query(`INSERT INTO darkspere.agent_checks (account_id, agent_id, ok, latency_ms)
                    VALUES ($1, $2, true, 42), ($1, $2, true, 58)`, [stack.accountId, agentId]);
    await db.query("SELECT darkspere.rate_limit('ip', '198.51.100.7', 1000)");
    await db.query('SELECT darkspere.record_delivery_status($1, $2, $3)', [stack.sid, 'SMe2eunknown', 'delivered']);
    // A job nobody may claim before tomorrow: the queue is never empty while the test looks at it.
    await db.query(`INSERT INTO darkspere.jobs (kind, max_attempts, idempotency_key, available_at)
                    VALUES ('e2e_marker', 1, 'e2e-dashboards-marker', now() + interval '1 day')`);
    // The replies are stored by the ack that follows the SMS send: wait until the last one is in.
    for (let i = 0; i < 100; i += 1) {
        const done = await db.value(`SELECT count(*) FROM darkspere.jobs WHERE kind = 'sms_send' AND state = 'done'`);
        if (done >= conversations) return;
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('the replies were not acknowledged in 10 s');
}

// monitorDb connects to the stack's database as a login in darkspere_monitor (created once per cluster).
export async function monitorDb(stack) {
    await stack.db.query(`DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = '${MONITOR_LOGIN}') THEN
                CREATE ROLE ${MONITOR_LOGIN} LOGIN IN ROLE darkspere_monitor;
            END IF;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END $$`);
    const { env } = stack.cluster;
    return new Db({ host: env.PGHOST, port: Number(env.PGPORT), user: MONITOR_LOGIN, database: stack.dbName });
}

// getText resolves with {status, headers, text} of a GET.
export async function getText(url) {
    const res = await fetch(url, { signal: AbortSignal.timeout(10000) });
    return { status: res.status, headers: res.headers, text: await res.text() };
}
