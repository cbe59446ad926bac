-- AlterTable
ALTER TABLE "Client" ADD COLUMN     "credentialsChangedAt" TIMESTAMP(3);


-- Bearer artifacts at rest: every OidcPayload but a Grant is keyed by the SHA-256
-- digest of its value (base64url, no padding), and its payload loses the value (jti).
-- Short-lived rows whose payloads carry sealed references (interactions, device
-- codes, refresh-grace answers) cannot be converted in SQL: they are ended (a
-- sign-in or device flow in progress during the upgrade starts again).
DELETE FROM "OidcPayload" WHERE type IN ('Interaction', 'DeviceCode', 'RefreshGrace');
UPDATE "OidcPayload" SET payload = jsonb_set(payload, '{idPrefix}', to_jsonb(left(id, 8))) WHERE type = 'InitialAccessToken';
UPDATE "OidcPayload"
  SET id = rtrim(translate(encode(sha256(convert_to(id, 'UTF8')), 'base64'), '+/', '-_'), '='),
      payload = payload - 'jti'
  WHERE type <> 'Grant';
