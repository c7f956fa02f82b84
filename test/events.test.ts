// parseEvent recognises an event exactly as the decider writes it with a fast check, and sends
// anything else through the event's schema. Both must give the same verdict and the same event:
// well-formed events and thousands of variations of them (fields dropped, added, reordered,
// swapped for wrong values, at every depth) are parsed both ways and compared.
import { createHash } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { EVENT_SCHEMAS, EVENT_TYPES, MAX_PIECES, MAX_REASON_LENGTH, MAX_REPLICAS, MIN_PIECE_SIZE, PIECES_PER_EVENT, UPLOADS_PER_EVENT, parseEvent, type EventType } from "../src/events.js";
import { isCanonicalPath, normalisePath } from "../src/paths.js";
import { decode, encode } from "../src/codec.js";
import { decide, type Command } from "../src/decide.js";
import { evolve } from "../src/fold.js";
import { initialState } from "../src/state.js";

const T0 = 1_700_000_000_000;
const sha = (seed: string | number): string => createHash("sha256").update(String(seed)).digest("hex");

type Value = Record<string, unknown>;

/** Well-formed events of every type, in the order the decider writes their fields, optional fields both ways. */
function wellFormed(): Value[] {
  const planned = [{ index: 0, size: MIN_PIECE_SIZE, sha256: sha(1) }, { index: 1, size: 10, sha256: sha(2) }];
  const major = { piece: 0, size: MIN_PIECE_SIZE, sha256: sha(1), role: "major" };
  const minor = { piece: 1, size: 10, sha256: sha(2), role: "minor", pullFrom: "w-2" };
  return [
    { type: "WorkerJoined", at: T0, workerId: "w1" },
    { type: "WorkerLost", at: T0, workerId: "w1", reason: "no heartbeat for 5000 ms" },
    { type: "FileCreated", at: T0, fileId: "F1", path: "/a/b.txt", version: 1, size: MIN_PIECE_SIZE + 10, sha256: sha(0), pieceSize: MIN_PIECE_SIZE, replicas: 2, uploadId: "U1" },
    { type: "FileCreated", at: T0, fileId: "F1", path: "/a/b.txt", version: 3, size: MIN_PIECE_SIZE + 10, sha256: sha(0), pieceSize: MIN_PIECE_SIZE, replicas: 2, uploadId: "U1", uploader: "client", pieces: planned },
    { type: "FileCreated", at: T0, fileId: "F2", path: "/café/ünï", version: 1, size: 0, pieceSize: MIN_PIECE_SIZE, replicas: MAX_REPLICAS, uploadId: "U2", uploader: "client", streamed: true },
    { type: "PiecesPlanned", at: T0, fileId: "F1", version: 2, pieces: planned },
    { type: "PeersAssigned", at: T0, fileId: "F1", version: 2, uploadId: "U1", workerId: "w1", pieces: [major, minor] },
    { type: "PeersAssigned", at: T0, fileId: "F1", version: 2, uploadId: "U1", uploader: "client", workerId: "w1", pieces: [minor] },
    {
      type: "UploadsAssigned",
      at: T0,
      workerId: "w1",
      uploads: [
        { fileId: "F1", version: 1, uploadId: "U1", uploader: "client", pieces: [major] },
        { fileId: "F2", version: 4, uploadId: "U2", pieces: [major, minor] },
      ],
    },
    { type: "PieceStored", at: T0, fileId: "F1", version: 1, piece: 0, workerId: "w1", sha256: sha(1) },
    { type: "FileSealed", at: T0, fileId: "F2", path: "/s", version: 1, size: 10, sha256: sha(3), pieces: 1 },
    { type: "FileCommitted", at: T0, fileId: "F1", path: "/a/b.txt", version: 1, size: 10, sha256: sha(4) },
    { type: "UploadAbandoned", at: T0, fileId: "F1", path: "/a/b.txt", version: 1, code: "TIMEOUT", reason: "the uploader said nothing" },
    { type: "FileDeleted", at: T0, fileId: "F1", path: "/a/b.txt" },
    { type: "FileDeleted", at: T0, fileId: "F1", path: "/a/b.txt", version: 2 },
    { type: "PiecesDropped", at: T0, workerId: "w1", sha256s: [sha(1), sha(2)] },
    { type: "CopiesOrdered", at: T0, workerId: "w1", pieces: [{ sha256: sha(1), size: 10, sources: ["w2", "w3"] }] },
    { type: "ReplicaStored", at: T0, workerId: "w1", sha256: sha(1) },
    { type: "CopyFailed", at: T0, workerId: "w1", sha256: sha(1), code: "WORKER_LOST", reason: "lost" },
    { type: "ReplicasLost", at: T0, workerId: "w1", sha256s: [sha(1)], reason: "scrub found it bad" },
    { type: "RetentionSet", at: T0 },
    { type: "RetentionSet", at: T0, keepVersions: 3, keepForMs: 60_000 },
    { type: "VersionExpired", at: T0, fileId: "F1", path: "/a/b.txt", version: 1, rule: "keep the newest 2 versions" },
  ];
}

