// test/e2e/peers/signature.mjs — how an agent checks X-DarkSpere-Signature (docs/mcp-agents.md), with node:crypto
// only: the loopback agents refuse any request it does not accept.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const SIGNATURE_HEADER = 'x-darkspere-signature';

// parseSignature splits `t=<unix>,v1=<hex>[,v1=<hex>…]` into {t, v1: [...]}; unknown parts are ignored.
export function parseSignature(header) {
    const out = { t: null, v1: [] };
    for (const part of String(header ?? '').split(',')) {
        const eq = part.indexOf('=');
        if (eq < 0) continue;
        const key = part.slice(0, eq).trim();
        const value = part.slice(eq + 1).trim();
        if (key === 't') out.t = value;
        else if (key === 'v1') out.v1.push(value);
    }
    return out;
}

// signatureMatches — whether one v1 value is the HMAC of `<t>.<body>` under secret (constant-time compare).
export function signatureMatches(secret, t, rawBody, v1) {
    const expected = createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest();
    const got = Buffer.from(v1, 'hex');
    return got.length === expected.length && timingSafeEqual(got, expected);
}

// verifySignature accepts a request when its timestamp is within toleranceS of now and some v1 matches some
// secret the agent knows (during a rotation DarkSpere sends one v1 per valid secret).
export function verifySignature(header, rawBody, secrets, { toleranceS = 300, nowS = Date.now() / 1000 } = {}) {
    const { t, v1 } = parseSignature(header);
    if (!/^[0-9]{1,12}$/.test(t ?? '') || Math.abs(nowS - Number(t)) > toleranceS) return false;
    return secrets.some((secret) => v1.some((sig) => signatureMatches(secret, t, rawBody, sig)));
}
