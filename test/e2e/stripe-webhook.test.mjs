// test/e2e/stripe-webhook.test.mjs — POST /stripe/webhook through a real worker (docs/billing.md): events signed
// with the official stripe package's generateTestHeaderString, stored once by darkspere.stripe_event.
// checkout.session.completed + customer.subscription.created → plan pro; the same event again → 'duplicate';
// updated before created (out of order) → the updated state stays; a bad signature → 400 and nothing stored;
// invoice.payment_failed past darkspere.payment_grace → held to the free plan's limits → invoice.paid → restored;
// no secret configured → 503; darkspere_stripe_events_total counts each outcome.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import Stripe from 'stripe';
import { startCluster } from './lib/cluster.mjs';
import { useStack } from './lib/stack.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

const stripe = new Stripe('sk_test_e2e_not_used'); // only the webhook helpers, which make no request
const SECRET = `whsec_${randomBytes(24).toString('hex')}`;
const PRICE = 'price_e2e_pro';
const DAY = 86400;
const now = () => Math.floor(Date.now() / 1000);
let seq = 0;

function event(type, object, created = now()) {
    seq += 1;
    return { id: `evt_e2e_${process.pid}_${seq}`, object: 'event', api_version: '2025-03-31.basil', type, created,
        livemode: false, data: { object } };
}

function subscription(id, customer, { status = 'active', periodEnd = now() + 30 * DAY, cancel = false } = {}) {
    return { id, object: 'subscription', customer, status, cancel_at_period_end: cancel,
        items: { object: 'list', data: [{ id: `si_${id}`, object: 'subscription_item', price: { id: PRICE },
            current_period_start: periodEnd - 30 * DAY, current_period_end: periodEnd }] } };
}

// post sends the event's JSON, signed like Stripe (or with `header`), and resolves with {status, body}.
async function post(worker, ev, { header, secret = SECRET } = {}) {
    const payload = typeof ev === 'string' ? ev : JSON.stringify(ev);
    const signature = header ?? stripe.webhooks.generateTestHeaderString({ payload, secret });
    const res = await fetch(`${worker.url}/stripe/webhook`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': signature },
        body: payload,
        signal: AbortSignal.timeout(10000),
    });
    return { status: res.status, body: await res.text() };
}

