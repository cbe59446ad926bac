import type { ConsoleArea } from './context.js';

/** The console's accounts area (to be written). */
export const accountsArea: ConsoleArea = () => {};
