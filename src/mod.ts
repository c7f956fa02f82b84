// The domain: events, the pure decider and projection, and the master shell around them.
export { decide, MAX_PIECES, MAX_PIECE_SIZE, MAX_REPLICAS, MIN_PIECE_SIZE } from "./decide.js";
export type { Command } from "./decide.js";
export { EVENT_TYPES, PIECES_PER_EVENT } from "./events.js";
export type { DfsEvent, EventType } from "./events.js";
export { evolve, foldEvents, initialState, projection, stateDigest } from "./state.js";
export type { State } from "./state.js";
export { list, listPage, locate, locatePage, stat, uploadPlan } from "./queries.js";
export { MAX_PATH_BYTES, MAX_SEGMENT_BYTES, normalisePath, normalisePrefix } from "./paths.js";
export { DfsError, ErrorCodes } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export { decode, decodeEvent, encode } from "./codec.js";
export { readLog, appendEvent, AppendConflict } from "./log.js";
export { replayLog } from "./replay.js";
export { Master } from "./master.js";
export type { MasterOptions } from "./master.js";
