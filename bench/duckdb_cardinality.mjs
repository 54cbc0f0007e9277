// DuckDB reference for bench/cardinality.sh: the MODEL rows tokentally
// writes, computed by DuckDB from the same JSON Lines file and written out
// as JSON Lines, so that both do the same work: GROUP BY week, model, with
// tokens, prompt/completion tokens, requests, prev_tokens (the same model the
// ISO week before), growth, share of the week and rank (tokens desc, model).
//
//   node bench/duckdb_cardinality.mjs IN.jsonl OUT.jsonl [THREADS]
//
// Prints "duckdb <version> threads=<n> rows=<r> query_s=<s>", query_s timed
// inside node around the query alone.
import { DuckDBInstance, version } from '@duckdb/node-api';

const [file, out, threadsArg = '2'] = process.argv.slice(2);
if (!file || !out) {
  console.error('usage: node duckdb_cardinality.mjs IN.jsonl OUT.jsonl [THREADS]');
  process.exit(2);
}
const q = (s) => `'${s.replaceAll("'", "''")}'`;
const instance = await DuckDBInstance.create(':memory:', { threads: String(threadsArg) });
const con = await instance.connect();
// Weeks as integers (1970-01-05 was a Monday), named once per row at the end.
const sql = `
COPY (
  WITH cells AS (
    SELECT (event_time - 345600000) // 604800000 AS w, model,
           sum(prompt_tokens + completion_tokens) AS tokens,
           sum(prompt_tokens) AS prompt_tokens,
           sum(completion_tokens) AS completion_tokens,
           count(*) AS requests
    FROM read_json(${q(file)}, format = 'newline_delimited',
                   columns = {request_id: 'VARCHAR', event_time: 'BIGINT',
                              model: 'VARCHAR', origin: 'VARCHAR',
                              prompt_tokens: 'BIGINT', completion_tokens: 'BIGINT',
                              provider: 'VARCHAR'})
    GROUP BY ALL),
  derived AS (
    SELECT *,
           CASE WHEN lag(w) OVER m = w - 1 THEN lag(tokens) OVER m END AS prev_tokens,
           tokens * 100.0 / sum(tokens) OVER (PARTITION BY w) AS share_pct,
           row_number() OVER (PARTITION BY w ORDER BY tokens DESC, model) AS rank
    FROM cells
    WINDOW m AS (PARTITION BY model ORDER BY w))
  SELECT strftime(to_timestamp((w * 604800000 + 345600000) / 1000), '%G-W%V') AS week,
         'MODEL' AS dimension, model AS key, tokens, prompt_tokens,
         completion_tokens, requests, prev_tokens,
         CASE WHEN prev_tokens <> 0
              THEN (tokens - prev_tokens) / prev_tokens * 100 END AS wow_growth_pct,
         share_pct, rank
  FROM derived
) TO ${q(out)} (FORMAT JSON)`;
const t0 = process.hrtime.bigint();
const reader = await con.runAndReadAll(sql);
const t1 = process.hrtime.bigint();
const rows = reader.getRows()[0]?.[0] ?? '?';
console.log(`duckdb ${version()} threads=${threadsArg} rows=${rows} query_s=${(Number(t1 - t0) / 1e9).toFixed(3)}`);
