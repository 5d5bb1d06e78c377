-- PostgreSQL only (room on home_watch's pages for HOT updates); kept so both folders share their numbers.
SELECT 1;
