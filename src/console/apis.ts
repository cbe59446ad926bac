import type { ConsoleArea } from './context.js';

/** The console's apis area (to be written). */
export const apisArea: ConsoleArea = () => {};
