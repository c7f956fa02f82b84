// What the benchmark learns about processes from Linux: peak memory (VmHWM in
// /proc/<pid>/status), CPU time (/proc/<pid>/stat), and a command run as a user runs it,
// timed as a whole with its peak memory and its CPU time.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";

/** How often a running command's peak memory is read: the kernel keeps the peak, so only its last moments can be missed. */
const PEAK_POLL_MS = 20;
const MB = 1e6;
/** Clock ticks a second of /proc's CPU times (USER_HZ: 100 on Linux whatever the kernel's HZ). */
const TICKS_PER_SECOND = 100;

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

/** CPU time a process has used so far (user + system, all its threads), in seconds; undefined once it is gone. */
export async function cpuSeconds(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => undefined);
  if (!stat) return undefined;
  // Fields after the command's name, which is in parentheses and may hold spaces: utime and stime are the 12th and 13th.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

export interface CommandRun {
  seconds: number;
  /** Peak resident memory of the command's process, MB. */
  peakRssMb: number;
  /** CPU time of the command's process, seconds, as last read before it ended (read with its peak memory). */
  cpuSeconds: number;
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
  let cpu = 0;
  const poll = setInterval(() => {
    void peakRssMb(child.pid!).then((mb) => (peak = Math.max(peak, mb ?? 0)));
    void cpuSeconds(child.pid!).then((seconds) => (cpu = Math.max(cpu, seconds ?? 0)));
  }, PEAK_POLL_MS);
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => resolve({ code, signal }));
  }).finally(() => clearInterval(poll));
  const seconds = (performance.now() - started) / 1000;
  if (exit.code !== 0) throw new Error(`${argv.slice(1).join(" ")} exited with ${exit.code ?? exit.signal}: ${stderr.trim().split("\n").slice(-3).join(" | ")}`);
  return { seconds, peakRssMb: peak, cpuSeconds: cpu, stdout };
}
