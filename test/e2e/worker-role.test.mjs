// test/e2e/worker-role.test.mjs — the worker needs no more than darkspere_worker (docs/security.md): every e2e
// stack runs it as a login that is a member of that role and nothing else; this file pins that the login is the
// one actually used, and that it can do its whole job — a message in, an agent call, a reply out, the delivery
// callbacks — without any table privilege.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startCluster, WORKER_LOGIN } from './lib/cluster.mjs';
import { phone, useStack } from './lib/stack.mjs';
import { assertAccepted } from './lib/twiml.mjs';
import { waitFor } from './lib/net.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

test('the worker logs in as a darkspere_worker member without table rights and still answers', async (t) => {
    const stack = await useStack(t, cluster, { statusCallbacks: true });
    const role = await stack.db.one(
        `SELECT r.rolsuper, pg_has_role(r.oid, 'darkspere_worker', 'USAGE') AS worker,
                pg_has_role(r.oid, 'darkspere_admin', 'USAGE') AS admin,
                has_table_privilege(r.oid, 'darkspere.jobs', 'SELECT') AS reads_jobs
           FROM pg_roles r WHERE r.rolname = $1`, [WORKER_LOGIN]);
    assert.deepEqual(role, { rolsuper: false, worker: true, admin: false, reads_jobs: false });

    const from = phone(1);
    assertAccepted(await stack.sms(from, 'hello'));
    const [reply] = await stack.waitForReplies(from, 1);
    assert.match(reply.body, /hello/, 'the agent answered through the worker');
    // The reply's status callbacks (sent, delivered) go through record_delivery_status as the worker login.
    await waitFor(async () => (await stack.db.value(
        "SELECT status FROM darkspere.messages WHERE direction = 'out' AND phone = $1", [from])) === 'delivered',
    { timeoutMs: 15000, message: 'the reply to be delivered' });

    const users = await stack.db.query(
        'SELECT DISTINCT usename FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND usename <> $2',
        [stack.dbName, cluster.user]);
    assert.deepEqual(users.map((u) => u.usename), [WORKER_LOGIN], "the worker's connections use the worker login");
});
