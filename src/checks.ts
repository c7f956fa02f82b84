// Whether an event may be folded: every field that names something must name what the log
// made of it. The decider never emits anything else, so an event that fails here is malformed
// or forged, and the fold counts it as rejected instead of applying it.
import { describePolicy, expiryRule } from "./retention.js";
import { isPlaced, liveHolders, wantedReplicas } from "./content.js";
import { MAX_PIECES, piecesOf, wholeSha256Of, type DfsEvent } from "./events.js";
import { isVersionComplete, latestCommitted, type State, type VersionState, type VersionStatus } from "./state.js";

function shortSha(sha256: string): string {
  return `${sha256.slice(0, 12)}…`;
}

/** The version, if it is in `status`; else why not. */
function versionIn(state: State, fileId: string, version: number, status: VersionStatus): VersionState | string {
  const file = state.files.get(fileId);
  if (!file) return `no file ${fileId}`;
  const v = file.versions.get(version);
  if (!v) return `file ${fileId} has no version ${version}`;
  return v.status === status ? v : `version ${version} of file ${fileId} is ${v.status}, not ${status}`;
}

function expectedPieceSize(v: { size: number; pieceSize: number }, index: number): number {
  const count = piecesOf(v.size, v.pieceSize);
  return index < count - 1 ? v.pieceSize : v.size - v.pieceSize * (count - 1);
}

/** Why the plan a FileCreated carries is not every piece of its version, in order, each of its size; or undefined. */
function createdPlanProblem(event: Extract<DfsEvent, { type: "FileCreated" }>): string | undefined {
  if (event.pieces === undefined) return undefined;
  const count = piecesOf(event.size, event.pieceSize);
  if (event.pieces.length !== count) return `it plans ${event.pieces.length} pieces of the ${count} of ${event.size} bytes in pieces of ${event.pieceSize}`;
  for (const [index, p] of event.pieces.entries()) {
    if (p.index !== index) return `piece ${p.index} is planned where piece ${index} must be`;
    const size = expectedPieceSize(event, index);
    if (p.size !== size) return `piece ${index} has ${size} bytes, not ${p.size}`;
  }
  return undefined;
}

function createdContradiction(state: State, event: Extract<DfsEvent, { type: "FileCreated" }>): string | undefined {
  if (state.uploads.has(event.uploadId)) return `upload id ${event.uploadId} is already used`;
  const planProblem = createdPlanProblem(event);
  if (planProblem !== undefined) return planProblem;
  const file = state.files.get(event.fileId);
  if (!file) {
    const owner = state.paths.get(event.path);
    if (owner !== undefined) return `path ${event.path} belongs to file ${owner}`;
    return event.version === 1 ? undefined : `the first version of file ${event.fileId} is 1, not ${event.version}`;
  }
  if (file.deleted) return `file ${event.fileId} is deleted`;
  if (file.path !== event.path) return `file ${event.fileId} is ${file.path}, not ${event.path}`;
  const next = file.lastVersion + 1;
  return event.version === next ? undefined : `the next version of file ${event.fileId} is ${next}, not ${event.version}`;
}

/**
 * Why a streamed version cannot take these pieces next, or undefined: they come in order, 1
 * byte to the piece size each, every one full but the last, at most MAX_PIECES, none after the
 * seal. The decider asks it of an `extend`'s new pieces, the fold of every PiecesPlanned.
 */
export function streamedPiecesProblem(v: VersionState, pieces: readonly { index: number; size: number }[]): string | undefined {
  if (pieces.length > 0 && v.stream === "sealed") return `version ${v.version} of file ${v.fileId} is sealed: no piece is planned after it`;
  let next = v.pieces.length;
  let previous = v.pieces[next - 1]?.size;
  for (const p of pieces) {
    if (p.index < next) return `piece ${p.index} is already planned`;
    if (p.index !== next) return `piece ${p.index} is out of order: the next piece of version ${v.version} of file ${v.fileId} is ${next}`;
    if (next >= MAX_PIECES) return `version ${v.version} of file ${v.fileId} would have more than ${MAX_PIECES} pieces: use a larger piece size`;
    if (previous !== undefined && previous !== v.pieceSize) return `piece ${p.index} follows a short piece (${previous} of ${v.pieceSize} bytes), which must be the last`;
    if (!Number.isSafeInteger(p.size) || p.size < 1 || p.size > v.pieceSize) return `piece ${p.index} has ${p.size} bytes, not 1 to ${v.pieceSize}`;
    previous = p.size;
    next += 1;
  }
  return undefined;
}

