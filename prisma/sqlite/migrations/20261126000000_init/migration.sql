-- CreateTable
CREATE TABLE "OidcPayload" (
    "id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "grantId" TEXT,
    "userCode" TEXT,
    "uid" TEXT,
    "expiresAt" DATETIME,
    "consumedAt" DATETIME,

    PRIMARY KEY ("type", "id")
);

-- CreateTable
CREATE TABLE "Client" (
    "clientId" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "secretHash" TEXT,
    "tokenEndpointAuthMethod" TEXT NOT NULL DEFAULT 'client_secret_basic',
    "grantTypes" JSONB NOT NULL,
    "redirectUris" JSONB NOT NULL,
    "scopes" JSONB NOT NULL,
    "resources" JSONB NOT NULL,
    "firstParty" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "ResourceServer" (
    "identifier" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "scopes" JSONB NOT NULL,
    "accessTokenTtl" INTEGER NOT NULL DEFAULT 600,
    "tokenFormat" TEXT NOT NULL DEFAULT 'jwt',
    "signingAlg" TEXT NOT NULL DEFAULT 'ES256',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "SigningKey" (
    "kid" TEXT NOT NULL PRIMARY KEY,
    "alg" TEXT NOT NULL,
    "state" TEXT NOT NULL DEFAULT 'current',
    "privateJwk" TEXT NOT NULL,
    "encrypted" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "ChangeStamp" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "version" INTEGER NOT NULL DEFAULT 0,
    "updatedAt" DATETIME NOT NULL
);

-- CreateIndex
CREATE INDEX "OidcPayload_type_grantId_idx" ON "OidcPayload"("type", "grantId");

-- CreateIndex
CREATE INDEX "OidcPayload_type_userCode_idx" ON "OidcPayload"("type", "userCode");

-- CreateIndex
CREATE INDEX "OidcPayload_type_uid_idx" ON "OidcPayload"("type", "uid");

-- CreateIndex
CREATE INDEX "OidcPayload_expiresAt_idx" ON "OidcPayload"("expiresAt");

-- CreateIndex
CREATE INDEX "SigningKey_state_idx" ON "SigningKey"("state");

