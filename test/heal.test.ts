// Healing as pure decisions: given(events) / when(Reconcile or a worker's report) / then(events).
// Every decided event must fold (the fold would reject anything else), and the table by
// content must end where the versions want it: each committed piece on exactly its replicas.
import { createHash } from "node:crypto";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { decide, type Command, type CreateVersion } from "../src/decide.js";
import { MIN_PIECE_SIZE, PIECES_PER_EVENT, wholeSha256Of, type DfsEvent, type PlannedPiece } from "../src/events.js";
import { evolve } from "../src/fold.js";
import { COPY_RETRY_MS, DROP_EVENTS_PER_PASS, HealCursor, MAX_COPIES_IN_FLIGHT, countedOn, hasWork } from "../src/heal.js";
import { liveHolders, wantedReplicas } from "../src/content.js";
import { locate } from "../src/queries.js";
import { PROBLEMS_SHOWN, pieceHealth, storeStatus } from "../src/status.js";
import { initialState, type State } from "../src/state.js";

const T0 = 1_700_000_000_000;
const sha = (seed: string | number): string => createHash("sha256").update(String(seed)).digest("hex");

/** A command, its time given by the store's clock. */
type Input<C> = C extends unknown ? Omit<C, "at"> & { at?: number } : never;

/** A log that folds every decision and fails the test on any rejected event. */
class Store {
  readonly state: State = initialState();
  at = T0;
  run(cmd: Input<Command>): DfsEvent[] {
    const events = decide(this.state, { at: this.at, ...cmd } as Command);
    for (const e of events) {
      const rejected = evolve(this.state, e);
      assert.is(rejected, undefined, `${e.type} was decided but the fold rejects it: ${rejected}`);
    }
    return events;
  }
  join(...ids: string[]): void {
    for (const workerId of ids) this.run({ type: "NoteHeartbeat", workerId });
  }
  lose(workerId: string): void {
    this.run({ type: "NoteSilence", workerId, silentMs: 9_000 });
  }
  /** A committed file: created, every assigned peer confirming. */
  put(path: string, pieces: number, replicas: number, content = (i: number) => sha(`${path}#${i}`)): void {
    const planned: PlannedPiece[] = Array.from({ length: pieces }, (_, index) => ({ index, size: MIN_PIECE_SIZE, sha256: content(index) }));
    const uploadId = `u${this.state.uploads.size + 1}`;
    const created = this.run({
      type: "CreateVersion",
      uploadId,
      newFileId: `f${this.state.files.size + 1}`,
      path,
      size: pieces * MIN_PIECE_SIZE,
      sha256: wholeSha256Of(planned.map((p) => p.sha256)) ?? sha(path),
      pieceSize: MIN_PIECE_SIZE,
      replicas,
      pieces: planned,
    } satisfies Omit<CreateVersion, "at">);
    this.confirmAll(created);
  }
  confirmAll(events: readonly DfsEvent[]): DfsEvent[] {
    const out: DfsEvent[] = [];
    for (const e of events) {
      if (e.type !== "PeersAssigned") continue;
      for (const p of e.pieces) {
        out.push(...this.run({ type: "ConfirmPiece", workerId: e.workerId, fileId: e.fileId, version: e.version, piece: p.piece, sha256: p.sha256, ok: true }));
      }
    }
    return out;
  }
  /** The ordered copies, done: each target confirms. */
  copy(events: readonly DfsEvent[]): DfsEvent[] {
    const out: DfsEvent[] = [];
    for (const e of events) {
      if (e.type !== "CopiesOrdered") continue;
      for (const p of e.pieces) out.push(...this.run({ type: "ConfirmCopy", workerId: e.workerId, sha256: p.sha256, ok: true }));
    }
    return out;
  }
  /** Reconcile, and have every ordered copy done, until nothing is left to do. */
  heal(rounds = 20): DfsEvent[] {
    const all: DfsEvent[] = [];
    for (let i = 0; i < rounds; i++) {
      const events = this.run({ type: "Reconcile" });
      if (events.length === 0) return all;
      all.push(...events, ...this.copy(events));
    }
    assert.unreachable(`still healing after ${rounds} rounds`);
    return all;
  }
  liveCopies(sha256: string): string[] {
    return liveHolders(this.state, this.state.content.get(sha256)!).sort();
  }
}