/** What the schema alone says of a value: the event it returns, or why there is none (as parseEvent words it). */
function bySchema(value: Value): { event: unknown } | { rejected: string } {
  const result = EVENT_SCHEMAS[value.type as EventType].safeParse(value);
  if (result.success) return { event: result.data };
  const issue = result.error.issues[0]!;
  return { rejected: `${String(value.type)}${issue.path.length ? `.${issue.path.join(".")}` : ""}: ${issue.message}` };
}

function sameVerdict(value: Value, what: string): "event" | "rejected" {
  const fast = parseEvent(value);
  const slow = bySchema(value);
  assert.equal(fast, slow, what);
  // Equal maps with their fields in the same order: what `dfs tail --json` prints of them is the same too.
  if ("event" in fast && "event" in slow) assert.is(JSON.stringify(fast.event), JSON.stringify(slow.event), what);
  return "event" in fast ? "event" : "rejected";
}

/** Values of every kind a forged field might hold, and edges of the rules. */
const ODD_VALUES: unknown[] = [
  undefined,
  null,
  true,
  0,
  -0,
  1,
  -1,
  1.5,
  2 ** 53,
  Number.MAX_SAFE_INTEGER,
  NaN,
  Infinity,
  MIN_PIECE_SIZE - 1,
  MAX_PIECES + 1,
  "",
  "x",
  "w.1",
  "x".repeat(64),
  "x".repeat(65),
  "r".repeat(MAX_REASON_LENGTH),
  "r".repeat(MAX_REASON_LENGTH + 1),
  "/a/../b",
  "/a/",
  "/a\u0000b",
  "/cafe\u0301",
  sha(9).toUpperCase(),
  sha(9),
  "major",
  "minor",
  [],
  [1],
  {},
  { index: 0 },
];

/** Each way a value can be changed in one place: a field dropped, replaced, added, or the fields reordered; the same inside lists and maps. */
function* variations(value: unknown): Generator<unknown> {
  if (Array.isArray(value)) {
    yield [];
    yield [...value, value[0]];
    for (let i = 0; i < value.length; i++) for (const changed of variations(value[i])) yield value.map((item, j) => (j === i ? changed : item));
    return;
  }
  if (typeof value !== "object" || value === null) {
    yield* ODD_VALUES;
    return;
  }
  const map = value as Value;
  const keys = Object.keys(map);
  yield Object.fromEntries([...keys].reverse().map((k) => [k, map[k]]));
  yield { ...map, extra: 1 };
  yield Object.assign(Object.create(null), map);
  for (const key of keys) {
    const { [key]: _dropped, ...rest } = map;
    yield rest;
    for (const changed of variations(map[key])) yield { ...map, [key]: changed };
  }
}

const Agree = suite("events: the fast check and the schemas");

Agree("events - a well-formed event is the event as it is, not a copy", () => {
  const seen = new Set<string>();
  for (const value of wellFormed()) {
    const parsed = parseEvent(value);
    assert.ok("event" in parsed && parsed.event === value, `${JSON.stringify(value)} ${JSON.stringify(parsed)}`);
    seen.add(value.type as string);
  }
  assert.equal([...seen].sort(), [...EVENT_TYPES].sort(), "a sample of every type");
});

Agree("events - what the decider writes for puts is checked on the fast path, as it is logged", () => {
  const state = initialState();
  const types = new Set<string>();
  const run = (cmd: Command) => {
    const events = decide(state, cmd);
    for (const event of events) {
      const logged = decode(encode(event)) as Value;
      const parsed = parseEvent(logged);
      assert.ok("event" in parsed && parsed.event === logged, JSON.stringify(logged));
      types.add(event.type);
      evolve(state, parsed.event, state.lastSeq + 1);
    }
    return events;
  };
  for (const workerId of ["w1", "w2", "w3"]) run({ type: "NoteHeartbeat", at: T0, workerId });
  const bytes = (n: number) => createHash("sha256").update(`content ${n}`).digest("hex");
  const creates = [1, 3].map((count, i) => {
    const pieces = Array.from({ length: count }, (_, index) => ({ index, size: index < count - 1 ? MIN_PIECE_SIZE : 10, sha256: bytes(10 * i + index) }));
    const size = pieces.reduce((n, p) => n + p.size, 0);
    return { type: "CreateVersion", at: T0, uploadId: `U${i}`, uploader: "client", newFileId: `F${i}`, path: `/put/${i}`, size, sha256: count === 1 ? pieces[0]!.sha256 : sha(i), pieceSize: MIN_PIECE_SIZE, replicas: 2, pieces } as const;
  });
  run({ type: "CreateVersions", at: T0, creates });
  for (const [fileId, version] of [["F0", 1], ["F1", 1]] as const) {
    for (const piece of state.files.get(fileId)!.versions.get(version)!.pieces) {
      for (const peer of piece.peers) run({ type: "ConfirmPiece", at: T0, workerId: peer.workerId, fileId, version, piece: piece.index, sha256: piece.sha256, ok: true });
    }
  }
  assert.equal([...types].sort(), ["FileCommitted", "FileCreated", "PieceStored", "UploadsAssigned", "WorkerJoined"]);
  assert.is(state.rejected.count, 0);
});