/**
 * Why an open stream cannot be sealed as `size` bytes with `sha256`, or undefined: its planned
 * pieces must hold exactly that size, be all its pieces, and, when their digests say the whole's
 * (none or one piece), hash to it (`checksum`). The decider asks it of a `seal`, the fold of FileSealed.
 */
export function sealProblem(v: VersionState, size: number, sha256: string): { reason: string; checksum?: true } | undefined {
  if (size !== v.size) return { reason: `the pieces of version ${v.version} of file ${v.fileId} hold ${v.size} bytes, not ${size}` };
  const count = piecesOf(size, v.pieceSize);
  if (v.pieces.length !== count) return { reason: `${size} bytes in pieces of ${v.pieceSize} are ${count} pieces; ${v.pieces.length} are planned` };
  const known = wholeSha256Of(v.pieces.map((p) => p.sha256));
  if (known !== undefined && sha256 !== known) {
    return { reason: `the ${count} planned piece${count === 1 ? "" : "s"} of version ${v.version} of file ${v.fileId} hash to ${shortSha(known)}, not ${shortSha(sha256)}`, checksum: true };
  }
  return undefined;
}

function plannedContradiction(state: State, event: Extract<DfsEvent, { type: "PiecesPlanned" }>): string | undefined {
  const v = versionIn(state, event.fileId, event.version, "pending");
  if (typeof v === "string") return v;
  if (v.stream !== undefined) return streamedPiecesProblem(v, event.pieces);
  const count = piecesOf(v.size, v.pieceSize);
  const seen = new Set<number>();
  for (const p of event.pieces) {
    if (p.index >= count) return `piece ${p.index} is out of range: version ${v.version} of file ${v.fileId} has ${count} pieces`;
    if (v.pieces[p.index] || seen.has(p.index)) return `piece ${p.index} is already planned`;
    const size = expectedPieceSize(v, p.index);
    if (p.size !== size) return `piece ${p.index} has ${size} bytes, not ${p.size}`;
    seen.add(p.index);
  }
  return undefined;
}

/** Each upload's share as its own PeersAssigned would be judged, each version at most once (so each is judged against the table it meets). */
function uploadsAssignedContradiction(state: State, event: Extract<DfsEvent, { type: "UploadsAssigned" }>): string | undefined {
  const seen = new Set<string>();
  for (const upload of event.uploads) {
    const key = `${upload.fileId}/${upload.version}`;
    if (seen.has(key)) return `version ${upload.version} of file ${upload.fileId} is assigned twice in one event`;
    seen.add(key);
    const problem = assignedContradiction(state, { type: "PeersAssigned", at: event.at, workerId: event.workerId, ...upload });
    if (problem !== undefined) return problem;
  }
  return undefined;
}

function assignedContradiction(state: State, event: Extract<DfsEvent, { type: "PeersAssigned" }>): string | undefined {
  const v = versionIn(state, event.fileId, event.version, "pending");
  if (typeof v === "string") return v;
  if (event.uploadId !== v.uploadId) return `version ${v.version} of file ${v.fileId} is upload ${v.uploadId}, not ${event.uploadId}`;
  if (event.uploader !== v.uploader) return `upload ${v.uploadId} is served by ${v.uploader ?? "no named user"}, not ${event.uploader ?? "no named user"}`;
  if (!state.workers.get(event.workerId)?.live) return `worker ${event.workerId} is not live`;
  const seen = new Set<number>();
  for (const a of event.pieces) {
    const piece = v.pieces[a.piece];
    if (!piece) return `piece ${a.piece} is not planned`;
    if (a.size !== piece.size || a.sha256 !== piece.sha256) return `piece ${a.piece} is ${piece.size} bytes with sha256 ${shortSha(piece.sha256)}, not as assigned`;
    if (seen.has(a.piece) || piece.peers.some((p) => p.workerId === event.workerId)) return `worker ${event.workerId} is already a peer of piece ${a.piece}`;
    // A lost peer that stored nothing no longer counts: its share may be placed again.
    const active = piece.peers.filter((p) => piece.stored.includes(p.workerId) || state.workers.get(p.workerId)?.live);
    if (active.length >= v.replicas) return `piece ${a.piece} already has its ${v.replicas} peers`;
    const major = active.find((p) => p.role === "major");
    if (a.role === "major") {
      if (major) return `piece ${a.piece} already has a major, ${major.workerId}`;
      if (a.pullFrom !== undefined) return `the major of piece ${a.piece} pulls from the uploader, not from ${a.pullFrom}`;
    } else {
      if (a.pullFrom === undefined || a.pullFrom === event.workerId) return `a minor of piece ${a.piece} must pull from another worker`;
      if (!state.workers.has(a.pullFrom)) return `no worker ${a.pullFrom} to pull piece ${a.piece} from`;
      if (major && a.pullFrom !== major.workerId) return `the major of piece ${a.piece} is ${major.workerId}, not ${a.pullFrom}`;
    }
    seen.add(a.piece);
  }
  return undefined;
}