function ofType<T extends DfsEvent["type"]>(events: readonly DfsEvent[], type: T): Extract<DfsEvent, { type: T }>[] {
  return events.filter((e): e is Extract<DfsEvent, { type: T }> => e.type === type);
}

/** Every committed piece has exactly the live copies its versions want. */
function assertWhole(store: Store): void {
  for (const c of store.state.content.values()) {
    const wanted = wantedReplicas(c);
    if (wanted > 0) assert.is(liveHolders(store.state, c).length, wanted, `${c.sha256.slice(0, 8)} has ${liveHolders(store.state, c).length} live copies, wants ${wanted}`);
  }
  assert.is(store.state.unhealthy.size, 0);
}

const Heal = suite("heal");

Heal("a lost worker's pieces are copied from a surviving holder to a live worker that lacks them", () => {
  const s = new Store();
  s.join("a", "b", "c");
  s.put("/f", 3, 2);
  const onA = [...s.state.placedOn.get("a") ?? []];
  s.lose("a");
  const decided = s.run({ type: "Reconcile" });
  const orders = ofType(decided, "CopiesOrdered");
  const ordered = orders.flatMap((o) => o.pieces.map((p) => ({ target: o.workerId, ...p })));
  assert.equal(ordered.map((o) => o.sha256).sort(), onA.sort(), "every piece a held is copied once");
  for (const o of ordered) {
    assert.is.not(o.target, "a");
    assert.not.ok(s.state.content.get(o.sha256)!.holders.has(o.target), "never a second copy on one worker");
    assert.ok(o.sources.every((w) => w !== "a" && s.state.content.get(o.sha256)!.holders.has(w)), "sources hold checked copies");
  }
  assert.equal(s.run({ type: "Reconcile" }), [], "ordered once: in-flight copies count");
  s.copy(decided);
  for (const sha256 of onA) assert.is(s.liveCopies(sha256).length, 2);
  assertWhole(s);
  // The file reads from its new copies.
  assert.ok(locate(s.state, "/f").pieces.every((p) => p.workers.length >= 2));
});

Heal("a worker that comes back is counted again, and the copies beyond what is wanted are dropped", () => {
  const s = new Store();
  s.join("a", "b", "c");
  s.put("/f", 4, 2);
  s.lose("b");
  s.heal();
  s.join("b");
  const drops = ofType(s.heal(), "PiecesDropped");
  assert.ok(drops.length > 0, "the extra copies go");
  assertWhole(s);
  assert.not.ok(hasWork(s.state, s.at));
});

Heal("pieces that cannot be placed wait, counted as unhealthy, and are placed when a worker joins", () => {
  const s = new Store();
  s.join("a", "b");
  s.put("/f", 2, 2);
  s.lose("a");
  assert.equal(s.run({ type: "Reconcile" }), [], "no live worker lacks them");
  assert.is(s.state.unhealthy.size, 2);
  assert.ok(hasWork(s.state, s.at));
  s.join("c");
  const orders = ofType(s.run({ type: "Reconcile" }), "CopiesOrdered");
  assert.equal(orders.map((o) => o.workerId), ["c"]);
  assert.is(orders[0]!.pieces.length, 2);
});

Heal("bytes whose every holder is lost cannot be copied; they are when a holder returns", () => {
  const s = new Store();
  s.join("a", "b", "c");
  s.put("/f", 1, 1);
  const [holder] = [...s.state.content.values()][0]!.holders;
  s.lose(holder!);
  assert.equal(ofType(s.run({ type: "Reconcile" }), "CopiesOrdered"), []);
  s.join(holder!);
  assert.equal(s.run({ type: "Reconcile" }), [], "back to one copy of one wanted");
  assertWhole(s);
});

Heal("a copy lost to rot is made again, from a good copy", () => {
  const s = new Store();
  s.join("a", "b", "c");
  s.put("/f", 1, 2);
  const c = [...s.state.content.values()][0]!;
  const [bad, good] = [...c.holders];
  const lost = s.run({ type: "ReportLost", workerId: bad!, sha256s: [c.sha256], reason: "failed its SHA-256 on a read" });
  assert.equal(ofType(lost, "ReplicasLost").map((e) => [e.workerId, e.sha256s]), [[bad, [c.sha256]]]);
  assert.not.ok(locate(s.state, "/f").pieces[0]!.workers.includes(bad!), "the bad copy is no longer offered");
  const orders = ofType(s.run({ type: "Reconcile" }), "CopiesOrdered");
  assert.is(orders.length, 1);
  assert.equal(orders[0]!.pieces[0]!.sources, [good]);
  assert.equal(s.run({ type: "ReportLost", workerId: bad!, sha256s: [c.sha256], reason: "again" }), [], "reported twice, lost once");
});

