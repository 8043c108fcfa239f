// test/e2e/lib/db.mjs — SQL access for tests (the `pg` package), tolerant of server restarts: a broken pooled
// connection is dropped and the next query opens a new one.
import pg from 'pg';

// bigint ids come back as JS numbers in tests (they stay far below 2^53 here).
pg.types.setTypeParser(20, (value) => Number(value));

export class Db {
    constructor(config) {
        this.pool = new pg.Pool({ ...config, max: 3, idleTimeoutMillis: 2000, connectionTimeoutMillis: 5000 });
        this.pool.on('error', () => {}); // an idle client lost its server (restart); the pool replaces it
        this.ended = false;
    }

    // query runs one statement and resolves with its rows.
    async query(text, params = []) {
        const result = await this.pool.query(text, params);
        return result.rows;
    }

    // one runs a statement that returns one row and resolves with that row (or undefined).
    async one(text, params = []) {
        return (await this.query(text, params))[0];
    }

    // value runs a statement and resolves with the first column of its first row.
    async value(text, params = []) {
        const row = await this.one(text, params);
        return row === undefined ? undefined : Object.values(row)[0];
    }

    async end() {
        if (this.ended) return;
        this.ended = true;
        await this.pool.end();
    }
}
