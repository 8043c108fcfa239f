// demo/example-agent.mjs — a friendly, deterministic bakery agent for the local demo: no internet, no model.
// Everything it "remembers" comes from the conversation history DarkSpere sends with each turn, so it shows
// that history lives in the database, not in the agent.
//
// It speaks DarkSpere's plain `http` agent protocol (POST {message, history, …} → {"reply": …}) by default,
// or MCP (tool `chat`, official SDK 1.x, stateless JSON) with --protocol mcp.
//
//   node demo/example-agent.mjs --port 3101 [--protocol http|mcp]
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

const HOURS = 'We open at 7 am and close at 6 pm, Tuesday to Sunday (closed Mondays).';
const MENU = {
    sourdough: 6,
    baguette: 3,
    croissant: 2,
    'pain au chocolat': 3,
    'cinnamon roll': 4,
    'carrot cake': 5,
};

const lower = (s) => String(s || '').toLowerCase();
const ORDER_WORDS = /\b(order|i'?d like|would like|i want|i'll have|get me|add|can i (get|have))\b/i;

// nameFrom finds "my name is X" / "I'm X" / "call me X" in a text.
function nameFrom(text) {
    const m = /\b(?:my name is|i'm|i am|call me)\s+([A-Za-zÀ-ÿ'-]{2,20})/i.exec(text || '');
    if (!m || ['hungry', 'here', 'fine', 'good', 'looking', 'interested', 'not', 'just'].includes(lower(m[1]))) return null;
    return m[1][0].toUpperCase() + m[1].slice(1);
}

// itemsIn lists the menu items a text mentions, with quantities ("2 croissants" → croissant × 2).
function itemsIn(text) {
    const t = lower(text);
    const found = [];
    const words = { a: 1, an: 1, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, dozen: 12 };
    for (const item of Object.keys(MENU)) {
        const re = new RegExp(`(?:(\\d+|a|an|one|two|three|four|five|six|dozen)\\s+)?${item}s?\\b`);
        const m = re.exec(t);
        if (m) found.push({ item, qty: m[1] ? Number(m[1]) || words[m[1]] : 1 });
    }
    return found;
}

// memoryOf rebuilds what the agent knows from the history (oldest first) plus the current message.
export function memoryOf(history, message) {
    const userTurns = [...(history || []).filter((h) => h.role === 'user').map((h) => h.content), message];
    let name = null;
    const order = new Map();
    for (const text of userTurns) {
        name = nameFrom(text) || name;
        if (ORDER_WORDS.test(text)) {
            for (const { item, qty } of itemsIn(text)) order.set(item, (order.get(item) || 0) + qty);
        }
        if (/\b(cancel (my )?order|start over)\b/i.test(text)) order.clear();
    }
    return { name, order, turns: (history || []).filter((h) => h.role === 'user').length };
}

function describeOrder(order) {
    const lines = [...order].map(([item, qty]) => `${qty} × ${item}`);
    const total = [...order].reduce((sum, [item, qty]) => sum + MENU[item] * qty, 0);
    return `${lines.join(', ')} — $${total}`;
}