Heal("a failed copy is ordered elsewhere, and the failed target only after a while", () => {
  const s = new Store();
  s.join("a", "b", "c", "d");
  s.put("/f", 1, 3);
  const c = [...s.state.content.values()][0]!;
  const holder = [...c.holders][0]!;
  s.lose(holder);
  const [first] = ofType(s.run({ type: "Reconcile" }), "CopiesOrdered");
  assert.equal(ofType(s.run({ type: "ConfirmCopy", workerId: first!.workerId, sha256: c.sha256, ok: false, code: "UNAVAILABLE", message: "no source answered" }), "CopyFailed").length, 1);
  assert.equal(s.run({ type: "Reconcile" }), [], "no other live worker lacks it, and the failed one waits");
  s.at += COPY_RETRY_MS;
  const [again] = ofType(s.run({ type: "Reconcile" }), "CopiesOrdered");
  assert.is(again!.workerId, first!.workerId);
});

Heal("copies ordered to a worker that is lost are given up, and ordered elsewhere", () => {
  const s = new Store();
  s.join("a", "b", "c", "d");
  s.put("/f", 1, 2);
  const c = [...s.state.content.values()][0]!;
  s.lose([...c.holders][0]!);
  const [order] = ofType(s.run({ type: "Reconcile" }), "CopiesOrdered");
  s.lose(order!.workerId);
  const next = s.run({ type: "Reconcile" });
  assert.equal(ofType(next, "CopyFailed").map((e) => [e.workerId, e.code]), [[order!.workerId, "WORKER_LOST"]]);
  const [elsewhere] = ofType(next, "CopiesOrdered");
  assert.ok(elsewhere && elsewhere.workerId !== order!.workerId);
  // The lost target comes back and finishes its copy after all: counted, then the spare dropped.
  s.join(order!.workerId);
  s.run({ type: "ConfirmCopy", workerId: order!.workerId, sha256: c.sha256, ok: true });
  s.run({ type: "ConfirmCopy", workerId: elsewhere!.workerId, sha256: c.sha256, ok: true });
  s.heal();
  assertWhole(s);
});

Heal("healing keeps at most MAX_COPIES_IN_FLIGHT copies in flight", () => {
  const s = new Store();
  s.join("a", "b", "c");
  s.put("/big", 3 * MAX_COPIES_IN_FLIGHT, 2);
  s.lose("a");
  const first = s.run({ type: "Reconcile" });
  const ordered = ofType(first, "CopiesOrdered").reduce((n, e) => n + e.pieces.length, 0);
  assert.is(ordered, MAX_COPIES_IN_FLIGHT, `${ordered} ordered at once`);
  assert.equal(s.run({ type: "Reconcile" }), [], "no more while the budget is spent");
  s.copy(first);
  s.heal(50);
  assertWhole(s);
});

Heal("bytes shared by many files are copied once", () => {
  const s = new Store();
  s.join("a", "b", "c");
  for (let i = 0; i < 20; i++) s.put(`/copy${i}`, 1, 2, () => sha("shared"));
  assert.is(s.state.content.size, 1);
  s.heal(); // the same bytes put twenty times over: every spare copy goes
  assertWhole(s);
  const holders = s.liveCopies(sha("shared"));
  s.lose(holders[0]!);
  const orders = ofType(s.run({ type: "Reconcile" }), "CopiesOrdered");
  assert.is(orders.reduce((n, e) => n + e.pieces.length, 0), 1);
});

