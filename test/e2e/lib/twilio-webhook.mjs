// test/e2e/lib/twilio-webhook.mjs — inbound SMS webhooks exactly as Twilio posts them (specs/twilio.md §1–§2),
// signed with the twilio SDK's own getExpectedTwilioSignature, never with our code.
import twilio from 'twilio';
import { randomHex } from './net.mjs';

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
// a string → sent as is. Resolves with {status, contentType, text}.
export async function signedPost({ target, signedUrl = target, authToken, params, signature, timeoutMs = 10000 }) {
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded', 'User-Agent': 'TwilioProxy/1.1' };
    const sig = signature === undefined ? twilio.getExpectedTwilioSignature(authToken, signedUrl, params) : signature;
    if (sig !== null) headers['X-Twilio-Signature'] = sig;
    headers['I-Twilio-Idempotency-Token'] = randomHex(32);
    const res = await fetch(target, {
        method: 'POST',
        headers,
        body: new URLSearchParams(params).toString(),
        signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: res.status, contentType: res.headers.get('content-type'), text: await res.text() };
}
