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
      expect(Object.values(r.faults).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3);
      expect({
        sent: r.sent,
        received: r.received,
        delivered: r.delivered,
        accepted: r.accepted,
        lost: r.lost,
        duplicated: r.duplicated,
      }).toEqual({
        sent: 150,
        received: 150,
        delivered: 150,
        accepted: 150,
        lost: 0,
        duplicated: 0,
      });
    },
  );
});
