import type { ConsoleArea } from './context.js';

/** The console's keys area (to be written). */
export const keysArea: ConsoleArea = () => {};
