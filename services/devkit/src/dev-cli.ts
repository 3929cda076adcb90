/**
 * `stafett-dev`: the dev kit's own command, for a checkout of the repository. It is not part of
 * the shipped `stafett` command, which loads nothing from the dev kit.
 */
import { parseArgs } from "node:util";
import { chaosRun } from "./chaos-run.js";
import { demo } from "./demo.js";

export const DEV_USAGE = `stafett-dev <command>

  demo [--keep-running]                       the local handoff demo (npm start): two countries' brokers, each
                                              organisation in its own account, the design's scenarios through the services
  chaos                                       the long chaos run (npm run chaos): random SIGKILLs of hub, gateway
                                              and broker nodes; CHAOS_REFERRALS, CHAOS_RATE, CHAOS_SEED
`;

export interface DevIo {
  out(text: string): void;
  err(text: string): void;
}

export async function runDevCli(
  argv: string[],
  io: DevIo,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        "keep-running": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    io.err(`stafett-dev: ${err instanceof Error ? err.message : "bad arguments"}\n`);
    return 2;
  }
  const { values: v, positionals } = parsed;
  const command = positionals[0] ?? "";
  if (v.help === true || command === "" || command === "help") {
    io.out(DEV_USAGE);
    return 0;
  }
  if (command === "demo") {
    return demo(
      {
        keepRunning: v["keep-running"] === true,
      },
      (text) => io.out(text),
    );
  }
  if (command === "chaos") return chaosRun(env, (text) => io.out(text));
  io.err(`stafett-dev: unknown command "${command}"; see stafett-dev --help\n`);
  return 2;
}
