import { describe, expect, it } from "vitest";
import { runChaos } from "@stafett/devkit";

describe("a short chaos run", () => {
  it(
    "kills hub, gateway and broker nodes at random while referrals flow: nothing lost, nothing doubled",
    { timeout: 240_000 },
    async () => {
      const lines: string[] = [];
      const r = await runChaos({
        referrals: 150,
        rate: 5,
        faultEveryMs: [3_000, 6_000],
        downMs: [300, 1_500],
        seed: 20261128,
        minFaults: 3,
        settleMs: 90_000,
        onProgress: (l) => lines.push(l),
      });
      // The run must have hurt: at least one fault of each kind was injected.
      expect(r.faults.hub, lines.join("\n")).toBeGreaterThanOrEqual(1);
      expect(r.faults.gateway, lines.join("\n")).toBeGreaterThanOrEqual(1);
      expect(r.faults.broker, lines.join("\n")).toBeGreaterThanOrEqual(1);
      // Nothing lost or doubled, and (the other half of "doubled") nothing refused anywhere.
      expect({
        sent: r.sent,
        received: r.received,
        delivered: r.delivered,
        accepted: r.accepted,
        lost: r.lost,
        duplicated: r.duplicated,
        quarantined: r.quarantined,
        replays: r.replays,
        rejected: r.rejected,
      }).toEqual({
        sent: 150,
        received: 150,
        delivered: 150,
        accepted: 150,
        lost: 0,
        duplicated: 0,
        quarantined: 0,
        replays: 0,
        rejected: 0,
      });
    },
  );
});
