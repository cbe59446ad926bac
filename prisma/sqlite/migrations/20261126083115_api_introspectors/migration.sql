-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_ResourceServer" (
    "identifier" TEXT NOT NULL PRIMARY KEY,
    "name" TEXT NOT NULL,
    "scopes" JSONB NOT NULL,
    "accessTokenTtl" INTEGER NOT NULL DEFAULT 600,
    "tokenFormat" TEXT NOT NULL DEFAULT 'jwt',
    "signingAlg" TEXT NOT NULL DEFAULT 'ES256',
    "introspectors" JSONB NOT NULL DEFAULT '[]',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);
INSERT INTO "new_ResourceServer" ("accessTokenTtl", "createdAt", "identifier", "name", "scopes", "signingAlg", "tokenFormat", "updatedAt") SELECT "accessTokenTtl", "createdAt", "identifier", "name", "scopes", "signingAlg", "tokenFormat", "updatedAt" FROM "ResourceServer";
DROP TABLE "ResourceServer";
ALTER TABLE "new_ResourceServer" RENAME TO "ResourceServer";
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;

