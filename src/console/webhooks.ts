import type { ConsoleArea } from './context.js';

/** The console's webhooks area (to be written). */
export const webhooksArea: ConsoleArea = () => {};
