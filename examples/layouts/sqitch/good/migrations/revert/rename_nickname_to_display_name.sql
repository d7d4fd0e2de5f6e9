-- Revert shop:rename_nickname_to_display_name from pg

BEGIN;

ALTER TABLE customers RENAME COLUMN display_name TO nickname;

COMMIT;
