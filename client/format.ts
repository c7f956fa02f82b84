// How the CLI shows things to people: sizes, times, events as one line each.
import { describePolicy } from "../src/retention.js";
import type { FileInfo, ListEntry, Location } from "../src/queries.js";
import type { AuditEntry, VersionHistory } from "../src/replay.js";
import type { ScrubResult, StatusReport } from "./admin.js";
import type { WorkerReport } from "./client.js";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

export function humanBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${UNITS[unit]}`;
}

export { counted } from "../src/errors.js";

/** Parse `4096`, `64KiB`, `8MiB`, `1G`... into bytes. */
export function parseBytes(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)$/i.exec(text.trim());
  if (!match) throw new Error(`not a size: ${JSON.stringify(text)} (try 4096, 64KiB or 8MiB)`);
  const power = "bkmgt".indexOf((match[2] || "b").toLowerCase());
  return Math.round(Number(match[1]) * 1024 ** power);
}

function time(ms: number): string {
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function formatListing(files: ListEntry[]): string {
  if (files.length === 0) return "";
  const rows = files.map((f) => [humanBytes(f.size), `v${f.version}`, time(f.committedAt), f.path]);
  const widths = [0, 1].map((c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => `${r[0]!.padStart(widths[0]!)}  ${r[1]!.padEnd(widths[1]!)}  ${r[2]}  ${r[3]}`).join("\n");
}

export function formatStat(f: FileInfo): string {
  const lines = [
    `path      ${f.path}`,
    `file id   ${f.fileId}`,
    `version   ${f.version} (committed ${time(f.committedAt)})`,
    `size      ${f.size} bytes (${humanBytes(f.size)})`,
    `sha256    ${f.sha256}`,
    `pieces    ${f.pieces} of up to ${humanBytes(f.pieceSize)}, ${f.replicas} replica${f.replicas === 1 ? "" : "s"} each`,
    `versions  ${f.versionCount > f.versions.length ? `${f.versionCount - f.versions.length} older, then ` : ""}${f.versions.map((v) => `v${v.version} (${humanBytes(v.size)})`).join(", ")}`,
  ];
  return lines.join("\n");
}

export function formatWorkers(workers: WorkerReport[]): string {
  const rows = workers.map((w) => [
    w.workerId,
    w.live ? "live" : "lost",
    w.status ? `${w.status.pieces} piece${w.status.pieces === 1 ? "" : "s"}` : "no answer",
    w.status ? humanBytes(w.status.bytes) : "",
    w.status ? `${humanBytes(w.status.freeBytes)} free` : "",
    `${humanBytes(w.assignedBytes)} placed`,
  ]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c >= 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join("  ").trimEnd()).join("\n");
}

const SHOWN_FIRST = ["path", "fileId", "version", "workerId", "piece", "size"];

function isMap(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value);
}

/** ANSI colours of the event lines (`dfs tail` on a terminal): a few codes need no library. */
const ANSI = { red: "\x1b[31m", green: "\x1b[32m", yellow: "\x1b[33m", cyan: "\x1b[36m", reset: "\x1b[0m" } as const;
/** Things going away or failing in yellow, a version becoming visible in green, the rest in cyan. */
const TYPE_COLOURS: Partial<Record<string, keyof typeof ANSI>> = {
  FileCommitted: "green",
  FileDeleted: "yellow",
  UploadAbandoned: "yellow",
  WorkerLost: "yellow",
  PiecesDropped: "yellow",
  CopyFailed: "yellow",
  ReplicasLost: "yellow",
};

/** Whether to colour: `always`, `never`, or `auto` (a terminal, and no `NO_COLOR` set: see no-color.org). */
export function useColour(when: "auto" | "always" | "never", stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (when !== "auto") return when === "always";
  return stream.isTTY === true && !env.NO_COLOR;
}

function paint(text: string, colour: keyof typeof ANSI, on: boolean): string {
  return on ? `${ANSI[colour]}${text}${ANSI.reset}` : text;
}

/**
 * One line per event: sequence, time, type, then its fields (long lists summarised). An event
 * the fold rejected is shown as it was logged, as far as it decodes, then why it was rejected.
 * With `colour`, the type is coloured by what it means and a rejection is red.
 */
export function formatEvent(entry: AuditEntry, colour = false): string {
  const head = `${String(entry.seq).padStart(6)}  ${time(entry.time.getTime())}`;
  const logged = entry.event ?? entry.value;
  const rejection = paint(`rejected: ${entry.rejected}`, "red", colour);
  if (!isMap(logged)) return `${head}  (not an event on ${entry.subject})  ${rejection}`;
  const { type, at: _at, ...fields } = logged;
  const typeText = shortText(type, 40).padEnd(15);
  const line = `${head}  ${paint(typeText, entry.rejected === undefined ? (TYPE_COLOURS[String(type)] ?? "cyan") : "red", colour)} ${formatFields(fields)}`;
  return entry.rejected === undefined ? line : `${line}  ${rejection}`;
}

/** A value as short text on one line: a forged field may be anything. */
function shortText(value: unknown, max: number): string {
  const text = typeof value === "string" && !/[\u0000-\u001f\u007f-\u009f]/.test(value) ? value : (JSON.stringify(value, plainJson) ?? String(value));
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** JSON for anything CBOR decodes to (big integers included). */
function plainJson(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? String(value) : value;
}

function formatFields(fields: Record<string, unknown>): string {
  const keys = Object.keys(fields).sort((a, b) => {
    const ia = SHOWN_FIRST.indexOf(a);
    const ib = SHOWN_FIRST.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  });
  const parts = keys.map((k) => {
    const v = fields[k];
    if (Array.isArray(v)) return `${k}=${summariseList(v)}`;
    if (typeof v === "string" && /^[0-9a-f]{64}$/.test(v)) return `${k}=${v.slice(0, 12)}…`;
    return `${k}=${shortText(v, 200)}`;
  });
  return parts.join(" ");
}

/** Files named in an event's list at most (an UploadsAssigned names up to 256 uploads). */
const FILES_SHOWN = 3;

/**
 * A list as its length, and the files its entries belong to when they name them (the uploads
 * of an UploadsAssigned): `[16: f1, f2, f3, …]`, so a line says which files a decision touched.
 */
function summariseList(list: readonly unknown[]): string {
  const fileIds = list.map((item) => (isMap(item) && typeof item.fileId === "string" ? shortText(item.fileId, 64) : undefined));
  if (list.length === 0 || fileIds.includes(undefined)) return `[${list.length}]`;
  const shown = fileIds.slice(0, FILES_SHOWN).join(", ");
  return `[${list.length}: ${shown}${list.length > FILES_SHOWN ? ", …" : ""}]`;
}

/** The logged event as one JSON object: the event as decoded, and `rejected` with the reason when the fold rejected it. */
export function eventJson(entry: AuditEntry): string {
  const event = entry.event ?? (isMap(entry.value) ? entry.value : null);
  const json = { seq: entry.seq, subject: entry.subject, time: entry.time.toISOString(), event, ...(entry.rejected === undefined ? {} : { rejected: entry.rejected }) };
  return JSON.stringify(json, plainJson);
}

/** `dfs status`: the pieces' health, then one line per worker. */
export function formatStatus(s: StatusReport): string {
  const p = s.pieces;
  const lines = [
    `log       sequence ${s.lastSeq}${s.rejected ? `, ${s.rejected} rejected` : ""}`,
    `pieces    ${p.total} (${p.healthy} healthy${p.underReplicated ? `, ${p.underReplicated} under-replicated` : ""}${p.unplaceable ? `, ${p.unplaceable} unplaceable` : ""}${p.unavailable ? `, ${p.unavailable} UNAVAILABLE` : ""}${p.excess ? `, ${p.excess} with spare copies` : ""})`,
    `healing   ${s.copiesInFlight} cop${s.copiesInFlight === 1 ? "y" : "ies"} in flight, ${s.dropsOwed} drop${s.dropsOwed === 1 ? "" : "s"} owed, ${s.uploadsPending} upload${s.uploadsPending === 1 ? "" : "s"} open`,
    `retention ${describePolicy(s.retention)}`,
    "",
  ];
  const rows = s.workers.map((w) => [
    w.workerId,
    w.live ? "live" : "lost",
    `${w.pieces} piece${w.pieces === 1 ? "" : "s"}`,
    humanBytes(w.bytes),
    w.freeBytes === undefined ? "" : `${humanBytes(w.freeBytes)} free`,
    w.copying ? `${w.copying} copying` : "",
  ]);
  if (rows.length) {
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    lines.push(...rows.map((r) => r.map((cell, c) => (c >= 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join("  ").trimEnd()));
  }
  for (const h of s.problems) lines.push(`${h.problem!.padEnd(16)} ${h.sha256.slice(0, 12)}…  ${h.live} of ${h.wanted} live${h.copying ? `, ${h.copying} copying` : ""}`);
  return lines.join("\n");
}

export function formatScrub(r: ScrubResult): string {
  const bad = r.bad.length;
  return `checked ${r.checked} piece${r.checked === 1 ? "" : "s"} (${humanBytes(r.bytes)}): ${bad} bad, ${r.repaired} repaired${r.unrepaired.length ? `, ${r.unrepaired.length} NOT repaired` : ""}`;
}

/** `dfs history`: a line per version (file id, number, status, size, sha256), then its events. */
export function formatHistory(versions: VersionHistory[]): string {
  const lines: string[] = [];
  for (const v of versions) {
    // A stream not sealed has no size or sha256 yet (or ever, once given up): it says so instead.
    const content = v.sha256 ? `${humanBytes(v.size).padStart(9)}  sha256 ${v.sha256.slice(0, 12)}…` : "streamed, not sealed";
    lines.push(`${v.fileId}  v${v.version}  ${v.status.padEnd(9)}  ${content}${v.reason ? `  (${v.reason})` : ""}`);
    for (const e of v.events) lines.push(`    ${String(e.seq).padStart(6)}  ${time(Date.parse(e.time))}  ${e.type}`);
  }
  return lines.join("\n");
}

/** `dfs stat --pieces`: one line per piece, its offset, size, SHA-256 and the workers holding it (live first). */
export function formatLayout(where: Location): string {
  const rows = where.pieces.map((p) => [`#${p.index}`, `@${p.index * where.pieceSize}`, humanBytes(p.size), `${p.sha256.slice(0, 12)}…`, p.workers.join(",") || "(no copy)"]);
  if (rows.length === 0) return "layout    (no pieces: an empty file)";
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return ["layout", ...rows.map((r) => "  " + r.map((cell, c) => (c === 1 || c === 2 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join("  ").trimEnd())].join("\n");
}
