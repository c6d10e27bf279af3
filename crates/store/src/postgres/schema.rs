//! The store's tables and their versioned migrations.
//!
//! The schema's version lives in `caseflow_schema` (one row: format name and version).
//! Opening a schema with a newer version is [`StoreError::NewerFormat`]; a schema that holds
//! tables but no `caseflow_schema` row of the store format is
//! [`StoreError::NotACaseflowStore`]. Migrations run inside one transaction under an
//! advisory lock, so several processes opening a fresh database at once migrate it once.

use crate::error::StoreError;

use super::error_map::map_err;

/// The format name in `caseflow_schema`.
pub const FORMAT_NAME: &str = "caseflow-store";

/// Migrations by version: `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the log, stream heads, the command ledger, the Merkle tree's perfect nodes and the
    // single-row log head (position and tree frontier) whose row lock serialises position
    // allocation (see the module documentation of `postgres`).
    "CREATE TABLE caseflow_schema (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        format text NOT NULL,
        version integer NOT NULL
     );
     INSERT INTO caseflow_schema (format, version) VALUES ('caseflow-store', 0);
     CREATE TABLE log_head (
        id boolean PRIMARY KEY DEFAULT true CHECK (id),
        position bigint NOT NULL CHECK (position >= 0),
        frontier bytea NOT NULL
     );
     INSERT INTO log_head (position, frontier) VALUES (0, ''::bytea);
     CREATE TABLE tree_nodes (
        level integer NOT NULL CHECK (level >= 0 AND level < 64),
        idx bigint NOT NULL CHECK (idx >= 0),
        hash bytea NOT NULL,
        PRIMARY KEY (level, idx)
     );
     CREATE TABLE streams (
        stream_id text PRIMARY KEY,
        version bigint NOT NULL CHECK (version >= 0),
        head_hash bytea NOT NULL
     );
     CREATE TABLE events (
        position bigint PRIMARY KEY CHECK (position > 0),
        stream_id text NOT NULL,
        version bigint NOT NULL CHECK (version > 0),
        event_id uuid NOT NULL,
        recorded_at_ns bigint NOT NULL,
        event_type text NOT NULL,
        schema_version integer NOT NULL,
        payload bytea NOT NULL,
        actor text NOT NULL,
        command_id uuid,
        correlation_id uuid,
        causation_id uuid,
        prev_hash bytea NOT NULL,
        hash bytea NOT NULL,
        CONSTRAINT events_stream_version UNIQUE (stream_id, version),
        CONSTRAINT events_event_id UNIQUE (event_id)
     );
     CREATE TABLE commands (
        command_id uuid PRIMARY KEY,
        stream_id text NOT NULL,
        first_version bigint NOT NULL,
        last_version bigint NOT NULL,
        first_position bigint NOT NULL,
        last_position bigint NOT NULL
     );",
    // 2: the write half of an append batch as one server-side function, so the log-head row
    // lock is taken and held only inside the server (from this function to COMMIT), never
    // across a round trip to the client. Under that lock (which every append takes) it
    // checks that the streams the batch writes are still at the heads the client read
    // without locking (else SQLSTATE CF001: the client reads again and retries), allocates
    // the batch's positions, extends the Merkle tree from the stored frontier (the same leaf
    // and node hashes as `crate::tree`), and writes records, tree nodes, stream heads and
    // ledger rows; it returns the position before the batch. Ledger positions arrive as
    // offsets within the batch (1-based); a stream read as absent has version 0.
    "CREATE FUNCTION caseflow_append_v1(
        stream_ids text[], versions bigint[], event_ids uuid[], recorded_at_ns bigint[],
        event_types text[], schema_versions int[], payloads bytea[], actors text[],
        command_ids uuid[], correlation_ids uuid[], causation_ids uuid[], prev_hashes bytea[],
        hashes bytea[], head_ids text[], head_versions bigint[], head_hashes bytea[],
        ledger_ids uuid[], ledger_streams text[], ledger_first_versions bigint[],
        ledger_last_versions bigint[], ledger_first_offsets bigint[],
        ledger_last_offsets bigint[], read_ids text[], read_versions bigint[],
        read_hashes bytea[], channel text
     ) RETURNS bigint LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
     DECLARE
        n bigint := cardinality(hashes);
        base bigint;
        roots bytea;
        node bytea;
        leaf_index bigint;
        level int;
        node_levels int[] := '{}';
        node_indexes bigint[] := '{}';
        node_hashes bytea[] := '{}';
     BEGIN
        UPDATE log_head SET position = position + n
            RETURNING position - n, frontier INTO base, roots;
        IF EXISTS (SELECT 1 FROM unnest(read_ids, read_versions, read_hashes) AS r(sid, ver, hs)
                   LEFT JOIN streams s ON s.stream_id = r.sid
                   WHERE coalesce(s.version, 0) <> r.ver
                      OR (s.version > 0 AND s.head_hash <> r.hs)) THEN
            RAISE EXCEPTION 'a stream moved since the batch read it' USING ERRCODE = 'CF001';
        END IF;
        FOR i IN 1..n LOOP
            leaf_index := base + i - 1;
            node := sha256('\\x00'::bytea || convert_to('caseflow-leaf-v1', 'UTF8')
                           || int8send(base + i) || hashes[i]);
            node_levels := node_levels || 0;
            node_indexes := node_indexes || leaf_index;
            node_hashes := node_hashes || node;
            level := 0;
            WHILE (leaf_index >> level) & 1 = 1 LOOP
                node := sha256('\\x01'::bytea || substr(roots, length(roots) - 31, 32) || node);
                roots := substr(roots, 1, length(roots) - 32);
                level := level + 1;
                node_levels := node_levels || level;
                node_indexes := node_indexes || (leaf_index >> level);
                node_hashes := node_hashes || node;
            END LOOP;
            roots := roots || node;
        END LOOP;
        UPDATE log_head SET frontier = roots;
        INSERT INTO events (position, stream_id, version, event_id, recorded_at_ns, event_type,
                            schema_version, payload, actor, command_id, correlation_id,
                            causation_id, prev_hash, hash)
        SELECT base + u.o, u.s, u.v, u.e, u.r, u.t, u.sv, u.p, u.a, u.c, u.co, u.ca, u.ph, u.h
        FROM unnest(stream_ids, versions, event_ids, recorded_at_ns, event_types,
                    schema_versions, payloads, actors, command_ids, correlation_ids,
                    causation_ids, prev_hashes, hashes)
             WITH ORDINALITY AS u(s, v, e, r, t, sv, p, a, c, co, ca, ph, h, o);
        INSERT INTO tree_nodes (level, idx, hash)
        SELECT * FROM unnest(node_levels, node_indexes, node_hashes);
        INSERT INTO streams (stream_id, version, head_hash)
        SELECT * FROM unnest(head_ids, head_versions, head_hashes)
        ON CONFLICT (stream_id) DO UPDATE
            SET version = excluded.version, head_hash = excluded.head_hash;
        INSERT INTO commands (command_id, stream_id, first_version, last_version,
                              first_position, last_position)
        SELECT u.c, u.s, u.fv, u.lv, base + u.fo, base + u.lo
        FROM unnest(ledger_ids, ledger_streams, ledger_first_versions, ledger_last_versions,
                    ledger_first_offsets, ledger_last_offsets) AS u(c, s, fv, lv, fo, lo);
        PERFORM pg_notify(channel, (base + n)::text);
        RETURN base;
     END
     $fn$;",
    // 3: fewer rows per event. The Merkle nodes a batch completes go into `tree_runs`, one
    // row per run of at most 64 consecutive leaves (the nodes each leaf completes, level 0
    // up, 32 bytes each, in leaf order) instead of one `tree_nodes` row per node (about two
    // rows and two index entries per event); nodes written before this migration stay in
    // `tree_nodes` and are read from there. `caseflow_append_v2` checks the stream heads the
    // client read and moves them in one statement (an UPDATE that matches only a head still
    // as read, plus an INSERT of streams read as absent: fewer rows than streams means one
    // moved, SQLSTATE CF001), and writes records, tree runs and ledger rows in one statement.
    // The function of migration 2 is dropped, so a process of an older build fails loudly
    // instead of writing nodes where this version does not read them first.
    "CREATE TABLE tree_runs (
    first_leaf bigint PRIMARY KEY CHECK (first_leaf >= 0),
    leaves integer NOT NULL CHECK (leaves > 0 AND leaves <= 64),
    nodes bytea NOT NULL
 );
 ALTER TABLE tree_runs ALTER COLUMN nodes SET STORAGE PLAIN;
 DROP FUNCTION caseflow_append_v1;
 CREATE FUNCTION caseflow_append_v2(
    stream_ids text[], versions bigint[], event_ids uuid[], recorded_at_ns bigint[],
    event_types text[], schema_versions int[], payloads bytea[], actors text[],
    command_ids uuid[], correlation_ids uuid[], causation_ids uuid[], prev_hashes bytea[],
    hashes bytea[], head_ids text[], head_versions bigint[], head_hashes bytea[],
    read_versions bigint[], read_hashes bytea[], ledger_ids uuid[], ledger_streams text[],
    ledger_first_versions bigint[], ledger_last_versions bigint[],
    ledger_first_offsets bigint[], ledger_last_offsets bigint[], channel text
 ) RETURNS bigint LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
 DECLARE
    n int := cardinality(hashes);
    leaf_tag constant bytea := '\\x00'::bytea || convert_to('caseflow-leaf-v1', 'UTF8');
    base bigint;
    roots bytea;
    node bytea;
    leaf bigint;
    bits bigint;
    moved bigint;
    run_first bigint;
    run_nodes bytea := ''::bytea;
    run_firsts bigint[] := '{}';
    run_sizes int[] := '{}';
    run_bodies bytea[] := '{}';
 BEGIN
    UPDATE log_head SET position = position + n
        RETURNING position - n, frontier INTO base, roots;
    WITH heads AS (
        SELECT * FROM unnest(head_ids, head_versions, head_hashes, read_versions, read_hashes)
            AS h(sid, ver, hs, rver, rhs)
    ), advanced AS (
        UPDATE streams s SET version = h.ver, head_hash = h.hs FROM heads h
        WHERE s.stream_id = h.sid AND s.version = h.rver AND (h.rver = 0 OR s.head_hash = h.rhs)
        RETURNING 1
    ), created AS (
        INSERT INTO streams (stream_id, version, head_hash)
        SELECT sid, ver, hs FROM heads WHERE rver = 0
        ON CONFLICT (stream_id) DO NOTHING RETURNING 1
    )
    SELECT (SELECT count(*) FROM advanced) + (SELECT count(*) FROM created) INTO moved;
    IF moved <> cardinality(head_ids) THEN
        RAISE EXCEPTION 'a stream moved since the batch read it' USING ERRCODE = 'CF001';
    END IF;
    FOR i IN 1..n LOOP
        leaf := base + i - 1;
        IF run_nodes = ''::bytea THEN
            run_first := leaf;
        END IF;
        node := sha256(leaf_tag || int8send(leaf + 1) || hashes[i]);
        run_nodes := run_nodes || node;
        bits := leaf;
        WHILE bits & 1 = 1 LOOP
            node := sha256('\\x01'::bytea || substr(roots, length(roots) - 31, 32) || node);
            roots := substr(roots, 1, length(roots) - 32);
            run_nodes := run_nodes || node;
            bits := bits >> 1;
        END LOOP;
        roots := roots || node;
        IF leaf - run_first = 63 OR i = n THEN
            run_firsts := run_firsts || run_first;
            run_sizes := run_sizes || (leaf - run_first + 1)::int;
            run_bodies := run_bodies || run_nodes;
            run_nodes := ''::bytea;
        END IF;
    END LOOP;
    WITH frontier AS (
        UPDATE log_head SET frontier = roots
    ), records AS (
        INSERT INTO events (position, stream_id, version, event_id, recorded_at_ns, event_type,
                            schema_version, payload, actor, command_id, correlation_id,
                            causation_id, prev_hash, hash)
        SELECT base + u.o, u.s, u.v, u.e, u.r, u.t, u.sv, u.p, u.a, u.c, u.co, u.ca, u.ph, u.h
        FROM unnest(stream_ids, versions, event_ids, recorded_at_ns, event_types,
                    schema_versions, payloads, actors, command_ids, correlation_ids,
                    causation_ids, prev_hashes, hashes)
             WITH ORDINALITY AS u(s, v, e, r, t, sv, p, a, c, co, ca, ph, h, o)
    ), tree AS (
        INSERT INTO tree_runs (first_leaf, leaves, nodes)
        SELECT * FROM unnest(run_firsts, run_sizes, run_bodies)
    )
    INSERT INTO commands (command_id, stream_id, first_version, last_version,
                          first_position, last_position)
    SELECT u.c, u.s, u.fv, u.lv, base + u.fo, base + u.lo
    FROM unnest(ledger_ids, ledger_streams, ledger_first_versions, ledger_last_versions,
                ledger_first_offsets, ledger_last_offsets) AS u(c, s, fv, lv, fo, lo);
    PERFORM pg_notify(channel, (base + n)::text);
    RETURN base;
 END
 $fn$;",
];

