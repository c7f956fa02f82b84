// The retention policy: which committed versions that are no longer their path's newest are
// kept. Pure: the decider expires versions with it, and the fold checks every VersionExpired
// against it (at the event's own time), so a forged expiry is rejected like any other lie.
import type { VersionExpired } from "./events.js";
import type { FileState, State, VersionState } from "./state.js";

export interface RetentionPolicy {
  /** Keep each path's newest this many committed versions (the newest included). */
  keepVersions?: number;
  /** Keep a version this long (ms) after a newer one of its path was committed. */
  keepForMs?: number;
}

/** Every version is kept until it is deleted. */
export function keepsEverything(policy: RetentionPolicy): boolean {
  return policy.keepVersions === undefined && policy.keepForMs === undefined;
}

/** `keep the newest 3 versions`, `keep a version 1d after a newer one`, both, or `keep every version`. */
export function describePolicy(policy: RetentionPolicy): string {
  const rules: string[] = [];
  if (policy.keepVersions !== undefined) rules.push(`keep the newest ${policy.keepVersions} version${policy.keepVersions === 1 ? "" : "s"}`);
  if (policy.keepForMs !== undefined) rules.push(`keep a version ${duration(policy.keepForMs)} after a newer one`);
  return rules.length ? rules.join(" or ") : "keep every version";
}

function duration(ms: number): string {
  for (const [unit, size] of [["d", 86_400_000], ["h", 3_600_000], ["m", 60_000], ["s", 1_000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** A file's committed versions, newest first. */
function committedNewestFirst(file: FileState): VersionState[] {
  return [...file.versions.values()].filter((v) => v.status === "committed").sort((a, b) => b.version - a.version);
}

/** Whether the file has versions the policy may one day expire (more than one committed). */
export function hasOlderVersions(file: FileState): boolean {
  let committed = 0;
  for (const v of file.versions.values()) if (v.status === "committed" && ++committed > 1) return true;
  return false;
}

/** Why the policy removes `v` at time `at` (the rule), or undefined when it is kept. */
export function expiryRule(policy: RetentionPolicy, file: FileState, v: VersionState, at: number): string | undefined {
  if (keepsEverything(policy) || file.deleted || v.status !== "committed") return undefined;
  const committed = committedNewestFirst(file);
  const rank = committed.indexOf(v);
  if (rank < 1) return undefined; // the newest is never expired
  if (policy.keepVersions !== undefined && rank < policy.keepVersions) return undefined;
  const supersededAt = committed[rank - 1]!.committedAt ?? 0;
  if (policy.keepForMs !== undefined && at - supersededAt < policy.keepForMs) return undefined;
  return describePolicy(policy);
}

/** The versions the policy removes now, oldest first within each file. */
export function expiredVersions(state: State, at: number): VersionExpired[] {
  if (keepsEverything(state.retention)) return [];
  const events: VersionExpired[] = [];
  for (const fileId of [...state.versioned].sort()) {
    const file = state.files.get(fileId)!;
    for (const v of committedNewestFirst(file).reverse()) {
      const rule = expiryRule(state.retention, file, v, at);
      if (rule !== undefined) events.push({ type: "VersionExpired", at, fileId, path: file.path, version: v.version, rule });
    }
  }
  return events;
}