async function metric(worker, outcome) {
    const text = await (await fetch(`${worker.url}/metrics`)).text();
    const m = text.match(new RegExp(`^darkspere_stripe_events_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm'));
    return Number(m?.[1] ?? NaN);
}

async function state(db, account) {
    return db.one(`SELECT a.plan, darkspere.effective_plan(a.account_id) AS effective, s.status,
                          s.cancel_at_period_end AS cancel, s.past_due_since IS NOT NULL AS past_due
                     FROM darkspere.accounts a LEFT JOIN darkspere.subscriptions s USING (account_id)
                    WHERE a.account_id = $1`, [account]);
}

async function newAccount(db, name) {
    return Number(await db.value("SELECT darkspere.create_account($1, 'free', 'hi')", [name]));
}

describe('POST /stripe/webhook', () => {
    test('checkout + subscription.created → pro; duplicate; out of order; bad signature; grace; paid', async (t) => {
        const stack = await useStack(t, cluster, { plan: 'free', agents: [],
            worker: { env: { DARKSPERE_STRIPE_WEBHOOK_SECRET: SECRET } } });
        const { db, worker } = stack;
        await db.query("INSERT INTO darkspere.plan_prices VALUES ($1, 'pro')", [PRICE]);
        const account = Number(stack.accountId);

        // Checkout completes, then the subscription is created: the account is on pro.
        const checkout = event('checkout.session.completed', { id: 'cs_e2e_1', object: 'checkout.session',
            mode: 'subscription', client_reference_id: String(account), customer: 'cus_e2e_1',
            subscription: 'sub_e2e_1' });
        assert.deepEqual(await post(worker, checkout), { status: 200, body: '{"outcome":"processed"}' });
        const created = event('customer.subscription.created', subscription('sub_e2e_1', 'cus_e2e_1'));
        assert.deepEqual(await post(worker, created), { status: 200, body: '{"outcome":"processed"}' });
        assert.deepEqual(await state(db, account),
            { plan: 'pro', effective: 'pro', status: 'active', cancel: false, past_due: false });

        // Stripe delivers the same event again: 'duplicate', one row.
        assert.deepEqual(await post(worker, created), { status: 200, body: '{"outcome":"duplicate"}' });
        assert.equal(Number(await db.value('SELECT count(*) FROM darkspere.stripe_events WHERE event_id = $1',
            [created.id])), 1);

        // An event DarkSpere does not act on: 'ignored'.
        assert.deepEqual(await post(worker, event('customer.created', { id: 'cus_e2e_1', object: 'customer' })),
            { status: 200, body: '{"outcome":"ignored"}' });

        // A bad signature (another secret, a tampered body, an old timestamp, none): 400, nothing stored.
        const forged = event('customer.subscription.deleted', subscription('sub_e2e_1', 'cus_e2e_1'));
        const payload = JSON.stringify(forged);
        const good = stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET });
        for (const [what, res] of [
            ['other secret', await post(worker, forged, { secret: 'whsec_wrong' })],
            ['tampered body', await post(worker, payload.replace('cus_e2e_1', 'cus_e2e_9'), { header: good })],
            ['too old', await post(worker, forged, { header: stripe.webhooks.generateTestHeaderString(
                { payload, secret: SECRET, timestamp: now() - 301 }) })],
            ['no header', await post(worker, forged, { header: '' })],
        ]) {
            assert.equal(res.status, 400, what);
            assert.ok(!res.body.includes(SECRET), what);
        }
        assert.equal(Number(await db.value('SELECT count(*) FROM darkspere.stripe_events WHERE event_id = $1',
            [forged.id])), 0);
        assert.equal((await state(db, account)).plan, 'pro');
        // Signed but not a JSON object: 400; a malformed event the SQL refuses: 400 naming the field.
        assert.equal((await post(worker, '[1,2,3]')).status, 400);
        const bad = await post(worker, { id: 'evt_e2e_bad', type: 'invoice.paid', created: 'soon', data: { object: {} } });
        assert.equal(bad.status, 400);
        assert.match(bad.body, /created/);

        // Payment fails; a week and a day later (the failure's own time) the account is held to free's limits.
        const failed = event('invoice.payment_failed', { id: 'in_e2e_1', object: 'invoice', customer: 'cus_e2e_1' },
            now() - 8 * DAY);
        assert.equal((await post(worker, failed)).status, 200);
        assert.deepEqual(await state(db, account),
            { plan: 'pro', effective: 'free', status: 'past_due', cancel: false, past_due: true });
        const held = await db.one("SELECT * FROM darkspere.feature_access($1, 'sms_inbound')", [account]);
        assert.equal(held.plan, 'free');
        assert.equal(Number(held.monthly_limit), 100);
        assert.match(held.reason, /past due/);
        const usage = await db.query('SELECT metric, included FROM darkspere.usage($1)', [account]);
        assert.deepEqual(usage.map((r) => [r.metric, Number(r.included)]),
            [['sms_in', 100], ['sms_out', 50], ['agent_messages', 500]]);
        // Paid: restored.
        const paid = event('invoice.paid', { id: 'in_e2e_1', object: 'invoice', customer: 'cus_e2e_1' });
        assert.deepEqual(await post(worker, paid), { status: 200, body: '{"outcome":"processed"}' });
        assert.deepEqual(await state(db, account),
            { plan: 'pro', effective: 'pro', status: 'active', cancel: false, past_due: false });
        assert.equal(Number((await db.one("SELECT * FROM darkspere.feature_access($1, 'sms_inbound')",
            [account])).monthly_limit), 5000);

        // Out of order, for a second account: updated (newer, cancelling at period end) arrives before created.
        const second = await newAccount(db, 'Second');
        const t0 = now() - 60;
        const upd = event('customer.subscription.updated', subscription('sub_e2e_2', 'cus_e2e_2', { cancel: true }), t0 + 30);
        const crt = event('customer.subscription.created', subscription('sub_e2e_2', 'cus_e2e_2'), t0);
        const chk = event('checkout.session.completed', { id: 'cs_e2e_2', object: 'checkout.session',
            mode: 'subscription', client_reference_id: String(second), customer: 'cus_e2e_2',
            subscription: 'sub_e2e_2' }, t0 + 1);
        assert.equal((await post(worker, upd)).status, 200); // no account yet: kept
        assert.equal((await post(worker, chk)).status, 200); // links the account, applies the kept update
        assert.deepEqual(await post(worker, crt), { status: 200, body: '{"outcome":"ignored"}' }); // older
        assert.deepEqual(await state(db, second),
            { plan: 'pro', effective: 'pro', status: 'active', cancel: true, past_due: false });

        assert.equal(await metric(worker, 'duplicate'), 1);
        assert.equal(await metric(worker, 'bad_signature'), 4);
        assert.ok(await metric(worker, 'processed') >= 6);
        // The secret is in no log line and no table.
        assert.ok(!worker.logs.some((l) => JSON.stringify(l).includes(SECRET)));
        assert.equal(Number(await db.value(
            "SELECT count(*) FROM darkspere.stripe_events WHERE payload::text LIKE '%' || $1 || '%'", [SECRET])), 0);
    });

    test('no secret configured: 503, nothing stored', async (t) => {
        const stack = await useStack(t, cluster, { plan: 'free', agents: [] });
        const res = await post(stack.worker, event('invoice.paid', { id: 'in_x', customer: 'cus_x' }));
        assert.equal(res.status, 503);
        assert.equal(Number(await stack.db.value('SELECT count(*) FROM darkspere.stripe_events')), 0);
        assert.equal(await metric(stack.worker, 'unconfigured'), 1);
    });
});
