// test/e2e/peers/twilio-api.mjs — a loopback stand-in for Twilio's Messages API (2010-04-01), strict about what
// the real API checks (method, path, Basic auth, form fields) and able to fail on demand and to post signed
// status callbacks, so the worker's sending path is exercised against Twilio's shapes without the internet.
//
//   POST   /2010-04-01/Accounts/:AccountSid/Messages.json   send (201 + Message JSON, or Twilio error JSON)
//   GET    /2010-04-01/Accounts/:AccountSid/Messages/:Sid.json
//   GET    /_messages       every accepted message, oldest first     DELETE /_messages  forget them
//   GET    /_requests       every request to the API, accepted or not
//   POST   /_fail           {to?, code, status?, times?, delay_ms?}  program failures; DELETE /_fail clears them
//   GET    /_callbacks      status callbacks posted and the status our peer answered
//
// CLI: node twilio-api.mjs --port 0 --account AC…:token [--account …] [--status-callbacks] [--callback-delay-ms N]
import { EventEmitter } from 'node:events';
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';
import twilio from 'twilio';
import { closeServer, listen, parseCliArgs, pathOf, randomHex, readBody, sendJson, sleep } from '../lib/net.mjs';

const API_VERSION = '2010-04-01';
const MAX_BODY_CHARS = 1600;
const E164 = /^\+[1-9]\d{1,14}$/;
const MESSAGES_PATH = new RegExp(`^/${API_VERSION}/Accounts/([^/]+)/Messages\\.json$`);
const MESSAGE_PATH = new RegExp(`^/${API_VERSION}/Accounts/([^/]+)/Messages/([^/]+)\\.json$`);

// Twilio error bodies of the 2010 API: {code, message, more_info, status}.
const ERRORS = {
    20003: { status: 401, message: 'Authenticate' },
    20404: { status: 404, message: 'The requested resource was not found' },
    20429: { status: 429, message: 'Too Many Requests' },
    20500: { status: 500, message: 'Internal Server Error' },
    20503: { status: 503, message: 'Service Unavailable' },
    21211: { status: 400, message: "The 'To' number is not a valid phone number." },
    21602: { status: 400, message: 'Message body is required.' },
    21603: { status: 400, message: "A 'From' phone number is required." },
    21604: { status: 400, message: "A 'To' phone number is required." },
    21606: { status: 400, message: "The 'From' phone number provided is not a valid message-capable Twilio phone number for this destination/account" },
    21609: { status: 400, message: 'Invalid StatusCallback url' },
    21610: { status: 400, message: 'Attempt to send to unsubscribed recipient' },
    21611: { status: 400, message: 'This From number has exceeded the maximum number of queued messages' },
    21617: { status: 400, message: 'The concatenated message body exceeds the 1600 character limit.' },
    21620: { status: 400, message: 'Invalid media URL(s).' },
};

// A failure shorthand in /_fail: an HTTP status alone (429, 500, 503) maps to Twilio's code for it.
const CODE_FOR_STATUS = { 401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503 };

function twilioError(code, status) {
    const known = ERRORS[code] || { status: status || 400, message: `Error ${code}` };
    return {
        status: status || known.status,
        body: {
            code,
            message: known.message,
            more_info: `https://www.twilio.com/docs/errors/${code}`,
            status: status || known.status,
        },
    };
}

// GSM 03.38 basic set and extension table (extension characters cost two septets).
const GSM_BASIC = new Set(
    '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà',
);
const GSM_EXTENDED = new Set('\f^{}\\[~]|€');

// countSegments returns Twilio's num_segments for a body: GSM-7 160/153 septets, otherwise UCS-2 70/67 units.
export function countSegments(body) {
    let septets = 0;
    let gsm = true;
    for (const ch of body) {
        if (GSM_BASIC.has(ch)) septets += 1;
        else if (GSM_EXTENDED.has(ch)) septets += 2;
        else {
            gsm = false;
            break;
        }
    }
    if (gsm) return septets <= 160 ? 1 : Math.ceil(septets / 153);
    const units = body.length; // UTF-16 code units, as UCS-2 counts them
    return units <= 70 ? 1 : Math.ceil(units / 67);
}

