// test/e2e/lib/net.mjs — loopback ports, bounded waiting and small HTTP helpers shared by peers and tests.
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

export const LOOPBACK = '127.0.0.1';

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago (the kernel picks it; we release it).
export function freePort() {
    return new Promise((resolve, reject) => {
        const server = createServer();
        server.unref();
        server.on('error', reject);
        server.listen(0, LOOPBACK, () => {
            const { port } = server.address();
            server.close(() => resolve(port));
        });
    });
}

// waitFor polls predicate until it returns a truthy value and returns that value; throws after timeoutMs.
// The message (string or function) says what was awaited, so a failed test explains itself.
export async function waitFor(predicate, { timeoutMs = 10000, intervalMs = 50, message = 'condition' } = {}) {
    const deadline = Date.now() + timeoutMs;
    let lastError;
    for (;;) {
        try {
            const value = await predicate();
            if (value) return value;
        } catch (err) {
            lastError = err;
        }
        if (Date.now() >= deadline) {
            const what = typeof message === 'function' ? message() : message;
            const cause = lastError ? ` (last error: ${lastError.message})` : '';
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${cause}`);
        }
        await sleep(intervalMs);
    }
}

// listen starts a node http.Server (or an express app's server) on loopback and resolves with its port.
export function listen(server, port = 0) {
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, LOOPBACK, () => {
            server.off('error', reject);
            resolve(server.address().port);
        });
    });
}

// closeServer stops accepting, drops every open connection (including ones a "never answer" mode holds) and
// resolves when the server is closed.
export function closeServer(server) {
    return new Promise((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections?.();
    });
}

// randomHex returns n lower-case hex digits, for Twilio-shaped ids (SM + 32 hex).
export function randomHex(n) {
    let out = '';
    while (out.length < n) out += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
    return out.slice(0, n);
}

// parseCliArgs turns `--name value` / `--flag` pairs into an object; repeated names collect into arrays.
export function parseCliArgs(argv) {
    const out = { _: [] };
    for (let i = 0; i < argv.length; i++) {
        const arg = argv[i];
        if (!arg.startsWith('--')) {
            out._.push(arg);
            continue;
        }
        const eq = arg.indexOf('=');
        let name;
        let value;
        if (eq > 0) {
            name = arg.slice(2, eq);
            value = arg.slice(eq + 1);
        } else {
            name = arg.slice(2);
            value = argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[++i] : true;
        }
        if (name in out) out[name] = [].concat(out[name], value);
        else out[name] = value;
    }
    return out;
}

// readBody collects a request body up to `limit` bytes; rejects (status 413) past it. The peers read bodies
// themselves instead of through a framework: they sit on the benchmark's CPU budget, so the hot paths stay lean.
export function readBody(req, limit = 1 << 20) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        let size = 0;
        req.on('data', (chunk) => {
            size += chunk.length;
            if (size > limit) {
                const err = new Error(`request body over ${limit} bytes`);
                err.status = 413;
                req.destroy();
                reject(err);
                return;
            }
            chunks.push(chunk);
        });
        req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
        req.on('error', reject);
    });
}

// sendJson answers with a JSON body and an exact Content-Length.
export function sendJson(res, status, value) {
    const body = JSON.stringify(value);
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
}

// pathOf returns the path of a request URL without its query string.
export function pathOf(req) {
    const q = req.url.indexOf('?');
    return q < 0 ? req.url : req.url.slice(0, q);
}
