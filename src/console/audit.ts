import type { ConsoleArea } from './context.js';

/** The console's audit area (to be written). */
export const auditArea: ConsoleArea = () => {};
