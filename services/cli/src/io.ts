import type { StafettError } from "@stafett/shared";

/**
 * How the CLI prints every refusal, on stderr: `rejected: CODE (reason) at field: message`, then
 * one line per schema problem. The same words whatever refused (a check, a trust list, a file).
 */
export function printRefusal(io: Io, e: StafettError): void {
  io.err(
    `rejected: ${e.code} (${e.reason})${e.field === undefined ? "" : ` at ${e.field}`}: ${e.message}
`,
  );
  for (const issue of e.issues ?? [])
    io.err(`  ${issue.field}: ${issue.reason}
`);
}

/** The CLI's only way to talk to the terminal, so commands are testable in-process. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Prints a usage problem and returns the exit code 2. */
  usage(text: string): number;
  /** Binary standard input, when a command reads `-`. */
  stdin(): Promise<Uint8Array>;
  stdoutBytes(bytes: Uint8Array): void;
}

export function processIo(): Io {
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    usage(t) {
      process.stderr.write(`stafett: ${t}\n`);
      return 2;
    },
    async stdin() {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return new Uint8Array(Buffer.concat(chunks));
    },
    stdoutBytes: (b) => process.stdout.write(b),
  };
}
