-- Server CPU of one 64-event call of the append function, without the client.
-- Run as a superuser (it reads /proc/<backend pid>/stat) on a schema that a store created:
--   psql "$URL" -v schema=<schema> -f crates/store/benches/pg_function_cost.sql
-- It adds a sequence and two helper functions to that schema (drop the schema after), then
-- prints the backend's CPU per call for the real function and for a function with the same
-- arguments that does nothing (the cost of building the arguments; subtract it).
-- synchronous_commit is off in this session only, so the figure is CPU, not the WAL flush.
\set ON_ERROR_STOP on
SET search_path = :schema;
SET synchronous_commit = off;
CREATE SEQUENCE bench_ids;
CREATE FUNCTION bench_id() RETURNS uuid LANGUAGE sql AS $$ SELECT ('01900000-0000-7000-8000-' || lpad(to_hex(nextval('bench_ids')),12,'0'))::uuid $$;
CREATE FUNCTION bench_batch(k int, rnd bigint, fn text DEFAULT 'caseflow_append_v2') RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE
 sids text[]; vers bigint[]; eids uuid[]; rec bigint[]; typs text[]; svs int[]; pls bytea[]; acts text[];
 cids uuid[]; hs bytea[]; phs bytea[]; rvers bigint[]; rhs bytea[]; nvers bigint[];
 offs bigint[]; res bigint;
BEGIN
 WITH s AS (SELECT w, format('bench-one-%s-%s', w, rnd % 8) sid, bench_id() c FROM generate_series(0,k-1) w),
 h AS (SELECT s.*, coalesce(st.version,0) v, coalesce(st.head_hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea) hh,
        sha256(c::text::bytea) nh
       FROM s LEFT JOIN streams st ON st.stream_id = s.sid)
 SELECT array_agg(sid ORDER BY w), array_agg(v+1 ORDER BY w), array_agg(bench_id() ORDER BY w),
        array_agg(1800000000000000000::bigint ORDER BY w), array_agg('CaseReported'::text ORDER BY w), array_agg(1 ORDER BY w),
        array_agg(convert_to(format('{"case_id":"0190a3b4-5c6d-7e8f-9a0b-%s","channel":"hotline","kind":"complaint","category":"land-use","locality":"loc-zhongshan","village":"vil-wenhuagong","due_at":"2026-03-01T09:00:00Z","n":%s}', lpad(to_hex(rnd),12,'0'), rnd),'UTF8') ORDER BY w),
        array_agg('room-1/clerk'::text ORDER BY w), array_agg(c ORDER BY w), array_agg(nh ORDER BY w), array_agg(hh ORDER BY w),
        array_agg(v ORDER BY w), array_agg(w::bigint+1 ORDER BY w)
   INTO sids, vers, eids, rec, typs, svs, pls, acts, cids, hs, phs, rvers, offs
   FROM h;
 EXECUTE format('SELECT %I($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,$21,$22,$23,$24,$25)', fn)
  INTO res USING sids, vers, eids, rec, typs, svs, pls, acts, cids, cids, NULL::uuid[] || array_fill(NULL::uuid, ARRAY[k]), phs, hs,
    sids, vers, hs, rvers, phs, cids, sids, vers, vers, offs, offs, 'caseflow_' || current_schema();
 RETURN res;
END $f$;

 CREATE OR REPLACE FUNCTION caseflow_noop(
    stream_ids text[], versions bigint[], event_ids uuid[], recorded_at_ns bigint[],
    event_types text[], schema_versions int[], payloads bytea[], actors text[],
    command_ids uuid[], correlation_ids uuid[], causation_ids uuid[], prev_hashes bytea[],
    hashes bytea[], head_ids text[], head_versions bigint[], head_hashes bytea[],
    read_versions bigint[], read_hashes bytea[], ledger_ids uuid[], ledger_streams text[],
    ledger_first_versions bigint[], ledger_last_versions bigint[],
    ledger_first_offsets bigint[], ledger_last_offsets bigint[], channel text
 ) RETURNS bigint LANGUAGE sql AS $$ SELECT 0::bigint $$;

CREATE FUNCTION pg_temp.backend_ticks() RETURNS bigint LANGUAGE sql AS $$
    SELECT (a[12])::bigint + (a[13])::bigint
    FROM (SELECT string_to_array(split_part(pg_read_file('/proc/' || pg_backend_pid() || '/stat'), ') ', 2), ' ') a) s
$$;

SELECT bench_batch(64, 0);
SELECT pg_temp.backend_ticks() AS before \gset
SELECT count(bench_batch(64, r % 8)) FROM generate_series(1, 200) r;
SELECT (pg_temp.backend_ticks() - :before) * 10000 / 200 AS caseflow_append_v2_us_per_call;
SELECT pg_temp.backend_ticks() AS before \gset
SELECT count(bench_batch(64, r % 8, 'caseflow_noop')) FROM generate_series(1, 200) r;
SELECT (pg_temp.backend_ticks() - :before) * 10000 / 200 AS noop_us_per_call;