// answer is the whole agent: one deterministic reply per turn.
export function answer({ message, history }) {
    const text = lower(message).trim();
    const mem = memoryOf(history, message);
    const hi = mem.name ? `, ${mem.name}` : '';
    const justNamed = nameFrom(message);

    if (justNamed && text.replace(/[^a-z ]/g, '').split(' ').length <= 5) {
        return `Nice to meet you, ${justNamed}! I'm the Bakery bot. Ask me about our hours, the menu, or place an order.`;
    }
    if (/\b(what('?s| is) my name|who am i)\b/.test(text)) {
        return mem.name ? `You're ${mem.name}, of course!` : "You haven't told me your name yet. What should I call you?";
    }
    if (/\b(what did i order|my order|order status)\b/.test(text)) {
        return mem.order.size ? `Your order so far: ${describeOrder(mem.order)}.` : "You haven't ordered anything yet. Try: I'd like 2 croissants.";
    }
    if (ORDER_WORDS.test(text) && itemsIn(text).length) {
        const added = itemsIn(text).map(({ item, qty }) => `${qty} × ${item}`).join(', ');
        return `Added ${added}${hi}. Your order: ${describeOrder(mem.order)}. Anything else?`;
    }
    if (/\b(cancel (my )?order|start over)\b/.test(text)) return 'Order cleared. What would you like?';
    if (/\b(open|close|hours|when)\b/.test(text)) return HOURS;
    if (/\b(menu|sell|have|bread|cake|pastr)/.test(text)) {
        return `Today: ${Object.entries(MENU).map(([item, price]) => `${item} $${price}`).join(', ')}.`;
    }
    if (/\b(where|address|located)\b/.test(text)) return 'We are at 1 Loopback Lane, right next to 127.0.0.1.';
    if (/\b(thanks|thank you|thx)\b/.test(text)) return `You're welcome${hi}! 🥐`;
    if (/\b(bye|goodbye|see you)\b/.test(text)) {
        return mem.order.size ? `Bye${hi}! Your order (${describeOrder(mem.order)}) will be ready in 20 minutes.` : `Bye${hi}! Come by anytime.`;
    }
    if (/^(hi|hello|hey|good (morning|afternoon|evening))\b/.test(text)) {
        return mem.turns === 0
            ? 'Hi! This is the Bakery bot. I can tell you our hours, the menu, or take an order. What is your name?'
            : `Hello again${hi}! What can I get you?`;
    }
    return `Sorry${hi}, I only know bakery things: hours, the menu, and orders. (That was message ${mem.turns + 1} of our chat.)`;
}

async function readJson(req) {
    let raw = '';
    for await (const chunk of req) {
        raw += chunk;
        if (raw.length > 1e6) throw new Error('body too large');
    }
    return JSON.parse(raw);
}

// startHttp serves the `http` agent protocol on 127.0.0.1.
function startHttp(port) {
    const server = createServer(async (req, res) => {
        // DarkSpere's health probe (GET {origin}/health every darkspere.probe_interval): any 2xx keeps the agent in
        // rotation; three failures in a row take it out until three probes pass again.
        if (req.method === 'GET' && req.url === '/health') {
            res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}');
            return;
        }
        if (req.method !== 'POST') {
            res.writeHead(405, { Allow: 'POST' }).end();
            return;
        }
        try {
            const body = await readJson(req);
            const reply = answer(body);
            res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ reply }));
        } catch (err) {
            res.writeHead(400, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: err.message }));
        }
    });
    return new Promise((resolve) => {
        server.listen(port, '127.0.0.1', () => resolve({
            port: server.address().port,
            url: `http://127.0.0.1:${server.address().port}/`,
            close: () => new Promise((done) => {
                server.close(done);
                server.closeAllConnections?.();
            }),
        }));
    });
}

// startMcp serves the same agent as an MCP tool `chat` (official SDK 1.x, stateless, JSON responses), reusing
// the e2e MCP peer so the SDK wiring lives in one place.
async function startMcp(port) {
    const { startMcpAgent } = await import('../test/e2e/peers/mcp-agent.mjs');
    const agent = await startMcpAgent({ port, transport: 'json', name: 'bakery-bot', respond: answer });
    return { close: () => agent.close(), port: agent.port, url: agent.url };
}

if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
    const arg = (name, fallback) => {
        const i = process.argv.indexOf(`--${name}`);
        return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
    };
    const protocol = arg('protocol', 'http');
    const port = Number(arg('port', '0'));
    const agent = protocol === 'mcp' ? await startMcp(port) : await startHttp(port);
    process.stdout.write(`${JSON.stringify({ msg: 'listening', peer: 'example-agent', protocol, port: agent.port, url: agent.url })}\n`);
    const stop = async () => {
        await agent.close();
        process.exit(0);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
}
