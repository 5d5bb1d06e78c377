-- Scans the table under SHARE UPDATE EXCLUSIVE: writers go on meanwhile.
ALTER TABLE messages VALIDATE CONSTRAINT messages_before_partitioning_at;
