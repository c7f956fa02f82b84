export { catalogue, isSubjectToken, DEFAULT_PREFIX, DEFAULT_NATS_URL, MASTER_OPS, WORKER_OPS } from "./catalogue.js";
export type { Catalogue, MasterOp, WorkerOp } from "./catalogue.js";
export { consumerExists, provisionMaster, provisionStreams, provisionWorkers, streamExists } from "./provision.js";
export { usersOf, streamsUser, userName, ROLES } from "./permissions.js";
export type { Permissions, RoleName } from "./permissions.js";
export type { ProvisionOptions } from "./provision.js";
