-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_Client" (
    "clientId" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "secretHash" TEXT,
    "tokenEndpointAuthMethod" TEXT NOT NULL DEFAULT 'client_secret_basic',
    "jwks" JSONB,
    "jwksUri" TEXT,
    "profile" TEXT NOT NULL DEFAULT 'default',
    "grantTypes" JSONB NOT NULL,
    "redirectUris" JSONB NOT NULL,
    "scopes" JSONB NOT NULL,
    "resources" JSONB NOT NULL,
    "firstParty" BOOLEAN NOT NULL DEFAULT false,
    "postLogoutRedirectUris" JSONB NOT NULL DEFAULT '[]',
    "backchannelLogoutUri" TEXT,
    "requirePar" BOOLEAN NOT NULL DEFAULT false,
    "pkce" TEXT NOT NULL DEFAULT 'required',
    "dynamic" BOOLEAN NOT NULL DEFAULT false,
    "metadata" JSONB NOT NULL DEFAULT '{}',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL,
    "credentialsChangedAt" DATETIME
);
INSERT INTO "new_Client" ("backchannelLogoutUri", "clientId", "createdAt", "credentialsChangedAt", "dynamic", "firstParty", "grantTypes", "jwks", "jwksUri", "metadata", "name", "postLogoutRedirectUris", "profile", "redirectUris", "requirePar", "resources", "scopes", "secretHash", "tokenEndpointAuthMethod", "updatedAt") SELECT "backchannelLogoutUri", "clientId", "createdAt", "credentialsChangedAt", "dynamic", "firstParty", "grantTypes", "jwks", "jwksUri", "metadata", "name", "postLogoutRedirectUris", "profile", "redirectUris", "requirePar", "resources", "scopes", "secretHash", "tokenEndpointAuthMethod", "updatedAt" FROM "Client";
DROP TABLE "Client";
ALTER TABLE "new_Client" RENAME TO "Client";
CREATE INDEX "Client_backchannelLogoutUri_idx" ON "Client"("backchannelLogoutUri");
CREATE INDEX "Client_jwksUri_idx" ON "Client"("jwksUri");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