Heal("an open upload whose peer is lost is re-placed on another live worker, pulling from the same uploader, and commits", () => {
  const s = new Store();
  s.join("a", "b", "c", "d");
  const created = s.run({
    type: "CreateVersion",
    uploadId: "U",
    uploader: "client-bob",
    newFileId: "F",
    path: "/open",
    size: 3 * MIN_PIECE_SIZE,
    sha256: sha("open"),
    pieceSize: MIN_PIECE_SIZE,
    replicas: 2,
    pieces: [0, 1, 2].map((index) => ({ index, size: MIN_PIECE_SIZE, sha256: sha(`open${index}`) })),
  });
  const assigned = ofType(created, "PeersAssigned");
  const victim = assigned[0]!.workerId;
  // Everyone but the victim stores its share; then the victim is lost.
  s.confirmAll(assigned.filter((e) => e.workerId !== victim));
  s.lose(victim);
  const replan = ofType(s.run({ type: "Reconcile" }), "PeersAssigned");
  assert.ok(replan.length > 0, "the victim's share is placed again");
  for (const e of replan) {
    assert.is.not(e.workerId, victim);
    assert.is(e.uploader, "client-bob", "a new peer pulls from the uploader's own subjects");
    for (const p of e.pieces) {
      const piece = s.state.files.get("F")!.versions.get(1)!.pieces[p.piece]!;
      const major = piece.peers.find((x) => x.role === "major" && x.workerId !== e.workerId);
      if (major && major.workerId !== victim) assert.equal([p.role, p.pullFrom], ["minor", major.workerId], "a minor pulls from the live major");
      else assert.is(p.role, "major", "the lost major's share goes to a new major");
    }
  }
  const done = s.confirmAll(replan);
  assert.equal(ofType(done, "FileCommitted").map((e) => e.path), ["/open"]);
});

Heal("a worker's inventory: counted copies it lacks are lost, unconfirmed ones are counted, strays dropped", () => {
  const s = new Store();
  s.join("a", "b", "c");
  s.put("/f", 3, 3);
  const shas = [...s.state.placedOn.get("a")!].sort();
  const held = new Set([shas[0]!, sha("stray")]);
  const events = s.run({ type: "ReconcileInventory", workerId: "a", held, countedWhenAsked: countedOn(s.state, "a") });
  assert.equal(ofType(events, "ReplicasLost").map((e) => e.sha256s), [shas.slice(1)]);
  assert.equal(ofType(events, "PiecesDropped").map((e) => e.sha256s), [[sha("stray")]]);
  s.heal();
  assertWhole(s);
  // Wiped while down: it comes back empty, and everything it held is made again.
  s.lose("b");
  s.join("b");
  s.run({ type: "ReconcileInventory", workerId: "b", held: new Set(), countedWhenAsked: countedOn(s.state, "b") });
  s.heal();
  assertWhole(s);
});

Heal("a worker's inventory does not lose a copy confirmed after it answered (a rejoining worker doing its queued assignments)", () => {
  const s = new Store();
  s.join("a", "b");
  s.put("/old", 2, 2);
  // "a" is asked, and answers with what it holds; before the answer is settled, it stores
  // and confirms its share of a put made meanwhile.
  const countedWhenAsked = countedOn(s.state, "a");
  const held = new Set(countedWhenAsked);
  s.put("/new", 2, 2);
  const since = [...s.state.placedOn.get("a")!].filter((sha256) => !held.has(sha256));
  assert.is(since.length, 2, "both new pieces are on a, confirmed after it answered");
  const events = s.run({ type: "ReconcileInventory", workerId: "a", held, countedWhenAsked });
  assert.equal(events, [], "nothing is lost, found or dropped");
  for (const sha256 of since) assert.equal(s.liveCopies(sha256), ["a", "b"]);
  // What the log counted when it asked and the worker lacks is still lost.
  held.delete([...countedWhenAsked][0]!);
  assert.equal(ofType(s.run({ type: "ReconcileInventory", workerId: "a", held, countedWhenAsked }), "ReplicasLost").map((e) => e.sha256s), [[[...countedWhenAsked][0]!]]);
});

Heal("a worker's inventory does not count again a copy lost after it answered", () => {
  const s = new Store();
  s.join("a", "b");
  s.put("/f", 1, 2);
  const countedWhenAsked = countedOn(s.state, "a");
  const held = new Set(countedWhenAsked);
  const [sha256] = [...held];
  // Its copy fails a read while its answer is on the way.
  s.run({ type: "ReportLost", workerId: "a", sha256s: [sha256!], reason: "failed its SHA-256 on a read" });
  const ordered = s.run({ type: "Reconcile" });
  assert.equal(ofType(ordered, "CopiesOrdered").map((e) => e.workerId), ["a"], "the only worker that lacks it is asked to copy it again");
  const events = s.run({ type: "ReconcileInventory", workerId: "a", held, countedWhenAsked });
  assert.equal(ofType(events, "ReplicaStored"), [], "the stale answer does not bring the bad copy back");
  s.copy(ordered);
  s.heal();
  assertWhole(s);
});

