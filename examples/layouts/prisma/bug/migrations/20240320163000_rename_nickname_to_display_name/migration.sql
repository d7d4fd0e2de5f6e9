/*
  Warnings:

  - You are about to drop the column `nickname` on the `customers` table. All the data in the column will be lost.

*/
-- BUG: applied as `prisma migrate dev` generated it for the renamed field: every nickname
-- is dropped and display_name starts empty.
-- AlterTable
ALTER TABLE "customers" DROP COLUMN "nickname",
ADD COLUMN     "display_name" VARCHAR(100);
