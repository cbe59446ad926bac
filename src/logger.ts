import { pino, type Logger, type DestinationStream } from 'pino';
import type { Config } from './config.js';

/**
 * JSON logs. Request logs carry method, path (never the query string), status
 * and duration; the redaction list is a second line of defence for secrets.
 */
export function createLogger(level: Config['logLevel'], destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      // pid: several worker processes write to one stream
      base: { service: 'gatehouse', pid: process.pid },
      redact: {
        paths: [
          'authorization',
          '*.authorization',
          'headers.authorization',
          'headers.cookie',
          'client_secret',
          '*.client_secret',
          'secret',
          '*.secret',
          'password',
          '*.password',
          'token',
          '*.token',
        ],
        censor: '[redacted]',
      },
      serializers: {
        // Error name and message only: no stack traces in logs.
        err: (err: Error) => ({ type: err.name, message: err.message }),
      },
    },
    destination,
  );
}