Heal("a worker's inventory is settled a few pieces a decision, decided again until nothing is left, with what it dropped taken out", () => {
  const s = new Store();
  s.join("a", "b", "c");
  s.put("/f", 9, 3);
  const shas = [...s.state.placedOn.get("a")!].sort();
  const strays = [sha("stray 1"), sha("stray 2"), sha("stray 3")];
  const held = new Set([shas[0]!, ...strays]);
  const countedWhenAsked = countedOn(s.state, "a");
  const decisions: DfsEvent[][] = [];
  for (let i = 0; i < 20; i++) {
    const events = s.run({ type: "ReconcileInventory", workerId: "a", held, countedWhenAsked, limit: 2 });
    if (events.length === 0) break;
    decisions.push(events);
    for (const e of ofType(events, "PiecesDropped")) for (const sha256 of e.sha256s) held.delete(sha256);
  }
  for (const events of decisions) {
    const pieces = events.flatMap((e) => (e.type === "ReplicasLost" || e.type === "PiecesDropped" ? e.sha256s : [e.type]));
    assert.ok(pieces.length <= 2, `a decision of ${pieces.length} pieces`);
  }
  assert.equal(decisions.flatMap((events) => ofType(events, "ReplicasLost").flatMap((e) => e.sha256s)).sort(), shas.slice(1), "every copy it lacks is lost");
  assert.equal(decisions.flatMap((events) => ofType(events, "PiecesDropped").flatMap((e) => e.sha256s)).sort(), [...strays].sort(), "every stray dropped once");
  s.heal();
  assertWhole(s);
});

Heal("random joins, losses, puts, deletes and rot: every decision folds, and the store ends whole", () => {
  let seed = 7;
  const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  const s = new Store();
  const workers = ["a", "b", "c", "d", "e"];
  s.join(...workers);
  for (let step = 0; step < 300; step++) {
    s.at += 1_000;
    const r = random();
    const w = workers[Math.floor(random() * workers.length)]!;
    const live = s.state.workers.get(w)!.live;
    if (r < 0.15) (live ? s.lose(w) : s.join(w));
    else if (r < 0.45 && [...s.state.workers.values()].filter((x) => x.live).length >= 3) {
      s.put(`/p${step % 17}`, 1 + Math.floor(random() * 3), 1 + Math.floor(random() * 3), (i) => sha(`${step % 5}:${i}`));
    } else if (r < 0.55 && s.state.paths.size > 0) {
      s.run({ type: "DeleteFile", path: [...s.state.paths.keys()][Math.floor(random() * s.state.paths.size)]! });
    } else if (r < 0.65 && s.state.content.size > 0) {
      const c = [...s.state.content.values()][Math.floor(random() * s.state.content.size)]!;
      const holder = [...c.holders][0];
      if (holder) s.run({ type: "ReportLost", workerId: holder, sha256s: [c.sha256], reason: "rot" });
    }
    s.heal();
  }
  for (const w of workers) if (!s.state.workers.get(w)!.live) s.join(w);
  s.at += COPY_RETRY_MS;
  s.heal();
  assert.is(s.state.rejected.count, 0);
  // Whatever still has a copy somewhere is whole again; bytes whose every copy rotted are gone.
  for (const c of s.state.content.values()) {
    if (wantedReplicas(c) > 0 && c.holders.size > 0) assert.is(liveHolders(s.state, c).length, wantedReplicas(c));
  }
});

/** Version `n` of `path`, one piece of its own bytes, put at `at`. */
function putVersion(s: Store, path: string, n: number, at: number): void {
  s.at = at;
  s.put(path, 1, 1, () => sha(`${path} v${n}`));
}

const versionsOf = (s: Store, path: string) =>
  [...s.state.files.get(s.state.paths.get(path)!)!.versions.values()].map((v) => `v${v.version}:${v.status}`);

