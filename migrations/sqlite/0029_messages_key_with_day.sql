-- PostgreSQL only (messages partitioned by day); kept so both folders share their numbers.
SELECT 1;
