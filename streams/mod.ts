export { catalogue, isSubjectToken, DEFAULT_PREFIX, DEFAULT_NATS_URL, MASTER_OPS, WORKER_OPS } from "./catalogue.js";
export type { Catalogue, MasterOp, WorkerOp } from "./catalogue.js";
export { provisionEvents, provisionMaster, provisionWorker } from "./provision.js";
export type { ProvisionOptions } from "./provision.js";
