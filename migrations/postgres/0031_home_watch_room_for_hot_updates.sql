-- home_watch is written once per home per batch. Its deadline (the indexed
-- next_due_at) now moves later only once it has passed (the store's
-- write_home_states), so most of those updates change no indexed column:
-- with room on the page they are HOT, no index entry written. Only pages
-- written from now on leave the room; nothing is rewritten.
ALTER TABLE home_watch SET (fillfactor = 70);