function storedContradiction(state: State, event: Extract<DfsEvent, { type: "PieceStored" }>): string | undefined {
  const v = versionIn(state, event.fileId, event.version, "pending");
  if (typeof v === "string") return v;
  const piece = v.pieces[event.piece];
  if (!piece) return `piece ${event.piece} of version ${v.version} of file ${v.fileId} is not planned`;
  if (!piece.peers.some((p) => p.workerId === event.workerId)) return `worker ${event.workerId} is not a peer of piece ${event.piece}`;
  if (event.sha256 !== piece.sha256) return `piece ${event.piece} has sha256 ${shortSha(piece.sha256)}, not ${shortSha(event.sha256)}`;
  if (piece.stored.includes(event.workerId)) return `worker ${event.workerId} already stored piece ${event.piece}`;
  return undefined;
}

/** Whether a seal says what the streamed version's planned pieces hold. */
function sealedContradiction(state: State, event: Extract<DfsEvent, { type: "FileSealed" }>): string | undefined {
  const v = versionIn(state, event.fileId, event.version, "pending");
  if (typeof v === "string") return v;
  if (v.path !== event.path) return `version ${v.version} of file ${v.fileId} is ${v.path}, not ${event.path}`;
  if (v.stream === undefined) return `version ${v.version} of file ${v.fileId} is not streamed: its size was declared at create`;
  if (v.stream === "sealed") return `version ${v.version} of file ${v.fileId} is already sealed`;
  const problem = sealProblem(v, event.size, event.sha256);
  if (problem) return problem.reason;
  const count = piecesOf(event.size, v.pieceSize);
  return event.pieces === count ? undefined : `${event.size} bytes in pieces of ${v.pieceSize} are ${count} pieces; ${v.pieces.length} are planned, the seal says ${event.pieces}`;
}

/** Whether a commit, abandon or delete names the version as FileCreated made it. */
function sameAsCreated(v: VersionState, fields: { path: string; size?: number; sha256?: string }): string | undefined {
  if (fields.path !== v.path) return `version ${v.version} of file ${v.fileId} is ${v.path}, not ${fields.path}`;
  if (fields.size !== undefined && fields.size !== v.size) return `version ${v.version} of file ${v.fileId} has ${v.size} bytes, not ${fields.size}`;
  if (fields.sha256 !== undefined && fields.sha256 !== v.sha256) return `version ${v.version} of file ${v.fileId} has sha256 ${shortSha(v.sha256)}, not ${shortSha(fields.sha256)}`;
  return undefined;
}

function deletedContradiction(state: State, event: Extract<DfsEvent, { type: "FileDeleted" }>): string | undefined {
  const file = state.files.get(event.fileId);
  if (!file) return `no file ${event.fileId}`;
  if (file.path !== event.path) return `file ${file.fileId} is ${file.path}, not ${event.path}`;
  if (file.deleted) return `file ${file.fileId} is already deleted`;
  if (event.version === undefined) return latestCommitted(file) ? undefined : `file ${file.fileId} has no committed version`;
  const v = versionIn(state, event.fileId, event.version, "committed");
  return typeof v === "string" ? v : undefined;
}

/** Why a copy order cannot be: the target must be live and not already keep the bytes, the sources must hold checked copies. */
function orderedContradiction(state: State, event: Extract<DfsEvent, { type: "CopiesOrdered" }>): string | undefined {
  if (!state.workers.get(event.workerId)?.live) return `worker ${event.workerId} is not live`;
  const seen = new Set<string>();
  for (const order of event.pieces) {
    const c = state.content.get(order.sha256);
    if (!c || wantedReplicas(c) === 0) return `no committed version needs ${shortSha(order.sha256)}`;
    if (order.size !== c.size) return `${shortSha(c.sha256)} has ${c.size} bytes, not ${order.size}`;
    if (seen.has(c.sha256) || isPlaced(c, event.workerId)) return `worker ${event.workerId} already keeps ${shortSha(c.sha256)}`;
    if (new Set(order.sources).size !== order.sources.length) return `the sources of ${shortSha(c.sha256)} repeat`;
    for (const source of order.sources) {
      if (source === event.workerId || !c.holders.has(source)) return `worker ${source} holds no copy of ${shortSha(c.sha256)} to pull from`;
    }
    seen.add(c.sha256);
  }
  return undefined;
}

