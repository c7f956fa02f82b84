// How the CLI shows things to people: sizes, times, events as one line each.
import type { LoggedEvent } from "../src/log.js";
import type { FileInfo, ListEntry } from "../src/queries.js";
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

/** One line per event: sequence, time, type, then its fields (long lists summarised). */
export function formatEvent(entry: LoggedEvent): string {
  const head = `${String(entry.seq).padStart(6)}  ${time(entry.time.getTime())}`;
  if (!entry.event) return `${head}  (not an event on ${entry.subject}: ${entry.error})`;
  const { type, at: _at, ...fields } = entry.event as unknown as Record<string, unknown> & { type: string; at: number };
  const keys = Object.keys(fields).sort((a, b) => {
    const ia = SHOWN_FIRST.indexOf(a);
    const ib = SHOWN_FIRST.indexOf(b);
    return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib);
  });
  const parts = keys.map((k) => {
    const v = fields[k];
    if (Array.isArray(v)) return `${k}=[${v.length}]`;
    if (typeof v === "string" && /^[0-9a-f]{64}$/.test(v)) return `${k}=${v.slice(0, 12)}…`;
    return `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`;
  });
  return `${head}  ${type.padEnd(15)} ${parts.join(" ")}`;
}

/** The logged event as one JSON object. */
export function eventJson(entry: LoggedEvent): string {
  return JSON.stringify({ seq: entry.seq, subject: entry.subject, time: entry.time.toISOString(), event: entry.event ?? null, ...(entry.error ? { error: entry.error } : {}) });
}
