// The benchmark's result: one row per figure, each with its peer, the ratio and the target
// (issue 8), printed as an aligned table and written as JSON. Every row is declared up front,
// so a figure that could not be measured is still there, as `n/a` with the reason.

export type Target = { atLeast: number; text: string } | { below: number; text: string };

export interface RowSpec {
  id: string;
  what: string;
  unit: string;
  /** What the dfs figure is compared with, when anything. */
  peerWhat?: string;
  target?: Target;
}

export interface Row extends RowSpec {
  dfs: number | null;
  peer: number | null;
  /** dfs / peer. */
  ratio: number | null;
  /** Whether the target is reached; null without a target or a figure. */
  met: boolean | null;
  /** Why there is no dfs figure. */
  na?: string;
}

export class ResultTable {
  private readonly rows = new Map<string, Row>();

  constructor(specs: readonly RowSpec[]) {
    for (const spec of specs) this.rows.set(spec.id, { ...spec, dfs: null, peer: null, ratio: null, met: null, na: "not measured" });
  }

  private row(id: string): Row {
    const row = this.rows.get(id);
    if (!row) throw new Error(`no row ${id}`);
    return row;
  }

  /** The dfs figure, and its peer's when it has one; a row without a peer figure has no ratio. */
  set(id: string, dfs: number, peer?: number | null): void {
    const row = this.row(id);
    const ratio = peer ? dfs / peer : null;
    const target = row.target;
    const met = !target ? null : "below" in target ? dfs < target.below : ratio === null ? null : ratio >= target.atLeast;
    Object.assign(row, { dfs, peer: peer ?? null, ratio, met, na: undefined });
  }

  notMeasured(id: string, reason: string): void {
    Object.assign(this.row(id), { dfs: null, peer: null, ratio: null, met: null, na: reason });
  }

  /** Every row of a part that failed, or was left out, and has no figure yet. */
  notMeasuredAll(ids: readonly string[], reason: string): void {
    for (const id of ids) if (this.row(id).dfs === null) this.notMeasured(id, reason);
  }

  all(): Row[] {
    return [...this.rows.values()];
  }

  /** An aligned, markdown-compatible table. */
  format(): string {
    const header = ["what", "dfs", "peer", "ratio", "target", "met"];
    const lines = this.all().map((r) => [
      `${r.what} (${r.unit})`,
      r.dfs === null ? `n/a: ${r.na}` : figure(r.dfs),
      r.peer === null ? (r.peerWhat ? "n/a" : "-") : `${figure(r.peer)} ${r.peerWhat}`,
      r.ratio === null ? "-" : `${r.ratio.toFixed(2)}x`,
      r.target?.text ?? "-",
      r.met === null ? "-" : r.met ? "yes" : "no",
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
    const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 || i === 2 || i === 4 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
    return [line(header), `|${widths.map((w, i) => (i === 0 || i === 2 || i === 4 ? `-${"-".repeat(w)}-` : `-${"-".repeat(w)}:`)).join("|")}|`, ...lines.map(line)].join("\n");
  }
}

/** Three significant figures at most, whole numbers from 100 up. */
function figure(n: number): string {
  if (Math.abs(n) >= 100) return Math.round(n).toLocaleString("en-US");
  return Number(n.toPrecision(3)).toString();
}