/**
 * Why a worker may not drop these bytes: it may if it owes the drop, if no live version
 * needs them, if it is not expected to keep them, or if enough other live copies remain.
 */
function droppedContradiction(state: State, event: Extract<DfsEvent, { type: "PiecesDropped" }>): string | undefined {
  if (!state.workers.has(event.workerId)) return `no worker ${event.workerId}`;
  const owed = state.dropsOwed.get(event.workerId);
  const seen = new Set<string>();
  for (const sha of event.sha256s) {
    if (seen.has(sha)) return `${shortSha(sha)} is dropped twice`;
    seen.add(sha);
    const c = state.content.get(sha);
    if (owed?.has(sha) || !c || !isPlaced(c, event.workerId)) continue;
    const others = liveHolders(state, c).filter((w) => w !== event.workerId).length;
    const spare = c.holders.has(event.workerId) && !c.assigned.has(event.workerId) && !c.copying.has(event.workerId) && wantedReplicas(c) > 0 && others >= wantedReplicas(c);
    if (!spare) return `worker ${event.workerId} does not owe a drop of ${shortSha(sha)}, which it must keep`;
  }
  return undefined;
}

/**
 * Why `event` contradicts the table, or undefined when it may be folded: every field that
 * names something must name what the log made of it (the decider never emits anything else).
 */
export function contradiction(state: State, event: DfsEvent): string | undefined {
  switch (event.type) {
    case "WorkerJoined":
      return state.workers.get(event.workerId)?.live ? `worker ${event.workerId} is already live` : undefined;
    case "WorkerLost": {
      const worker = state.workers.get(event.workerId);
      if (!worker) return `no worker ${event.workerId}`;
      return worker.live ? undefined : `worker ${event.workerId} is already lost`;
    }
    case "FileCreated":
      return createdContradiction(state, event);
    case "PiecesPlanned":
      return plannedContradiction(state, event);
    case "PeersAssigned":
      return assignedContradiction(state, event);
    case "UploadsAssigned":
      return uploadsAssignedContradiction(state, event);
    case "PieceStored":
      return storedContradiction(state, event);
    case "FileSealed":
      return sealedContradiction(state, event);
    case "FileCommitted": {
      const v = versionIn(state, event.fileId, event.version, "pending");
      if (typeof v === "string") return v;
      const differs = sameAsCreated(v, event);
      if (differs) return differs;
      return isVersionComplete(v) ? undefined : `not every piece of version ${v.version} of file ${v.fileId} holds its ${v.replicas} replicas`;
    }
    case "UploadAbandoned": {
      const v = versionIn(state, event.fileId, event.version, "pending");
      return typeof v === "string" ? v : sameAsCreated(v, event);
    }
    case "FileDeleted":
      return deletedContradiction(state, event);
    case "VersionExpired": {
      const file = state.files.get(event.fileId);
      if (!file) return `no file ${event.fileId}`;
      if (file.path !== event.path) return `file ${file.fileId} is ${file.path}, not ${event.path}`;
      const v = versionIn(state, event.fileId, event.version, "committed");
      if (typeof v === "string") return v;
      return expiryRule(state.retention, file, v, event.at) === undefined ? `the retention policy (${describePolicy(state.retention)}) keeps version ${v.version} of file ${file.fileId}` : undefined;
    }
    case "RetentionSet":
      return undefined;
    case "PiecesDropped":
      return droppedContradiction(state, event);
    case "CopiesOrdered":
      return orderedContradiction(state, event);
    case "ReplicaStored": {
      if (!state.workers.has(event.workerId)) return `no worker ${event.workerId}`;
      const c = state.content.get(event.sha256);
      if (!c) return `no live version needs ${shortSha(event.sha256)}`;
      return c.holders.has(event.workerId) ? `worker ${event.workerId} already holds ${shortSha(c.sha256)}` : undefined;
    }
    case "CopyFailed":
      return state.content.get(event.sha256)?.copying.has(event.workerId) ? undefined : `worker ${event.workerId} was not copying ${shortSha(event.sha256)}`;
    case "ReplicasLost": {
      const seen = new Set<string>();
      for (const sha of event.sha256s) {
        if (seen.has(sha) || !state.content.get(sha)?.holders.has(event.workerId)) return `worker ${event.workerId} holds no counted copy of ${shortSha(sha)}`;
        seen.add(sha);
      }
      return undefined;
    }
  }
}
