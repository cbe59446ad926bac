-- AlterTable
ALTER TABLE "SigningKey" ADD COLUMN "activatesAt" DATETIME;
ALTER TABLE "SigningKey" ADD COLUMN "retiredAt" DATETIME;


-- Keys from before stages: a current key signs since it was made; a previous one retired when it last changed.
UPDATE "SigningKey" SET "activatesAt" = "createdAt" WHERE "state" = 'current';
UPDATE "SigningKey" SET "retiredAt" = "updatedAt" WHERE "state" = 'previous';
