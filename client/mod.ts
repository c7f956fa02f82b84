// The client library's public surface: `import { DfsClient } from "dfs"`.
export { DfsClient, DEFAULT_PIECE_SIZE, DEFAULT_REPLICAS, pieceSizeFor } from "./client.js";
export type { ConnectOptions, MasterState, PutOptions, PutResult, WorkerReport } from "./client.js";
export type { GetOptions, GetResult } from "./get.js";
export type { GetOutcome, GetTreeOptions, GetTreeResult } from "./get-many.js";
export { DEFAULT_PARALLEL_FILES, planPut } from "./put-many.js";
export type { PutEntry, PutManyOptions, PutManyResult, PutOutcome, PutPlan, SkippedEntry } from "./put-many.js";
export type { Progress } from "./progress.js";
export { LocalCluster } from "./local-cluster.js";
export type { LocalClusterOptions } from "./local-cluster.js";
export { findNatsServer, startNatsServer } from "./nats-server.js";
export type { NatsServerOptions, RunningNatsServer } from "./nats-server.js";
export { DfsError, ErrorCodes } from "../src/errors.js";
export type { ErrorCode } from "../src/errors.js";
export type { DfsEvent, EventType } from "../src/events.js";
export { parseLogPoint } from "../src/log-point.js";
export type { LogPoint } from "../src/log-point.js";
export type { AuditOptions } from "../src/replay.js";
export type { FileInfo, ListEntry, Location, VersionInfo } from "../src/queries.js";
