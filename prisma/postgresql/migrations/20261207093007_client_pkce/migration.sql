-- AlterTable
ALTER TABLE "Client" ADD COLUMN     "pkce" TEXT NOT NULL DEFAULT 'required';