/// The newest schema version this build reads and writes.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The SQL of migration `version` (1-based), for tests that build an older schema.
pub(crate) fn migration(version: usize) -> Option<&'static str> {
    MIGRATIONS.get(version.checked_sub(1)?).copied()
}

/// A stable advisory-lock key for a purpose and a schema (FNV-1a, so every build and
/// process computes the same key).
pub(crate) fn lock_key(purpose: &str, schema: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in purpose.bytes().chain([0]).chain(schema.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash as i64
}

/// Creates or migrates the schema, or refuses it. `place` names it in messages.
pub(crate) async fn prepare(
    client: &mut tokio_postgres::Client,
    schema: &str,
    create: bool,
    place: &str,
) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(map_err)?;
    match migrate(&tx, schema, create, place).await {
        Ok(()) => tx.commit().await.map_err(map_err),
        Err(err) => {
            // Roll back now rather than on drop, so the connection is clean at once.
            let _ = tx.rollback().await;
            Err(err)
        }
    }
}

async fn migrate(
    tx: &tokio_postgres::Transaction<'_>,
    schema: &str,
    create: bool,
    place: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&lock_key("migrate", schema)],
    )
    .await
    .map_err(map_err)?;
    let exists = tx
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await
        .map_err(map_err)?
        .is_some();
    if !exists {
        if !create {
            return Err(StoreError::Misconfigured {
                reason: format!("{place}: schema {schema} does not exist"),
            });
        }
        tx.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .map_err(map_err)?;
    }
    let tables: Vec<String> = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .map_err(map_err)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let found = if tables.iter().any(|t| t == "caseflow_schema") {
        let row = tx
            .query_opt(
                &format!("SELECT format, version FROM {schema}.caseflow_schema"),
                &[],
            )
            .await
            .map_err(map_err)?;
        let Some(row) = row else {
            return Err(not_caseflow(place, "caseflow_schema has no row"));
        };
        let format: String = row.get(0);
        if format != FORMAT_NAME {
            return Err(not_caseflow(place, format!("it holds format {format:?}")));
        }
        row.get::<_, i32>(1)
    } else if !tables.is_empty() {
        return Err(not_caseflow(
            place,
            format!("schema {schema} holds {} other tables", tables.len()),
        ));
    } else {
        0
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerFormat {
            found: i64::from(found),
            supported: i64::from(SCHEMA_VERSION),
        });
    }
    if found < 0 {
        return Err(StoreError::corrupt(format!(
            "{place}: impossible schema version {found}"
        )));
    }
    tx.batch_execute(&format!("SET LOCAL search_path = {schema}"))
        .await
        .map_err(map_err)?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(migration).await.map_err(map_err)?;
        tx.execute(
            "UPDATE caseflow_schema SET version = $1",
            &[&(index as i32 + 1)],
        )
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

fn not_caseflow(place: &str, reason: impl Into<String>) -> StoreError {
    StoreError::NotACaseflowStore {
        path: place.to_owned(),
        reason: reason.into(),
    }
}