Heal("retention - keeps each path's newest N versions: older ones expire, oldest first, and their bytes are dropped", () => {
  const s = new Store();
  s.join("a", "b");
  assert.equal(ofType(s.run({ type: "SetRetention", keepVersions: 2 }), "RetentionSet").length, 1);
  assert.equal(s.run({ type: "SetRetention", keepVersions: 2 }), [], "the same policy again decides nothing");
  for (let n = 1; n <= 4; n++) putVersion(s, "/r", n, T0 + n);
  const v1 = s.state.files.get(s.state.paths.get("/r")!)!.versions.get(1)!.pieces[0]!.sha256;
  const decided = s.run({ type: "Reconcile" });
  assert.equal(ofType(decided, "VersionExpired").map((e) => `${e.version}: ${e.rule}`), ["1: keep the newest 2 versions", "2: keep the newest 2 versions"]);
  assert.equal(versionsOf(s, "/r"), ["v1:deleted", "v2:deleted", "v3:committed", "v4:committed"]);
  assert.match(s.state.files.get(s.state.paths.get("/r")!)!.versions.get(1)!.reason!, /^expired: keep the newest 2 versions/);
  // Their bytes are no longer needed anywhere: dropped.
  const drops = ofType(s.heal(), "PiecesDropped").flatMap((e) => e.sha256s);
  assert.ok(drops.includes(v1), "v1's piece is dropped");
  assert.not.ok(s.state.content.has(v1));
  assert.not.ok(hasWork(s.state, s.at));
});

Heal("retention - a duration counts from the commit of the next newer version, and the clock alone brings an expiry", () => {
  const s = new Store();
  s.join("a");
  s.run({ type: "SetRetention", keepForMs: 1_000 });
  putVersion(s, "/d", 1, T0);
  putVersion(s, "/d", 2, T0 + 5_000);
  s.at = T0 + 5_500;
  assert.not.ok(hasWork(s.state, s.at), "v1 was superseded 500 ms ago");
  assert.equal(s.run({ type: "Reconcile" }), []);
  s.at = T0 + 6_000;
  assert.ok(hasWork(s.state, s.at), "a second after v2 committed, v1 is due");
  assert.equal(ofType(s.run({ type: "Reconcile" }), "VersionExpired").map((e) => e.version), [1]);
  assert.equal(versionsOf(s, "/d"), ["v1:deleted", "v2:committed"], "the newest is never expired, however old");
});

Heal("retention - with both limits a version goes only past both, and the fold refuses an expiry the policy does not allow", () => {
  const s = new Store();
  s.join("a");
  s.run({ type: "SetRetention", keepVersions: 2, keepForMs: 1_000 });
  for (let n = 1; n <= 3; n++) putVersion(s, "/b", n, T0 + n * 10_000);
  const fileId = s.state.paths.get("/b")!;
  // v2 is old enough but among the newest two: a forged expiry of it is rejected, as is one of the newest.
  assert.match(evolve(s.state, { type: "VersionExpired", at: T0 + 99_000, fileId, path: "/b", version: 2, rule: "forged" })!, /keeps version 2/);
  assert.match(evolve(s.state, { type: "VersionExpired", at: T0 + 99_000, fileId, path: "/b", version: 3, rule: "forged" })!, /keeps version 3/);
  s.at = T0 + 99_000;
  assert.equal(ofType(s.run({ type: "Reconcile" }), "VersionExpired").map((e) => e.version), [1]);
  // Keeping everything again stops expiries.
  s.run({ type: "SetRetention" });
  putVersion(s, "/b", 4, T0 + 100_000);
  s.at = T0 + 999_000;
  assert.equal(ofType(s.run({ type: "Reconcile" }), "VersionExpired"), []);
});

Heal("passes - a cursor takes the unhealthy pieces a window at a time, resumes, reaches pieces added meanwhile, and starts over", () => {
  const s = new Store();
  s.join("a", "b");
  s.put("/f", 10, 1);
  s.lose("a");
  s.lose("b");
  const unhealthy = [...s.state.unhealthy];
  assert.is(unhealthy.length, 10, "every piece unavailable");
  const cursor = new HealCursor();
  const first = cursor.next(s.state, 4);
  const second = cursor.next(s.state, 4);
  assert.equal([...first, ...second], unhealthy.slice(0, 8), "the second window goes on from the first");
  s.join("c");
  s.put("/g", 1, 1, () => sha("late"));
  s.run({ type: "NoteSilence", workerId: "c", silentMs: 9_000 });
  const third = cursor.next(s.state, 4);
  assert.equal(third, [...unhealthy.slice(8), sha("late")], "a piece unhealthy since is reached in turn");
  assert.equal(cursor.next(s.state, 4), unhealthy.slice(0, 4), "past the end, the next pass starts over");
});

