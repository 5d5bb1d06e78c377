-- messages_device_received served no query on SQLite: its planner reads one
-- device's messages through messages_received (the queries filter with
-- "$N IS NULL OR device_id = $N", planned once for every binding), as
-- EXPLAIN QUERY PLAN shows. Yet every insert paid for it, in the worst way:
-- keyed by device, a batch's rows land on as many index pages as it has
-- devices, each page written whole to the WAL at commit. Dropping it made
-- durable ingest 30 % faster with 1 and with 8 connections (ARCHITECTURE.md).
DROP INDEX IF EXISTS messages_device_received;
