-- AlterTable
ALTER TABLE "Client" ADD COLUMN "credentialsChangedAt" DATETIME;


-- Bearer artifacts at rest: every OidcPayload but a Grant is keyed by the SHA-256
-- digest of its value (base64url, no padding), and its payload loses the value (jti).
-- gatehouse_sha256 is registered by Gatehouse's migration runner (storage/migrate.ts).
-- Short-lived rows whose payloads carry sealed references (interactions, device
-- codes, refresh-grace answers) cannot be converted in SQL: they are ended (a
-- sign-in or device flow in progress during the upgrade starts again).
DELETE FROM "OidcPayload" WHERE type IN ('Interaction', 'DeviceCode', 'RefreshGrace');
UPDATE "OidcPayload" SET payload = json_set(payload, '$.idPrefix', substr(id, 1, 8)) WHERE type = 'InitialAccessToken';
UPDATE "OidcPayload"
  SET id = gatehouse_sha256(id),
      payload = json_remove(payload, '$.jti')
  WHERE type <> 'Grant';
