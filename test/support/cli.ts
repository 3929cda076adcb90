/**
 * The `stafett` command run in-process, as the tests run it: a captured terminal instead of the
 * process's, so a test reads what the command printed (stdout and stderr, in order).
 */
import { runCli } from "../../services/cli/src/cli.js";
import type { Io } from "../../services/cli/src/io.js";

export interface CapturedIo extends Io {
  /** Everything printed so far. */
  text(): string;
}

export function capturedIo(): CapturedIo {
  const out: string[] = [];
  return {
    out: (t) => void out.push(t),
    err: (t) => void out.push(t),
    usage: (t) => (out.push(t), 2),
    stdin: () => Promise.resolve(new Uint8Array()),
    stdoutBytes: () => undefined,
    text: () => out.join(""),
  };
}

/** Runs `stafett ARGS`: its exit code and everything it printed. */
export async function stafett(args: readonly string[]): Promise<{ code: number; text: string }> {
  const io = capturedIo();
  const code = await runCli([...args], io);
  return { code, text: io.text() };
}
