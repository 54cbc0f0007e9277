// DuckDB reference query for bench/run.sh: the same weekly GROUP BY that
// tokentally computes, run by DuckDB over the same JSON Lines file.
//
//   node bench/duckdb_query.mjs FILE.jsonl [THREADS] [ROLLUPS.jsonl]
//
// Prints one line "duckdb <version> threads=<n> rows=<r> events=<e>
// query_s=<seconds>", where query_s is measured inside node around the query
// alone (not node start-up nor module loading). With ROLLUPS.jsonl (a
// tokentally replay output) it also prints one "check" line comparing
// DuckDB's per-week token and request totals with tokentally's TOTAL rows.
import { readFileSync } from 'node:fs';
import { DuckDBInstance, version } from '@duckdb/node-api';

const [file, threadsArg = '2', rollupsFile] = process.argv.slice(2);
if (!file) {
  console.error('usage: node duckdb_query.mjs FILE.jsonl [THREADS] [ROLLUPS.jsonl]');
  process.exit(2);
}
const threads = Number(threadsArg);
const sqlString = (s) => `'${s.replaceAll("'", "''")}'`;

// No TimeZone setting: this build has no ICU extension (it cannot be
// autoloaded here), and without ICU timestamps with time zone are UTC, which
// is what ISO weeks in tokentally use.
const instance = await DuckDBInstance.create(':memory:', {
  threads: String(threads),
});
const con = await instance.connect();

// Explicit columns with the TokenEvent names and types, so read_json does not
// sample the file to infer a schema.
const sql = `
SELECT strftime(to_timestamp(event_time / 1000), '%G-W%V') AS week,
       coalesce(origin, split_part(model, '/', 1)) AS origin,
       model,
       sum(prompt_tokens + completion_tokens) AS tokens,
       count(*) AS requests
FROM read_json(${sqlString(file)},
               format = 'newline_delimited',
               columns = {request_id: 'VARCHAR', event_time: 'BIGINT',
                          model: 'VARCHAR', origin: 'VARCHAR',
                          prompt_tokens: 'BIGINT', completion_tokens: 'BIGINT',
                          provider: 'VARCHAR'})
GROUP BY ALL`;

const t0 = process.hrtime.bigint();
const reader = await con.runAndReadAll(sql);
const rows = reader.getRows();
const t1 = process.hrtime.bigint();
const querySeconds = Number(t1 - t0) / 1e9;

let events = 0n;
const weeks = new Map(); // week -> {tokens, requests}
for (const [week, , , tokens, requests] of rows) {
  events += BigInt(requests);
  const w = weeks.get(week) ?? { tokens: 0n, requests: 0n };
  w.tokens += BigInt(tokens);
  w.requests += BigInt(requests);
  weeks.set(week, w);
}
console.log(`duckdb ${version()} threads=${threads} rows=${rows.length} ` +
            `events=${events} query_s=${querySeconds.toFixed(3)}`);

if (rollupsFile) {
  // tokentally: latest revision of each week's TOTAL row.
  const tt = new Map();
  for (const line of readFileSync(rollupsFile, 'utf8').split('\n')) {
    if (!line) continue;
    // Weekly totals stay far below 2^53 at benchmark scales; JSON.parse's
    // doubles are exact there (checked below).
    const r = JSON.parse(line);
    if (r.dimension !== 'TOTAL') continue;
    const prev = tt.get(r.week);
    if (!Number.isSafeInteger(r.tokens)) throw new Error(`unsafe total ${line}`);
    if (!prev || r.revision >= prev.revision) tt.set(r.week, r);
  }
  const bad = [];
  for (const [week, w] of weeks) {
    const r = tt.get(week);
    if (!r || BigInt(r.tokens) !== w.tokens || BigInt(r.requests) !== w.requests)
      bad.push(`${week}: duckdb ${w.tokens}/${w.requests} tokentally ` +
               (r ? `${r.tokens}/${r.requests}` : 'missing'));
  }
  for (const week of tt.keys())
    if (!weeks.has(week)) bad.push(`${week}: missing in duckdb`);
  console.log(bad.length === 0
    ? `check ok: ${weeks.size} weeks, tokens and requests per week equal tokentally's TOTAL rows`
    : `check MISMATCH: ${bad.join('; ')}`);
}
