// What the benchmark learns about processes from Linux: peak memory (VmHWM in
// /proc/<pid>/status), the children of a process, and a command run as a user runs it, timed
// as a whole with its peak memory.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";

/** How often a running command's peak memory is read: the kernel keeps the peak, so only its last moments can be missed. */
const PEAK_POLL_MS = 20;
const MB = 1e6;

/** A process's peak resident memory so far (VmHWM), in MB (10^6 bytes); undefined once it is gone. */
export async function peakRssMb(pid: number): Promise<number | undefined> {
  return memoryLine(pid, "VmHWM");
}

/** A process's resident memory now (VmRSS), in MB. */
export async function rssMb(pid: number): Promise<number | undefined> {
  return memoryLine(pid, "VmRSS");
}

async function memoryLine(pid: number, field: "VmHWM" | "VmRSS"): Promise<number | undefined> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => undefined);
  const match = status && new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return match ? (Number(match[1]) * 1024) / MB : undefined;
}


export interface CommandRun {
  seconds: number;
  /** Peak resident memory of the command's process, MB. */
  peakRssMb: number;
  stdout: string;
}

/** Run a command to its end, timing the whole process; a non-zero exit is an error carrying its stderr. */
export async function runMeasured(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<CommandRun> {
  const started = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  let peak = 0;
  const poll = setInterval(() => {
    void peakRssMb(child.pid!).then((mb) => (peak = Math.max(peak, mb ?? 0)));
  }, PEAK_POLL_MS);
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve({ code, signal }));
  }).finally(() => clearInterval(poll));
  const seconds = (performance.now() - started) / 1000;
  if (exit.code !== 0) throw new Error(`${argv.slice(1).join(" ")} exited with ${exit.code ?? exit.signal}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`);
  return { seconds, peakRssMb: peak, stdout };
}
