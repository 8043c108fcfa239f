// test/e2e/stripe-meter.test.mjs — overage reported to Stripe Billing Meters by a real worker (docs/billing.md):
// tick() queues a stripe_meter job for the hour that just ended, the worker POSTs /v1/billing/meter_events to
// the Stripe stand-in (event_name, payload[stripe_customer_id], payload[value], identifier account:metric:hour,
// timestamp = the hour; form-encoded, bearer key, Idempotency-Key, pinned Stripe-Version) and the report is
// recorded; after a worker restart the same hour is not reported again; the next hour reports only what is new.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { startCluster } from './lib/cluster.mjs';
import { sleep, waitFor } from './lib/net.mjs';
import { useStack } from './lib/stack.mjs';
import { startStripeApi } from './lib/stripe-api.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

const API_KEY = `sk_test_${randomBytes(16).toString('hex')}`;
const VERSION = '2025-03-31.basil';

describe('stripe_meter jobs', () => {
    test('overage reported once per hour, across a worker restart', { timeout: 90000 }, async (t) => {
        const stripe = await startStripeApi({ apiKey: API_KEY, version: VERSION });
        t.after(() => stripe.close());
        const stack = await useStack(t, cluster, { plan: 'pro', agents: [],
            worker: { env: { DARKSPERE_STRIPE_API_KEY: API_KEY }, extraArgs: ['--stripe-base', stripe.url] } });
        const { db } = stack;
        const account = Number(stack.accountId);
        await db.query("UPDATE darkspere.accounts SET stripe_customer_id = 'cus_e2e_meter' WHERE account_id = $1",
            [account]);
        // The hour that just ended and its month: what the next tick reports.
        const { hour, period } = await db.one(`SELECT extract(epoch FROM date_trunc('hour', now()) - interval '1 hour')::bigint AS hour,
            date_trunc('month', (now() - interval '1 hour') AT TIME ZONE 'UTC')::date::text AS period`);
        // pro includes 5,000 inbound segments: 5,120 is 120 over.
        await db.query(`INSERT INTO darkspere.usage_counters (account_id, period, metric, shard, used)
                        VALUES ($1, $2, 'sms_in', 0, 5120)`, [account, period]);

        const [event] = await waitFor(() => stripe.meterEvents.size >= 1 && [...stripe.meterEvents.values()],
            { timeoutMs: 20000, message: 'a meter event at the Stripe stand-in' });
        assert.deepEqual({ ...event, created: undefined }, { object: 'billing.meter_event', created: undefined,
            event_name: 'darkspere_sms_in_overage', identifier: `${account}:sms_in:${hour}`, livemode: false,
            payload: { stripe_customer_id: 'cus_e2e_meter', value: '120' }, timestamp: Number(hour) });
        const sent = stripe.requests.find((r) => r.path === '/v1/billing/meter_events');
        assert.equal(sent.headers['stripe-version'], VERSION);
        assert.equal(sent.headers['idempotency-key'], `darkspere-meter-${account}:sms_in:${hour}`);
        assert.equal(sent.headers['content-type'], 'application/x-www-form-urlencoded');
        await waitFor(async () => (await db.value(
            'SELECT reported_at IS NOT NULL FROM darkspere.meter_reports WHERE account_id = $1', [account])) === true,
        { message: 'the report recorded' });

        // More usage and a restarted worker within the same hour: nothing more is reported for it.
        await db.query("UPDATE darkspere.usage_counters SET used = used + 30 WHERE account_id = $1", [account]);
        await stack.worker.stop();
        await stack.startWorker();
        await sleep(2000); // eight ticks at 250 ms
        assert.equal(stripe.meterEvents.size, 1);
        assert.equal(stripe.requests.filter((r) => r.path === '/v1/billing/meter_events').length, 1);
        assert.equal(Number(await db.value('SELECT count(*) FROM darkspere.meter_reports WHERE account_id = $1',
            [account])), 1);

        // The next hour (as tick() will see it): only the 30 new segments.
        assert.equal(Number(await db.value("SELECT darkspere.queue_meter_reports(now() + interval '1 hour')")), 1);
        await waitFor(() => stripe.meterEvents.size >= 2, { timeoutMs: 20000, message: 'the second meter event' });
        const second = [...stripe.meterEvents.values()][1];
        assert.equal(second.identifier, `${account}:sms_in:${Number(hour) + 3600}`);
        assert.equal(second.payload.value, '30');
        await waitFor(async () => Number(await db.value(
            'SELECT count(*) FROM darkspere.meter_reports WHERE account_id = $1 AND reported_at IS NOT NULL',
            [account])) === 2, { message: 'both reports recorded' });
        assert.ok(!JSON.stringify(stack.worker.logs).includes(API_KEY), 'the API key is never logged');
    });
});
