// test/e2e/billing-api.test.mjs — POST /api/billing/checkout|portal|cancel through a real worker against the
// Stripe stand-in (lib/stripe-api.mjs, which checks form encoding, the bearer API key, Idempotency-Key and the
// pinned Stripe-Version): checkout → url; the signed checkout.session.completed + customer.subscription.created →
// plan pro; portal → url; cancel at period end, then now → free; Stripe's errors → 402/409/502 with Stripe's
// message; validation 422s; no API key configured → 503. Every response is validated against docs/openapi.yaml.
// The official stripe package, pointed at the stand-in, shows that its answers parse as Stripe's.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import Stripe from 'stripe';
import YAML from 'yaml';
import { startCluster } from './lib/cluster.mjs';
import { REPO_ROOT } from './lib/paths.mjs';
import { useStack } from './lib/stack.mjs';
import { startStripeApi } from './lib/stripe-api.mjs';

const cluster = await startCluster();
after(() => cluster.destroy());

const API_KEY = `sk_test_${randomBytes(16).toString('hex')}`;
const SECRET = `whsec_${randomBytes(24).toString('hex')}`;
const VERSION = '2025-03-31.basil';
const PRICE = 'price_e2e_pro';
const now = () => Math.floor(Date.now() / 1000);
const sdkHelpers = new Stripe('sk_test_e2e_not_used'); // only the webhook helpers, which make no request

const spec = YAML.parse(readFileSync(join(REPO_ROOT, 'docs', 'openapi.yaml'), 'utf8'));
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema(spec, 'openapi');

// conforms asserts the response is one docs/openapi.yaml documents for POST `path`.
function conforms(path, res) {
    let response = spec.paths[path]?.post?.responses?.[String(res.status)];
    assert.ok(response, `POST ${path} documents status ${res.status} (body ${res.text})`);
    let ref = `#/paths/${path.replaceAll('/', '~1')}/post/responses/${res.status}`;
    if (response.$ref) ref = response.$ref;
    const validate = ajv.getSchema(`openapi${ref}/content/application~1json/schema`);
    assert.ok(validate(res.json), `POST ${path} ${res.status}: ${ajv.errorsText(validate.errors)} in ${res.text}`);
}

