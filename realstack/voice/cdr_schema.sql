-- The `cdrs` view: one row per call from Kamailio's accounting rows, with the columns and types the lab proxy
-- writes (lab/sip/cdr.py): times naive UTC, duration_s answer to end in seconds (3 decimals, 0 unanswered).
-- realstack/voice/database.py runs this (as the admin user) after Kamailio's own acc tables exist in the
-- schema {schema}; {schema} and {view} are filled in there. Safe to run again (one transaction).
--
-- Kamailio (acc + db_postgres, see kamailio.cfg.template) writes one `acc` row when an initial INVITE gets
-- its final answer (2xx, or >= 300 through failed_transaction_flag) and one when a BYE is answered.
-- Extra columns: start_ts (the request's arrival, epoch s), event_ts (its final answer, epoch s with ms),
-- from_uri, to_uri, caller, callee (the number dialled) and proxy (kamailio-a, kamailio-b).
-- An answered call appears once its BYE is answered (or times out) and ends when the BYE arrived; a failed
-- call appears at once and ends with its final answer.

ALTER TABLE {schema}.acc
    ADD COLUMN IF NOT EXISTS from_uri VARCHAR(255),
    ADD COLUMN IF NOT EXISTS to_uri VARCHAR(255),
    ADD COLUMN IF NOT EXISTS caller VARCHAR(64),
    ADD COLUMN IF NOT EXISTS callee VARCHAR(64),
    ADD COLUMN IF NOT EXISTS start_ts DOUBLE PRECISION,
    ADD COLUMN IF NOT EXISTS event_ts DOUBLE PRECISION,
    ADD COLUMN IF NOT EXISTS proxy VARCHAR(64);

CREATE INDEX IF NOT EXISTS acc_method_callid_idx ON {schema}.acc (method, callid);

DROP VIEW IF EXISTS public.{view};
CREATE VIEW public.{view} AS
WITH invites AS (
    SELECT DISTINCT ON (callid) *
    FROM {schema}.acc
    WHERE method = 'INVITE'
    ORDER BY callid, id
), byes AS (
    SELECT callid, min(coalesce(start_ts, event_ts)) AS bye_ts, min(id) AS bye_id
    FROM {schema}.acc
    WHERE method = 'BYE'
    GROUP BY callid
)
SELECT
    -- the row that completed the record: a CDR's id grows in the order CDRs appear, as the lab's do, so a
    -- reader that remembers the last id it saw (the platform's webhook poller) never skips a long call
    CASE WHEN i.sip_code LIKE '2%' THEN b.bye_id ELSE i.id END AS id,
    i.callid AS call_id,
    i.from_uri,
    i.to_uri,
    i.caller,
    i.callee,
    to_timestamp(i.start_ts) AT TIME ZONE 'UTC' AS start_time,
    CASE WHEN i.sip_code LIKE '2%' THEN to_timestamp(i.event_ts) AT TIME ZONE 'UTC' END AS answer_time,
    to_timestamp(CASE WHEN i.sip_code LIKE '2%' THEN b.bye_ts ELSE i.event_ts END) AT TIME ZONE 'UTC' AS end_time,
    CASE
        WHEN i.sip_code LIKE '2%' THEN round(greatest(b.bye_ts - i.event_ts, 0)::numeric, 3)::double precision
        ELSE 0::double precision
    END AS duration_s,
    CASE
        WHEN i.sip_code LIKE '2%' THEN 'ANSWERED'
        WHEN i.sip_code = '487' THEN 'CANCELLED'
        WHEN i.sip_code IN ('486', '600') THEN 'BUSY'
        WHEN i.sip_code IN ('408', '480') THEN 'NO ANSWER'
        ELSE 'FAILED'
    END AS disposition,
    i.sip_code::integer AS sip_code,
    i.proxy
FROM invites i
LEFT JOIN byes b ON b.callid = i.callid
WHERE i.sip_code NOT LIKE '2%' OR b.bye_ts IS NOT NULL;
