// test/e2e/lib/twilio-webhook.mjs — inbound SMS webhooks exactly as Twilio posts them (docs/protocols.md#twilio-inbound-webhooks),
// signed with the twilio SDK's own getExpectedTwilioSignature, never with our code.
import { Agent, request } from 'node:http';
import twilio from 'twilio';
import { randomHex } from './net.mjs';

// One keep-alive connection pool for every webhook we post (Twilio reuses connections too); node:http rather than
// fetch because the benchmark's load generator shares the CPU with what it measures, and fetch costs several times
// more per request. Idle sockets are dropped after 30 s, before the worker's own 60 s idle limit can close one
// under a request.
const keepAlive = new Agent({ keepAlive: true, maxSockets: 256, timeout: 30000 });

// newMessageSid returns a fresh inbound MessageSid: "SM" + 32 hex digits.
export function newMessageSid() {
    return `SM${randomHex(32)}`;
}

// inboundParams builds the full parameter set Twilio sends for one inbound SMS, geo fields included (empty
// strings are signed too). `extra` adds or overrides parameters.
export function inboundParams({ accountSid, from, to, body, messageSid = newMessageSid(), extra = {} }) {
    return {
        ToCountry: 'US',
        ToState: 'CA',
        SmsMessageSid: messageSid,
        NumMedia: '0',
        ToCity: '',
        FromZip: '',
        SmsSid: messageSid,
        FromState: 'CA',
        SmsStatus: 'received',
        FromCity: 'SAN FRANCISCO',
        Body: body,
        FromCountry: 'US',
        To: to,
        ToZip: '',
        NumSegments: '1',
        MessageSid: messageSid,
        AccountSid: accountSid,
        From: from,
        ApiVersion: '2010-04-01',
        ...extra,
    };
}

// signedPost posts form params to `target` (where the worker listens) with an X-Twilio-Signature computed over
// `signedUrl` (the public URL Twilio would call). signature: undefined → correct, null → header omitted,
// a string → sent as is. Resolves with {status, contentType, retryAfter, text}.
export async function signedPost({ target, signedUrl = target, authToken, params, signature, timeoutMs = 10000 }) {
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded', 'User-Agent': 'TwilioProxy/1.1' };
    const sig = signature === undefined ? twilio.getExpectedTwilioSignature(authToken, signedUrl, params) : signature;
    if (sig !== null) headers['X-Twilio-Signature'] = sig;
    headers['I-Twilio-Idempotency-Token'] = randomHex(32);
    const body = new URLSearchParams(params).toString();
    headers['Content-Length'] = Buffer.byteLength(body);
    return new Promise((resolve, reject) => {
        const req = request(target, { method: 'POST', headers, agent: keepAlive, timeout: timeoutMs }, (res) => {
            const chunks = [];
            res.on('data', (chunk) => chunks.push(chunk));
            res.on('end', () => resolve({
                status: res.statusCode,
                contentType: res.headers['content-type'] ?? null,
                retryAfter: res.headers['retry-after'] ?? null,
                text: Buffer.concat(chunks).toString('utf8'),
            }));
            res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`no answer from ${target} within ${timeoutMs} ms`)));
        req.on('error', reject);
        req.end(body);
    });
}
