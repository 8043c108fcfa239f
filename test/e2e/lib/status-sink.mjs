// test/e2e/lib/status-sink.mjs — a receiver for Twilio status callbacks that checks each signature with the
// twilio SDK's validateRequest; used to prove the Messages API stand-in signs callbacks like Twilio.
import { createServer } from 'node:http';
import twilio from 'twilio';
import { closeServer, listen, readBody, waitFor } from './net.mjs';

export async function startStatusSink({ accounts }) {
    const received = [];
    let url;
    const server = createServer((req, res) => {
        readBody(req).then((raw) => {
            const params = Object.fromEntries(new URLSearchParams(raw.toString('utf8')));
            const token = accounts[params.AccountSid] || '';
            const valid = twilio.validateRequest(token, req.headers['x-twilio-signature'] || '', url, params);
            received.push({ params, valid });
            res.writeHead(valid ? 200 : 403, { 'Content-Type': 'text/xml' }).end('<Response/>');
        }, (err) => res.writeHead(err.status || 400).end());
    });
    const port = await listen(server);
    url = `http://127.0.0.1:${port}/twilio/status`;
    return {
        url,
        received,
        waitFor: (n) => waitFor(() => received.length >= n && received, { message: `${n} status callbacks` }),
        close: () => closeServer(server),
    };
}