Heal("passes - healing a window of pieces decides only for them, and windows in turn heal every piece", () => {
  const s = new Store();
  s.join("a", "b", "c");
  s.put("/f", 12, 2);
  s.lose("a");
  const cursor = new HealCursor();
  const lost = new Set(s.state.unhealthy);
  assert.ok(lost.size > 3, "a held several pieces");
  const window = cursor.next(s.state, 3);
  const decided = s.run({ type: "Reconcile", pieces: window });
  const orders = ofType(decided, "CopiesOrdered").flatMap((o) => o.pieces.map((p) => p.sha256));
  assert.equal(orders.sort(), [...window].sort(), "copies of the window's pieces only");
  s.copy(decided);
  for (let pass = 0; pass < 3 * lost.size && s.state.unhealthy.size > 0; pass++) s.copy(s.run({ type: "Reconcile", pieces: cursor.next(s.state, 3) }));
  assertWhole(s);
});

Heal("status - shows the worst PROBLEMS_SHOWN pieces in order, and counts them all", () => {
  const s = new Store();
  s.join("a", "b", "c");
  s.put("/f", PROBLEMS_SHOWN + 50, 2);
  s.lose("a");
  s.lose("b");
  const status = storeStatus(s.state, s.at);
  const all = [...s.state.content.values()].map((c) => pieceHealth(s.state, c, s.at));
  const severity = ["unavailable", "unplaceable", "under-replicated", "excess"];
  const worstFirst = all.sort((x, y) => severity.indexOf(x.problem!) - severity.indexOf(y.problem!) || (x.sha256 < y.sha256 ? -1 : 1));
  assert.ok(all.some((p) => p.problem === "unavailable") && all.some((p) => p.problem !== "unavailable"), "problems of two kinds");
  assert.is(status.pieces.unavailable, all.filter((p) => p.problem === "unavailable").length);
  assert.is(status.pieces.unavailable + status.pieces.underReplicated + status.pieces.unplaceable, PROBLEMS_SHOWN + 50, "every piece counted");
  assert.equal(status.problems, worstFirst.slice(0, PROBLEMS_SHOWN), "the worst first, each kind by SHA-256");
});

Heal("passes - drops owed go out at most DROP_EVENTS_PER_PASS events a pass", () => {
  const s = new Store();
  s.join("a");
  const count = (DROP_EVENTS_PER_PASS + 1) * PIECES_PER_EVENT;
  const files = 4; // a version has at most 10,000 pieces
  for (let f = 0; f < files; f++) {
    s.put(`/huge${f}`, count / files, 1);
    s.run({ type: "DeleteFile", path: `/huge${f}` });
  }
  const first = ofType(s.run({ type: "Reconcile" }), "PiecesDropped");
  assert.is(first.length, DROP_EVENTS_PER_PASS);
  const second = ofType(s.run({ type: "Reconcile" }), "PiecesDropped");
  assert.equal(second.map((d) => d.sha256s.length), [PIECES_PER_EVENT], "the rest in the next pass");
  assert.is(new Set([...first, ...second].flatMap((d) => d.sha256s)).size, count);
  assert.equal(s.run({ type: "Reconcile" }), []);
});

Heal("bytes held by the same workers share their collections, and a change to one piece's leaves the others' as they were", () => {
  const s = new Store();
  s.join("a", "b");
  s.put("/one", 1, 2);
  s.put("/two", 1, 2);
  const [one, two] = ["/one", "/two"].map((path) => s.state.content.get(sha(`${path}#0`))!);
  assert.ok(one!.holders === two!.holders && one!.wanted === two!.wanted, "one Set of holders and one Map of wanted replicas for both");
  const shared = two!.holders;
  assert.is(evolve(s.state, { type: "ReplicasLost", at: s.at, workerId: "a", sha256s: [one!.sha256], reason: "scrub" }), undefined);
  assert.equal([...one!.holders], ["b"]);
  assert.ok(two!.holders === shared, "the other piece keeps its Set");
  assert.equal([...shared], ["a", "b"], "and the Set was not changed in place");
});

Heal.run();
