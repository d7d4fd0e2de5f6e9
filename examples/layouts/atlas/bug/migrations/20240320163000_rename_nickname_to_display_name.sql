-- BUG: `atlas migrate diff` saw a column go and another come, not a rename, and this file
-- was committed as generated: every nickname is dropped and display_name starts empty.
-- Modify "customers" table
ALTER TABLE "customers" DROP COLUMN "nickname", ADD COLUMN "display_name" character varying(100) NULL;
