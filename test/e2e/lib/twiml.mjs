// test/e2e/lib/twiml.mjs — assertions on the worker's TwiML answers to Twilio (docs/protocols.md#twilio-inbound-webhooks).
import assert from 'node:assert/strict';

// assertAccepted checks a webhook answer is 200 TwiML with no inline reply and returns it.
export function assertAccepted(res, what = 'webhook') {
    assert.equal(res.status, 200, `${what}: expected 200, got ${res.status}: ${res.text}`);
    assert.match(res.contentType || '', /^(text|application)\/xml\b/, `${what}: TwiML content type`);
    assert.match(res.text, /<Response\s*\/>|<Response>\s*<\/Response>/, `${what}: empty <Response/>`);
    return res;
}

// inlineReply returns the text of <Message> in a 200 TwiML answer, or null when there is none.
export function inlineReply(res) {
    assert.equal(res.status, 200, `expected 200, got ${res.status}: ${res.text}`);
    const m = /<Message>([\s\S]*?)<\/Message>/.exec(res.text);
    if (!m) return null;
    return m[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'")
        .replace(/&amp;/g, '&');
}
