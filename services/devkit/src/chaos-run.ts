/**
 * `stafett-dev chaos` (npm run chaos): the long chaos run (a few thousand referrals over a few
 * minutes, faults every few seconds). Prints progress and the final counts; exit code 1 if
 * anything was lost, doubled or refused, or a kind of fault never happened.
 */
import { runChaos } from "./chaos.js";

export async function chaosRun(
  env: Readonly<Record<string, string | undefined>>,
  out: (text: string) => void,
): Promise<number> {
  const referrals = Number(env.CHAOS_REFERRALS ?? 3_000);
  const rate = Number(env.CHAOS_RATE ?? 20);
  const seed = Number(env.CHAOS_SEED ?? Date.now() % 1_000_000);
  out(`chaos: ${referrals} referrals at ${rate}/s, faults every 4-10 s, seed ${seed}\n`);
  const r = await runChaos({
    referrals,
    rate,
    faultEveryMs: [4_000, 10_000],
    downMs: [500, 3_000],
    seed,
    settleMs: 180_000,
    onProgress: (line) => out(`  ${new Date().toISOString().slice(11, 19)} ${line}\n`),
  });
  out(
    `\nsent ${r.sent}, received ${r.received}, delivered ${r.delivered}, accepted ${r.accepted}, quarantined ${r.quarantined} (replays ${r.replays}), rejected ${r.rejected}, lost ${r.lost}, duplicated ${r.duplicated}\n` +
      `faults: hub ${r.faults.hub ?? 0}, gateway ${r.faults.gateway ?? 0}, broker ${r.faults.broker ?? 0}; ${r.seconds} s; seed ${r.seed}\n`,
  );
  // A doubled message shows as a replay refusal: nothing refused, too, or the run failed.
  return r.lost === 0 &&
    r.duplicated === 0 &&
    r.quarantined === 0 &&
    r.rejected === 0 &&
    r.sent === referrals &&
    Object.values(r.faults).every((n) => n > 0)
    ? 0
    : 1;
}
