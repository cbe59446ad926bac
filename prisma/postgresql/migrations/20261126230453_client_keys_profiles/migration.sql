-- AlterTable
ALTER TABLE "Client" ADD COLUMN     "jwks" JSONB,
ADD COLUMN     "jwksUri" TEXT,
ADD COLUMN     "profile" TEXT NOT NULL DEFAULT 'default';

-- AlterTable
ALTER TABLE "ResourceServer" ADD COLUMN     "allowRegisteredClients" BOOLEAN NOT NULL DEFAULT false;

-- CreateIndex
CREATE INDEX "Client_jwksUri_idx" ON "Client"("jwksUri");

