// `dfs up --tls`: a local certificate authority and a server certificate for 127.0.0.1 and
// localhost, made with the `openssl` command. Every process then connects over TLS and trusts
// only that CA.
import { execFile } from "node:child_process";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { DfsError, ErrorCodes } from "../src/errors.js";

/** The CA certificate clients trust, in the TLS folder. */
export const CA_FILE = "ca.pem";

export interface LocalTls {
  caFile: string;
  certFile: string;
  keyFile: string;
}

const run = promisify(execFile);

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run("openssl", args, { cwd });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") throw new DfsError(ErrorCodes.LOCAL_IO, "--tls needs the openssl command; install it with: sudo apt-get install -y openssl");
    throw new DfsError(ErrorCodes.LOCAL_IO, `openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim().split("\n")[0]}`, { cause: err });
  }
}

/** Make a fresh CA and a server certificate it signed, in `dir`. */
export async function makeLocalTls(dir: string): Promise<LocalTls> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await openssl(
    ["req", "-x509", ...ec, "-keyout", "ca-key.pem", "-out", CA_FILE, "-days", "3650", "-subj", "/CN=dfs local CA",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
    dir,
  );
  await openssl(["req", ...ec, "-keyout", "server-key.pem", "-out", "server.csr", "-subj", "/CN=localhost"], dir);
  await writeFile(
    join(dir, "server.ext"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(
    ["x509", "-req", "-in", "server.csr", "-CA", CA_FILE, "-CAkey", "ca-key.pem", "-CAcreateserial", "-out", "server.pem", "-days", "825", "-extfile", "server.ext"],
    dir,
  );
  return { caFile: join(dir, CA_FILE), certFile: join(dir, "server.pem"), keyFile: join(dir, "server-key.pem") };
}
