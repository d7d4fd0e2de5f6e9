-- Created with `prisma migrate dev --create-only` and edited: Prisma generates a drop and
-- an add for a renamed field.
-- AlterTable
ALTER TABLE "customers" RENAME COLUMN "nickname" TO "display_name";
