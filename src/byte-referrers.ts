// Which files referred to which piece bytes, as a reader folding the log tracks it beside its
// table: how `dfs tail --path` places the events that name only bytes (a copy ordered,
// stored or failed, copies lost, pieces dropped) under the paths they are about. The table
// counts references per piece hash but not whose they are, and it forgets bytes as soon as no
// live version needs them, while the drops that follow come later in the log: this index
// remembers. Pure: it reads the table, never changes it.
import type { DfsEvent } from "./events.js";
import { versionOf, type State } from "./state.js";

/** The SHA-256s an event about bytes names (none for any other event): what `BytesReferrers` places. */
export function bytesNamed(logged: Record<string, unknown>): string[] {
  const hashes: unknown[] = [];
  if ("sha256" in logged) hashes.push(logged.sha256);
  if (Array.isArray(logged.sha256s)) hashes.push(...logged.sha256s);
  // CopiesOrdered: one order per piece hash.
  if (Array.isArray(logged.pieces)) for (const order of logged.pieces) if (typeof order === "object" && order !== null) hashes.push((order as { sha256?: unknown }).sha256);
  return hashes.filter((h): h is string => typeof h === "string");
}

export class BytesReferrers {
  /**
   * Piece hash → file id → versions that planned those bytes, since the table last came to
   * know them: bytes forgotten (no live version left) and planned again start afresh, so a
   * later drop is not placed under a path that let go of them long before.
   */
  private readonly referrers = new Map<string, Map<string, Set<number>>>();

  /** Note an event the fold has just applied to `state` (not one it rejected). */
  observe(event: DfsEvent, state: State): void {
    // The plan comes in PiecesPlanned, or with a small version's FileCreated.
    if (event.type !== "PiecesPlanned" && event.type !== "FileCreated") return;
    const { pieces } = event;
    if (!pieces) return;
    const planned = new Map<string, number>();
    for (const p of pieces) planned.set(p.sha256, (planned.get(p.sha256) ?? 0) + 1);
    for (const [sha256, count] of planned) {
      // Every reference the table counts is this event's: the bytes are new to it.
      let files = state.content.get(sha256)?.refs === count ? undefined : this.referrers.get(sha256);
      if (!files) this.referrers.set(sha256, (files = new Map()));
      let versions = files.get(event.fileId);
      if (!versions) files.set(event.fileId, (versions = new Set()));
      versions.add(event.version);
    }
  }

  /**
   * The paths an event about these bytes is about: the files whose pending or committed
   * versions refer to them in the table, or, when none does any more (the bytes are being
   * dropped), the files that last did. Bytes shared by several files are about each.
   */
  pathsOf(sha256: string, state: State): string[] {
    const files = this.referrers.get(sha256);
    if (!files) return [];
    const referring = (fileId: string) =>
      [...files.get(fileId)!].some((version) => {
        const status = versionOf(state, fileId, version)?.status;
        return status === "pending" || status === "committed";
      });
    const live = [...files.keys()].filter(referring);
    return (live.length > 0 ? live : [...files.keys()]).flatMap((fileId) => state.files.get(fileId)?.path ?? []);
  }
}