async function call(worker, route, body, key) {
    const path = `/api/billing/${route}`;
    const res = await fetch(`${worker.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: typeof body === 'string' ? body : JSON.stringify(body),
        signal: AbortSignal.timeout(15000),
    });
    const text = await res.text();
    const out = { status: res.status, text, json: JSON.parse(text), headers: res.headers };
    conforms(path, out);
    return out;
}

function event(type, object) {
    return { id: `evt_e2e_${randomBytes(8).toString('hex')}`, object: 'event', api_version: VERSION, type,
        created: now(), livemode: false, data: { object } };
}

async function webhook(worker, ev) {
    const payload = JSON.stringify(ev);
    const signature = sdkHelpers.webhooks.generateTestHeaderString({ payload, secret: SECRET });
    const res = await fetch(`${worker.url}/stripe/webhook`, { method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': signature }, body: payload });
    return { status: res.status, body: await res.text() };
}

describe('POST /api/billing/…', () => {
    test('checkout, subscription, portal, cancel; Stripe errors; validation', { timeout: 90000 }, async (t) => {
        const stripe = await startStripeApi({ apiKey: API_KEY, version: VERSION, prices: [PRICE] });
        t.after(() => stripe.close());
        const stack = await useStack(t, cluster, { plan: 'free', agents: [],
            worker: { env: { DARKSPERE_STRIPE_WEBHOOK_SECRET: SECRET, DARKSPERE_STRIPE_API_KEY: API_KEY },
                extraArgs: ['--stripe-base', stripe.url] } });
        const { db, worker } = stack;
        const account = Number(stack.accountId);
        await db.query("INSERT INTO darkspere.plan_prices (price_id, plan) VALUES ($1, 'pro')", [PRICE]);
        const { api_key: key } = await db.one('SELECT * FROM darkspere.create_account_key($1, $2)', [account, 'e2e']);
        const urls = { success_url: 'https://app.example/billing/done', cancel_url: 'https://app.example/billing' };

        // Checkout: a session URL; Stripe was asked exactly as DarkSpere promises.
        const checkout = await call(worker, 'checkout', { plan: 'pro', ...urls }, key);
        assert.equal(checkout.status, 200, checkout.text);
        assert.match(checkout.json.url, /^https:\/\/checkout\.stripe\.com\/c\/pay\/cs_test_/);
        assert.equal(checkout.headers.get('cache-control'), 'no-store');
        const [asked] = stripe.requests;
        assert.equal(asked.path, '/v1/checkout/sessions');
        assert.equal(asked.headers['stripe-version'], VERSION);
        assert.equal(asked.headers['content-type'], 'application/x-www-form-urlencoded');
        assert.match(asked.headers['idempotency-key'], new RegExp(`^darkspere-checkout-${account}-[0-9a-f]{40}$`));
        assert.deepEqual(
            { ...asked.params },
            { mode: 'subscription', 'line_items[0][price]': PRICE, 'line_items[0][quantity]': '1',
                client_reference_id: String(account), ...urls, 'metadata[darkspere_account_id]': String(account),
                'subscription_data[metadata][darkspere_account_id]': String(account) });
        // The client retries: the same Idempotency-Key, so Stripe answers the same session.
        const again = await call(worker, 'checkout', { plan: 'pro', ...urls }, key);
        assert.equal(again.json.session_id, checkout.json.session_id);
        assert.equal(stripe.requests[1].replayed, true);

        // No customer or subscription yet.
        const noCustomer = await call(worker, 'portal', { return_url: 'https://app.example/' }, key);
        assert.equal(noCustomer.status, 409);
        assert.equal(noCustomer.json.error.code, 'no_customer');
        assert.equal((await call(worker, 'cancel', { at_period_end: true }, key)).json.error.code, 'no_subscription');

        // Stripe's signed events: the account is on pro.
        const sub = { id: 'sub_e2e_b', object: 'subscription', customer: 'cus_e2e_b', status: 'active',
            cancel_at_period_end: false, canceled_at: null, created: now(),
            items: { object: 'list', data: [{ id: 'si_e2e_b', object: 'subscription_item', price: { id: PRICE },
                current_period_start: now(), current_period_end: now() + 30 * 86400 }] } };
        stripe.addSubscription(sub);
        assert.equal((await webhook(worker, event('checkout.session.completed', { id: checkout.json.session_id,
            object: 'checkout.session', mode: 'subscription', client_reference_id: String(account),
            customer: 'cus_e2e_b', subscription: 'sub_e2e_b' }))).status, 200);
        assert.equal((await webhook(worker, event('customer.subscription.created', sub))).status, 200);
        assert.equal(await db.value('SELECT plan FROM darkspere.accounts WHERE account_id = $1', [account]), 'pro');
        const subscribed = await call(worker, 'checkout', { plan: 'pro', ...urls }, key);
        assert.equal(subscribed.status, 409);
        assert.equal(subscribed.json.error.code, 'already_subscribed');

        // Portal: a session for the customer.
        const portal = await call(worker, 'portal', { return_url: 'https://app.example/account' }, key);
        assert.equal(portal.status, 200, portal.text);
        assert.match(portal.json.url, /^https:\/\/billing\.stripe\.com\/p\/session\//);
        assert.deepEqual({ ...stripe.requests.at(-1).params },
            { customer: 'cus_e2e_b', return_url: 'https://app.example/account' });

        // Stripe's errors: 402 and 409 keep their status, anything else is 502; Stripe's message is passed on.
        for (const [status, type, message, code, expect] of [
            [402, 'card_error', 'Your card was declined.', 'card_declined', [402, 'payment_required']],
            [409, 'invalid_request_error', 'A conflicting request is in progress.', undefined, [409, 'stripe_conflict']],
            [500, 'api_error', 'Something went wrong on our end.', undefined, [502, 'stripe_error']],
            [429, 'invalid_request_error', 'Too many requests.', 'rate_limit', [502, 'stripe_error']],
        ]) {
            stripe.failNext(status, type, message, code);
            const res = await call(worker, 'portal', { return_url: `https://app.example/${status}` }, key);
            assert.deepEqual([res.status, res.json.error.code, res.json.error.message], [...expect, message]);
        }
        // A refused API key is the operator's problem: 502 without Stripe's words about the key.
        stripe.failNext(401, 'invalid_request_error', 'Invalid API Key provided: sk_test_****');
        const refused = await call(worker, 'portal', { return_url: 'https://app.example/401' }, key);
        assert.equal(refused.status, 502);
        assert.doesNotMatch(refused.text, /sk_test/);
        assert.equal(Number(await db.value(
            "SELECT count(*) FROM darkspere.billing_calls WHERE account_id = $1 AND http_status <> 200", [account])), 5);

        // Cancel at the period's end: still pro until then.
        const atEnd = await call(worker, 'cancel', { at_period_end: true }, key);
        assert.equal(atEnd.status, 200, atEnd.text);
        assert.deepEqual({ ...atEnd.json, current_period_end: undefined },
            { subscription_id: 'sub_e2e_b', status: 'active', cancel_at_period_end: true, plan: 'pro',
                current_period_end: undefined });
        assert.equal(stripe.requests.at(-1).path, '/v1/subscriptions/sub_e2e_b');
        assert.deepEqual({ ...stripe.requests.at(-1).params }, { cancel_at_period_end: 'true' });
        // Cancel now: Stripe deletes the subscription; the account is on free at once.
        const nowCancel = await call(worker, 'cancel', { at_period_end: false }, key);
        assert.equal(nowCancel.status, 200, nowCancel.text);
        assert.equal(stripe.requests.at(-1).method, 'DELETE');
        assert.equal(nowCancel.json.status, 'canceled');
        assert.equal(nowCancel.json.plan, 'free');
        assert.equal(await db.value('SELECT plan FROM darkspere.accounts WHERE account_id = $1', [account]), 'free');
        // Stripe's customer.subscription.deleted comes later: nothing moves.
        assert.equal((await webhook(worker, event('customer.subscription.deleted', stripe.subscription('sub_e2e_b'))))
            .status, 200);
        assert.equal(await db.value('SELECT plan FROM darkspere.accounts WHERE account_id = $1', [account]), 'free');

        // Validation: 422 naming the field, 400 for a body that is not an object, 401 without a key.
        for (const [route, body, field] of [
            ['checkout', { ...urls }, 'plan'],
            ['checkout', { plan: 'gold', ...urls }, 'plan'],
            ['checkout', { plan: 'free', ...urls }, 'plan'],
            ['checkout', { plan: 'pro', ...urls, success_url: 'javascript:alert(1)' }, 'success_url'],
            ['checkout', { plan: 'pro', ...urls, coupon: 'FREE' }, 'coupon'],
            ['portal', {}, 'return_url'],
            ['cancel', { at_period_end: 'yes' }, 'at_period_end'],
        ]) {
            const res = await call(worker, route, body, key);
            assert.equal(res.status, 422, `${route} ${JSON.stringify(body)}: ${res.text}`);
            assert.equal(res.json.error.field, field);
        }
        assert.equal((await call(worker, 'cancel', '[true]', key)).status, 400);
        assert.equal((await call(worker, 'portal', { return_url: 'https://app.example/' })).status, 401);

        // Nothing Stripe-bound leaked into the logs: no API key, no webhook secret.
        const logs = JSON.stringify(worker.logs ?? []);
        assert.ok(!logs.includes(API_KEY) && !logs.includes(SECRET));
        assert.ok(stripe.requests.every((r) => r.headers.authorization === `Bearer ${API_KEY}`));

        // Without stripe-api-key the routes answer 503 once the key and the body have passed.
        await worker.stop();
        await stack.startWorker({ env: { DARKSPERE_STRIPE_WEBHOOK_SECRET: SECRET } });
        const unconfigured = await call(stack.worker, 'portal', { return_url: 'https://app.example/' }, key);
        assert.equal(unconfigured.status, 503);
        assert.equal(unconfigured.json.error.code, 'billing_unconfigured');
    });

    test('the official stripe package reads the stand-in as Stripe', async (t) => {
        const stripe = await startStripeApi({ apiKey: API_KEY, version: VERSION, prices: [PRICE] });
        t.after(() => stripe.close());
        const sdk = new Stripe(API_KEY, { host: '127.0.0.1', port: stripe.port, protocol: 'http',
            apiVersion: VERSION, maxNetworkRetries: 0 });
        const session = await sdk.checkout.sessions.create({ mode: 'subscription',
            line_items: [{ price: PRICE, quantity: 1 }], client_reference_id: '7',
            success_url: 'https://a.example/ok', cancel_url: 'https://a.example/no' }, { idempotencyKey: 'k1' });
        assert.equal(session.object, 'checkout.session');
        assert.match(session.url, /^https:\/\//);
        const portal = await sdk.billingPortal.sessions.create({ customer: 'cus_x', return_url: 'https://a.example/' },
            { idempotencyKey: 'k2' });
        assert.equal(portal.object, 'billing_portal.session');
        stripe.addSubscription({ id: 'sub_x', object: 'subscription', status: 'active', cancel_at_period_end: false,
            items: { object: 'list', data: [] } });
        assert.equal((await sdk.subscriptions.update('sub_x', { cancel_at_period_end: true },
            { idempotencyKey: 'k3' })).cancel_at_period_end, true);
        assert.equal((await sdk.subscriptions.cancel('sub_x', {}, { idempotencyKey: 'k4' })).status, 'canceled');
        const meter = await sdk.billing.meterEvents.create({ event_name: 'sms_overage', identifier: '1:sms_in:1',
            payload: { stripe_customer_id: 'cus_x', value: '3' }, timestamp: now() }, { idempotencyKey: 'k5' });
        assert.equal(meter.object, 'billing.meter_event');
        stripe.failNext(402, 'card_error', 'Your card was declined.', 'card_declined');
        await assert.rejects(sdk.billingPortal.sessions.create({ customer: 'cus_x', return_url: 'https://a.example/' },
            { idempotencyKey: 'k6' }),
            (err) => err instanceof Stripe.errors.StripeCardError && err.message === 'Your card was declined.');
        await assert.rejects(new Stripe('sk_test_wrong', { host: '127.0.0.1', port: stripe.port, protocol: 'http',
            apiVersion: VERSION, maxNetworkRetries: 0 }).billingPortal.sessions.create({ customer: 'cus_x' },
            { idempotencyKey: 'k7' }),
        (err) => err instanceof Stripe.errors.StripeAuthenticationError);
    });
});
