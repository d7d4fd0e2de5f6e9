-- Rename a column from "nickname" to "display_name"
ALTER TABLE "customers" RENAME COLUMN "nickname" TO "display_name";
