import type { ConsoleArea } from './context.js';

/** The console's registration-tokens area (to be written). */
export const registrationTokensArea: ConsoleArea = () => {};
