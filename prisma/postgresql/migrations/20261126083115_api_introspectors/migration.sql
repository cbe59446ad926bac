-- AlterTable
ALTER TABLE "ResourceServer" ADD COLUMN     "introspectors" JSONB NOT NULL DEFAULT '[]';