// rfc2822 formats a date the way Twilio's JSON does: "Thu, 30 Jul 2015 20:12:31 +0000".
function rfc2822(date) {
    return date.toUTCString().replace('GMT', '+0000');
}

function basicAuth(header) {
    const match = /^Basic\s+([A-Za-z0-9+/=]+)$/.exec(header || '');
    if (!match) return null;
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return null;
    return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function isHttpUrl(text) {
    try {
        const url = new URL(text);
        return url.protocol === 'http:' || url.protocol === 'https:';
    } catch {
        return false;
    }
}

// startTwilioApi starts the stand-in on 127.0.0.1 and resolves with a handle:
//   url, port, messages[], requests[], callbacks[], events (EventEmitter: 'message', 'request', 'callback'),
//   peakOpen (most Messages API requests open at once), fail(rule), clear(), waitForMessages(n, timeoutMs), close().
// accounts maps AccountSid → AuthToken. statusCallbacks: false, or {statuses, delayMs} to post signed callbacks.
// concurrencyLimit: like Twilio, answer 429 (20429, not processed) to a request that finds this many of its
// account's requests already open (null: no limit).
export async function startTwilioApi({
    port = 0,
    accounts = {},
    statusCallbacks = false,
    requireStatusCallback = false,
    concurrencyLimit = null,
    log = () => {},
} = {}) {
    const messages = [];
    const requests = [];
    const callbacks = [];
    let failures = [];
    const events = new EventEmitter();
    const pendingCallbacks = new Set();
    let closing = false;
    const openByAccount = new Map(); // AccountSid → Messages API requests being answered
    let peakOpen = 0;
    const callbackPlan = statusCallbacks
        ? { statuses: ['sent', 'delivered'], delayMs: 20, ...(statusCallbacks === true ? {} : statusCallbacks) }
        : null;

    // The API: POST (send) and GET (list) on …/Messages.json, GET one message on …/Messages/{Sid}.json.
    async function messagesApi(req, res, accountSid, path) {
        const open = (openByAccount.get(accountSid) || 0) + 1;
        openByAccount.set(accountSid, open);
        peakOpen = Math.max(peakOpen, open);
        res.once('close', () => openByAccount.set(accountSid, openByAccount.get(accountSid) - 1));
        const raw = await readBody(req);
        const record = {
            method: req.method,
            path,
            content_type: req.headers['content-type'] || null,
            authorization: req.headers.authorization ? 'Basic ***' : null,
            body: raw.length ? raw.toString('utf8') : '',
            received_at: new Date().toISOString(),
            outcome: null,
        };
        requests.push(record);
        events.emit('request', record);
        const reply = (status, body) => {
            record.outcome = status;
            sendJson(res, status, body);
        };
        const error = (code, status) => {
            const e = twilioError(code, status);
            log(`twilio-api: ${req.method} ${path} → ${e.status} ${code}`);
            reply(e.status, e.body);
        };

        if (concurrencyLimit !== null && open > concurrencyLimit) return error(20429);
        if (req.method !== 'POST' && req.method !== 'GET') return error(20404, 405);
        if (!authorized(req, accountSid)) return error(20003);
        if (req.method === 'GET') {
            return reply(200, { messages: messages.filter((m) => m.account_sid === accountSid).map((m) => m.resource) });
        }

        // Bodies are read raw so the content type is checked, not assumed.
        const type = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
        if (type !== 'application/x-www-form-urlencoded') {
            record.reject_reason = `content type ${type || '(none)'}`;
            return error(21602); // Twilio sees no parameters at all in a non-form body
        }
        const form = new URLSearchParams(record.body);
        const params = {};
        for (const [name, value] of form) params[name] = name in params ? [].concat(params[name], value) : value;
        record.params = params;
        const to = form.get('To');
        const from = form.get('From');
        const body = form.get('Body');
        const statusCallback = form.get('StatusCallback');
        if (!to) return error(21604);
        if (!E164.test(to)) return error(21211);
        if (!from && !form.get('MessagingServiceSid')) return error(21603);
        if (from && !E164.test(from)) return error(21606);
        if (!body && !form.get('MediaUrl') && !form.get('ContentSid')) return error(21602);
        if (body && [...body].length > MAX_BODY_CHARS) return error(21617);
        if (statusCallback !== null && !isHttpUrl(statusCallback)) return error(21609);
        if (requireStatusCallback && statusCallback === null) return error(21609);

        const rule = failures.find((f) => f.times > 0 && (!f.to || f.to === to));
        if (rule) {
            rule.times -= 1;
            if (rule.delay_ms) await sleep(rule.delay_ms);
            if (rule.code) return error(rule.code, rule.status);
        }

        const now = new Date();
        const sid = `SM${randomHex(32)}`;
        const uri = `/${API_VERSION}/Accounts/${accountSid}/Messages/${sid}.json`;
        const resource = {
            account_sid: accountSid,
            api_version: API_VERSION,
            body: body || '',
            date_created: rfc2822(now),
            date_sent: null,
            date_updated: rfc2822(now),
            direction: 'outbound-api',
            error_code: null,
            error_message: null,
            from: from || null,
            messaging_service_sid: form.get('MessagingServiceSid'),
            num_media: String(form.getAll('MediaUrl').length),
            num_segments: String(body ? countSegments(body) : 1),
            price: null,
            price_unit: 'USD',
            sid,
            status: 'queued',
            subresource_uris: { media: uri.replace('.json', '/Media.json'), feedback: uri.replace('.json', '/Feedback.json') },
            to,
            uri,
        };
        const message = {
            sid,
            account_sid: accountSid,
            to,
            from,
            body: body || '',
            status_callback: statusCallback,
            params,
            received_at: now.toISOString(),
            resource,
        };
        messages.push(message);
        log(`twilio-api: message ${sid} ${from} → ${to}: ${JSON.stringify(body)}`);
        reply(201, resource);
        events.emit('message', message);
        if (callbackPlan && statusCallback) scheduleCallbacks(message);
        return undefined;
    }

    function oneMessage(req, res, accountSid, sid) {
        if (!authorized(req, accountSid)) {
            const e = twilioError(20003);
            return sendJson(res, e.status, e.body);
        }
        const message = messages.find((m) => m.sid === sid && m.account_sid === accountSid);
        if (!message) {
            const e = twilioError(20404);
            return sendJson(res, e.status, e.body);
        }
        return sendJson(res, 200, message.resource);
    }

    function authorized(req, accountSid) {
        const credentials = basicAuth(req.headers.authorization);
        return Boolean(credentials && credentials.user === accountSid && Object.hasOwn(accounts, accountSid)
            && accounts[accountSid] === credentials.password);
    }

    // Control endpoints for tests (JSON), then the API; anything else is Twilio's 404.
    async function route(req, res) {
        const path = pathOf(req);
        const control = `${req.method} ${path}`;
        switch (control) {
        case 'GET /_messages': return sendJson(res, 200, messages);
        case 'DELETE /_messages':
            messages.length = 0;
            return res.writeHead(204).end();
        case 'GET /_requests': return sendJson(res, 200, requests);
        case 'GET /_callbacks': return sendJson(res, 200, callbacks);
        case 'POST /_fail': {
            const raw = await readBody(req);
            handle.fail(raw.length ? JSON.parse(raw.toString('utf8')) : {});
            return sendJson(res, 201, failures);
        }
        case 'DELETE /_fail':
            failures = [];
            return res.writeHead(204).end();
        default:
            break;
        }
        const list = MESSAGES_PATH.exec(path);
        if (list) return messagesApi(req, res, list[1], path);
        const one = MESSAGE_PATH.exec(path);
        if (one && req.method === 'GET') return oneMessage(req, res, one[1], one[2]);
        const e = twilioError(20404);
        return sendJson(res, e.status, e.body);
    }

    // postStatus posts one status callback signed with the account's auth token, the way Twilio does (§4).
    async function postStatus(message, status, errorCode) {
        const params = {
            AccountSid: message.account_sid,
            ApiVersion: API_VERSION,
            From: message.from || '',
            MessageSid: message.sid,
            MessageStatus: status,
            SmsSid: message.sid,
            SmsStatus: status,
            To: message.to,
        };
        if (status === 'delivered' || status === 'undelivered') {
            const d = new Date();
            const two = (n) => String(n).padStart(2, '0');
            params.RawDlrDoneDate = `${two(d.getUTCFullYear() % 100)}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}`;
        }
        if (errorCode) params.ErrorCode = String(errorCode);
        const token = accounts[message.account_sid];
        const signature = twilio.getExpectedTwilioSignature(token, message.status_callback, params);
        const entry = { sid: message.sid, status, url: message.status_callback, answered: null, error: null };
        callbacks.push(entry);
        try {
            const res = await fetch(message.status_callback, {
                method: 'POST',
                headers: {
                    'Content-Type': 'application/x-www-form-urlencoded',
                    'X-Twilio-Signature': signature,
                    'User-Agent': 'TwilioProxy/1.1',
                },
                body: new URLSearchParams(params).toString(),
                signal: AbortSignal.timeout(5000),
            });
            entry.answered = res.status;
            await res.arrayBuffer();
        } catch (err) {
            entry.error = err.message;
        }
        message.resource.status = status;
        events.emit('callback', entry);
    }

    function scheduleCallbacks(message) {
        const run = (async () => {
            for (const status of callbackPlan.statuses) {
                await sleep(callbackPlan.delayMs);
                if (closing) return;
                await postStatus(message, status);
            }
        })();
        pendingCallbacks.add(run);
        run.finally(() => pendingCallbacks.delete(run));
    }

    const server = createServer((req, res) => {
        route(req, res).catch((err) => {
            if (!res.headersSent) sendJson(res, err.status || 400, { code: 20001, message: err.message, status: err.status || 400 });
        });
    });
    server.keepAliveTimeout = 5000;
    const boundPort = await listen(server, port);

    const handle = {
        port: boundPort,
        url: `http://127.0.0.1:${boundPort}`,
        messages,
        requests,
        callbacks,
        events,
        get peakOpen() {
            return peakOpen;
        },
        // fail programs the next `times` sends (to `to`, or to anyone) to fail with a Twilio error `code`
        // (or an HTTP status: 429, 500, 503), optionally after delay_ms.
        fail({ to = null, code = null, status = null, times = 1, delay_ms = 0 } = {}) {
            let c = code;
            if (!c && status) c = CODE_FOR_STATUS[status] || 20500;
            if (c && c < 1000) {
                // a bare HTTP status given as the code
                c = CODE_FOR_STATUS[c] || 20500;
            }
            failures.push({ to, code: c, status, times, delay_ms });
        },
        clearFailures() {
            failures = [];
        },
        clear() {
            messages.length = 0;
            requests.length = 0;
            callbacks.length = 0;
        },
        // postStatus lets a test send any status callback for a recorded message (out of order, repeated…).
        async postStatus(sid, status, errorCode) {
            const message = messages.find((m) => m.sid === sid);
            if (!message) throw new Error(`no message ${sid}`);
            await postStatus(message, status, errorCode);
            return callbacks[callbacks.length - 1];
        },
        // waitForMessages resolves when at least n messages (matching filter) were accepted.
        async waitForMessages(n, { timeoutMs = 10000, filter = () => true } = {}) {
            const deadline = Date.now() + timeoutMs;
            for (;;) {
                const got = messages.filter(filter);
                if (got.length >= n) return got;
                if (Date.now() >= deadline) {
                    throw new Error(`twilio-api: expected ${n} message(s), got ${got.length} after ${timeoutMs} ms: `
                        + JSON.stringify(got.map((m) => `${m.to}: ${m.body}`)));
                }
                await sleep(25);
            }
        },
        async close() {
            closing = true;
            await closeServer(server);
            await Promise.allSettled([...pendingCallbacks]);
        },
    };
    return handle;
}

// CLI entry point.
if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
    const args = parseCliArgs(process.argv.slice(2));
    const accounts = {};
    for (const pair of [].concat(args.account || [])) {
        const colon = pair.indexOf(':');
        accounts[pair.slice(0, colon)] = pair.slice(colon + 1);
    }
    const api = await startTwilioApi({
        port: Number(args.port || 0),
        accounts,
        statusCallbacks: args['status-callbacks'] ? { delayMs: Number(args['callback-delay-ms'] || 200) } : false,
        log: (line) => process.stderr.write(`${line}\n`),
    });
    process.stdout.write(`${JSON.stringify({ msg: 'listening', peer: 'twilio-api', port: api.port, url: api.url })}\n`);
    const stop = async () => {
        await api.close();
        process.exit(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
}