Agree("events - every variation of every type gets the schema's verdict, event or reason", () => {
  let accepted = 0;
  let rejected = 0;
  for (const sample of wellFormed()) {
    for (const value of variations(sample)) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) continue;
      if (!EVENT_TYPES.includes((value as Value).type as EventType)) continue;
      const verdict = sameVerdict(value as Value, JSON.stringify(value, (_k, v) => (v === undefined ? "(undefined)" : v)).slice(0, 300));
      if (verdict === "event") accepted += 1;
      else rejected += 1;
    }
  }
  // Both kinds were compared, many of each (the counts are of this generator, not a tuned figure).
  assert.ok(accepted > 100 && rejected > 1_000, `${accepted} accepted, ${rejected} rejected`);
});

Agree("events - the rules across fields and the limits of lists hold on both paths", () => {
  const created = wellFormed().find((v) => v.type === "FileCreated" && v.pieces === undefined)!;
  const streamed = wellFormed().find((v) => v.streamed === true)!;
  const assigned = wellFormed().find((v) => v.type === "UploadsAssigned")!;
  const piece = (i: number) => ({ piece: i, size: 1, sha256: sha(i), role: "major" });
  const cases: Value[] = [
    { ...created, size: (MAX_PIECES + 1) * MIN_PIECE_SIZE },
    { ...created, size: MAX_PIECES * MIN_PIECE_SIZE },
    { ...streamed, size: 1 },
    { ...streamed, sha256: sha(1) },
    { ...streamed, pieces: [{ index: 0, size: 1, sha256: sha(1) }] },
    { ...created, sha256: undefined },
    { ...assigned, uploads: [0, 1].map((i) => ({ fileId: `F${i}`, version: 1, uploadId: `U${i}`, pieces: Array.from({ length: PIECES_PER_EVENT / 2 + i }, (_, p) => piece(p)) })) },
    { ...assigned, uploads: [0, 1].map((i) => ({ fileId: `F${i}`, version: 1, uploadId: `U${i}`, pieces: Array.from({ length: PIECES_PER_EVENT / 2 }, (_, p) => piece(p)) })) },
    { ...assigned, uploads: Array.from({ length: UPLOADS_PER_EVENT + 1 }, (_, i) => ({ fileId: `F${i}`, version: 1, uploadId: `U${i}`, pieces: [piece(0)] })) },
    { ...assigned, uploads: Array.from({ length: UPLOADS_PER_EVENT }, (_, i) => ({ fileId: `F${i}`, version: 1, uploadId: `U${i}`, pieces: [piece(0)] })) },
    { type: "PiecesDropped", at: T0, workerId: "w1", sha256s: Array.from({ length: PIECES_PER_EVENT + 1 }, (_, i) => sha(i)) },
    { type: "PiecesDropped", at: T0, workerId: "w1", sha256s: Array.from({ length: PIECES_PER_EVENT }, (_, i) => sha(i)) },
  ];
  const verdicts = cases.map((value, i) => sameVerdict(value, `case ${i}`));
  assert.equal(verdicts, ["rejected", "event", "rejected", "rejected", "rejected", "rejected", "rejected", "event", "rejected", "event", "rejected", "event"]);
});

Agree("paths - a plain ASCII path is told canonical as normalisePath tells it", () => {
  const alphabet = ["a", "Z", "0", ".", "/", " ", "~", "-", "\u007f", "\u0001", "é"];
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed % n;
  };
  const samples = ["/" + "x".repeat(255), "/" + "x".repeat(256), "/a/" + "x".repeat(255), ("/" + "x".repeat(200)).repeat(20), ("/" + "x".repeat(200)).repeat(21)];
  for (let i = 0; i < 20_000; i++) samples.push(Array.from({ length: 1 + rand(8) }, () => alphabet[rand(alphabet.length)]).join(""));
  for (const path of samples) {
    let canonical: boolean;
    try {
      canonical = normalisePath(path) === path;
    } catch {
      canonical = false;
    }
    assert.is(isCanonicalPath(path), canonical, JSON.stringify(path.slice(0, 80)));
  }
});

Agree.run();
