// The worker role: the process shell and its LevelDB piece store.
export { Worker } from "./worker.js";
export type { WorkerOptions } from "./worker.js";
export { PieceStore } from "./store.js";
