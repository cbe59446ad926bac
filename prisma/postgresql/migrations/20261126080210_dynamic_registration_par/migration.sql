-- AlterTable
ALTER TABLE "Client" ADD COLUMN     "dynamic" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "metadata" JSONB NOT NULL DEFAULT '{}',
ADD COLUMN     "requirePar" BOOLEAN NOT NULL DEFAULT false;

