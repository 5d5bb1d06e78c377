-- Rows the store writers update with every batch keep room on their page,
-- so an update that changes no indexed column is HOT: the new version goes
-- on the same page and no index entry is written (anxin bench cluster prints
-- the share). Devices are updated with every message (last seen, counts);
-- an hour's activity row with each summary in that hour, then never again,
-- so it needs less room. Only pages written from now on leave the room:
-- nothing is rewritten and no lock is held beyond the moment of the change.
-- home_watch is left as it is: its next deadline is indexed and moves with
-- nearly every update, so its updates cannot be HOT whatever the room.
ALTER TABLE devices SET (fillfactor = 70);
ALTER TABLE activity_hourly SET (fillfactor = 90);
