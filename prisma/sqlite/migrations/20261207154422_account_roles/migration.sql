-- AlterTable
ALTER TABLE "Account" ADD COLUMN "role" TEXT;

