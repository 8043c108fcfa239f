// test/e2e/lib/stripe-api.mjs — a loopback stand-in for the Stripe API calls DarkSpere makes (Checkout Sessions,
// Billing Portal sessions, subscription cancel/update, Billing meter events), strict about what Stripe checks and
// what DarkSpere promises: a form-encoded body (every reserved byte percent-encoded), `Authorization: Bearer
// <key>`, an `Idempotency-Key` (a replay with the same parameters gets the first answer, other parameters a 400
// idempotency_error, as Stripe does) and the pinned `Stripe-Version`. Answers have the shapes of Stripe's API
// reference (2025-03-31.basil); errors are {error: {type, code, message}}.
//
//   const stripe = await startStripeApi({ apiKey, version, prices: ['price_…'] });
//   stripe.url                      base URL for the worker's stripe-base
//   stripe.requests                 every request: {method, path, headers, params, status}
//   stripe.addSubscription(obj)     a subscription the API knows (cancel/update act on it)
//   stripe.failNext(status, error)  the next request answers this error instead
import { createServer } from 'node:http';
import { closeServer, listen, randomHex, readBody, sendJson } from './net.mjs';

// Bytes a form encoder leaves as they are (application/x-www-form-urlencoded: unreserved, '+' for space, %XX;
// names may also keep Stripe's brackets raw, as the official stripe package sends them).
const FORM_BODY = /^([A-Za-z0-9._~*+%[\]-]*=[A-Za-z0-9._~*+%-]*)(&[A-Za-z0-9._~*+%[\]-]*=[A-Za-z0-9._~*+%-]*)*$/;

function stripeError(status, type, message, code) {
    return { status, body: { error: { type, message, ...(code ? { code } : {}) } } };
}

// nest turns Stripe's bracket notation (line_items[0][price]=…) into objects, as Stripe reads it.
function nest(params) {
    const out = {};
    for (const [name, value] of params) {
        const keys = name.replace(/\]/g, '').split('[');
        let node = out;
        keys.forEach((k, i) => {
            if (i === keys.length - 1) node[k] = value;
            else node = node[k] ??= {};
        });
    }
    return out;
}

