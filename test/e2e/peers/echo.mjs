// test/e2e/peers/echo.mjs — the deterministic answer both test agents give, so tests can assert on it.

// echoReply answers `<name>: <message> [history N]`, where N is how many earlier turns the agent was given.
export function echoReply(name, { message, history }) {
    const turns = Array.isArray(history) ? history.length : 0;
    return `${name}: ${message} [history ${turns}]`;
}
