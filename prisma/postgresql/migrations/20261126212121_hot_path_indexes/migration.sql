-- DropIndex
DROP INDEX "OidcPayload_type_grantId_idx";

-- CreateIndex
CREATE INDEX "OidcPayload_grantId_type_idx" ON "OidcPayload"("grantId", "type");

-- CreateIndex
CREATE INDEX "Client_backchannelLogoutUri_idx" ON "Client"("backchannelLogoutUri");

-- CreateIndex
CREATE INDEX "FederatedIdentity_email_idx" ON "FederatedIdentity"("email");