export async function startStripeApi({ apiKey, version = '2025-03-31.basil', prices = [] }) {
    const requests = [];
    const subscriptions = new Map();
    const idempotent = new Map(); // key → {fingerprint, status, body}
    const meterEvents = new Map(); // identifier → event
    const failures = [];
    const now = () => Math.floor(Date.now() / 1000);

    function route(method, path, p) {
        let m;
        if (method === 'POST' && path === '/v1/checkout/sessions') {
            if (p.mode !== 'subscription') return stripeError(400, 'invalid_request_error', 'Invalid mode', 'parameter_invalid_empty');
            const price = p.line_items?.['0']?.price;
            if (!prices.includes(price)) return stripeError(400, 'invalid_request_error', `No such price: '${price}'`, 'resource_missing');
            for (const f of ['success_url', 'cancel_url']) {
                if (!/^https?:\/\//.test(p[f] || '')) return stripeError(400, 'invalid_request_error', `Not a valid URL: ${f}`, 'url_invalid');
            }
            const id = `cs_test_${randomHex(24)}`;
            return { status: 200, body: { id, object: 'checkout.session', mode: 'subscription', status: 'open',
                url: `https://checkout.stripe.com/c/pay/${id}`, client_reference_id: p.client_reference_id ?? null,
                customer: p.customer ?? null, subscription: null, success_url: p.success_url, cancel_url: p.cancel_url,
                metadata: p.metadata ?? {}, payment_status: 'unpaid', livemode: false, created: now(),
                expires_at: now() + 86400 } };
        }
        if (method === 'POST' && path === '/v1/billing_portal/sessions') {
            if (!/^cus_/.test(p.customer || '')) return stripeError(400, 'invalid_request_error', `No such customer: '${p.customer}'`, 'resource_missing');
            const id = `bps_${randomHex(24)}`;
            return { status: 200, body: { id, object: 'billing_portal.session', customer: p.customer,
                return_url: p.return_url ?? null, url: `https://billing.stripe.com/p/session/test_${randomHex(24)}`,
                configuration: 'bpc_e2e', flow: null, locale: null, on_behalf_of: null, livemode: false, created: now() } };
        }
        if ((m = path.match(/^\/v1\/subscriptions\/(sub_[A-Za-z0-9_]+)$/))) {
            const sub = subscriptions.get(m[1]);
            if (!sub) return stripeError(404, 'invalid_request_error', `No such subscription: '${m[1]}'`, 'resource_missing');
            if (method === 'DELETE') {
                Object.assign(sub, { status: 'canceled', canceled_at: now(), ended_at: now() });
            } else if (method === 'POST') {
                if ('cancel_at_period_end' in p) {
                    sub.cancel_at_period_end = p.cancel_at_period_end === 'true';
                    sub.canceled_at = sub.cancel_at_period_end ? now() : null;
                }
            } else return stripeError(405, 'invalid_request_error', 'Unrecognized request method');
            return { status: 200, body: structuredClone(sub) };
        }
        if (method === 'POST' && path === '/v1/billing/meter_events') {
            if (!p.event_name || !p.payload?.stripe_customer_id || !/^\d+$/.test(p.payload?.value || '')) {
                return stripeError(400, 'invalid_request_error', 'event_name, payload[stripe_customer_id] and payload[value] are required', 'parameter_missing');
            }
            if (p.identifier && meterEvents.has(p.identifier)) {
                return stripeError(400, 'invalid_request_error', `An event with identifier ${p.identifier} already exists`, 'duplicate_meter_event');
            }
            const event = { object: 'billing.meter_event', created: now(), event_name: p.event_name,
                identifier: p.identifier ?? `mev_${randomHex(20)}`, livemode: false, payload: p.payload,
                timestamp: Number(p.timestamp ?? now()) };
            meterEvents.set(event.identifier, event);
            return { status: 200, body: event };
        }
        return stripeError(404, 'invalid_request_error', `Unrecognized request URL (${method}: ${path})`);
    }

    function handle(req, raw) {
        const path = req.url.split('?')[0];
        const body = raw.toString('utf8');
        const h = req.headers;
        if (h.authorization !== `Bearer ${apiKey}`) {
            return stripeError(401, 'invalid_request_error', 'Invalid API Key provided: sk_test_****');
        }
        if (h['stripe-version'] !== version) {
            return stripeError(400, 'invalid_request_error', `stand-in: Stripe-Version must be ${version}, not ${h['stripe-version']}`);
        }
        if (!h['idempotency-key'] || h['idempotency-key'].length > 255) {
            return stripeError(400, 'invalid_request_error', 'stand-in: every call must carry an Idempotency-Key');
        }
        if (body !== '' && (h['content-type'] !== 'application/x-www-form-urlencoded' || !FORM_BODY.test(body))) {
            return stripeError(400, 'invalid_request_error', 'stand-in: the body is not application/x-www-form-urlencoded');
        }
        const params = [...new URLSearchParams(body)];
        const fingerprint = `${req.method} ${path} ${body}`;
        const seen = idempotent.get(h['idempotency-key']);
        if (seen) {
            if (seen.fingerprint !== fingerprint) {
                return stripeError(400, 'idempotency_error', 'Keys for idempotent requests can only be used with the same parameters they were first used with.');
            }
            return { ...seen, replayed: true };
        }
        const failure = failures.shift();
        const answer = failure ?? route(req.method, path, nest(params));
        idempotent.set(h['idempotency-key'], { fingerprint, ...answer });
        return answer;
    }

    const server = createServer((req, res) => {
        readBody(req).then((raw) => {
            const answer = handle(req, raw);
            requests.push({ method: req.method, path: req.url, headers: req.headers, status: answer.status,
                params: Object.fromEntries(new URLSearchParams(raw.toString('utf8'))), replayed: !!answer.replayed });
            if (answer.replayed) res.setHeader('Idempotent-Replayed', 'true');
            res.setHeader('Request-Id', `req_${randomHex(14)}`);
            sendJson(res, answer.status, answer.body);
        }, (err) => res.writeHead(err.status || 400).end());
    });
    const port = await listen(server);
    return {
        url: `http://127.0.0.1:${port}`,
        port,
        requests,
        meterEvents,
        addSubscription: (sub) => subscriptions.set(sub.id, structuredClone(sub)),
        subscription: (id) => subscriptions.get(id),
        failNext: (status, type, message, code) => failures.push(stripeError(status, type, message, code)),
        close: () => closeServer(server),
    };
}
