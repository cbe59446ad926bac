import type { ConsoleArea } from './context.js';

/** The console's clients area (to be written). */
export const clientsArea: ConsoleArea = () => {};
