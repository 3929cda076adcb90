import { beforeAll, describe, expect, it } from "vitest";
import { CompactSign } from "jose";
import { createCountry, type Country } from "@stafett/devkit/fixtures";
import { generateSigningKey, importSigningKey, SIGNING_ALG, type KeyPairJwk } from "./keys.js";
import { verifyPartnerList, verifyTrustList, type TrustList } from "./trust.js";

let seAnchor: KeyPairJwk;
let noAnchor: KeyPairJwk;
let se: Country;
let no: Country;

beforeAll(async () => {
  seAnchor = await generateSigningKey();
  noAnchor = await generateSigningKey();
  no = await createCountry({
    code: "no",
    municipalities: [],
    regions: [],
    anchor: noAnchor,
    partnerAnchors: [{ country: "se", anchors: [seAnchor.publicJwk] }],
  });
  se = await createCountry({
    code: "se",
    municipalities: ["0180"],
    anchor: seAnchor,
    partnerAnchors: [{ country: "no", anchors: [noAnchor.publicJwk] }],
  });
});

/** Signs `list` with `anchor` under a protected header of the caller's choosing. */
async function signWith(
  list: TrustList,
  anchor: KeyPairJwk,
  header: Record<string, unknown>,
): Promise<string> {
  const key = await importSigningKey(anchor.privateJwk);
  return new CompactSign(new TextEncoder().encode(JSON.stringify(list)))
    .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, ...header })
    .sign(key.key);
}

describe("verifyTrustList", () => {
  it("takes a list signed by the anchor with the trust list's header", async () => {
    const list = await verifyTrustList(se.trustListJws, [se.anchorPublic], "se");
    expect(list.issuer).toBe("se:coordinator");
  });

  it.each<[string, Record<string, unknown>, string]>([
    ["no typ", {}, "typ"],
    ["an event's typ", { typ: "stafett-event+jws" }, "typ"],
    ["another member", { typ: "stafett-trust+jws", cty: "json" }, "header_member"],
    ["a key URL", { typ: "stafett-trust+jws", jku: "https://example.invalid/" }, "header_member"],
  ])("refuses a list whose header has %s", async (_name, header, reason) => {
    const jws = await signWith(se.trustList, seAnchor, header);
    await expect(verifyTrustList(jws, [se.anchorPublic])).rejects.toMatchObject({
      code: "ERR_TRUST_LIST_INVALID",
      reason,
    });
  });

  it("refuses a list whose issuer is not its country's coordinator", async () => {
    const jws = await signWith({ ...se.trustList, issuer: "no:coordinator" }, seAnchor, {
      typ: "stafett-trust+jws",
    });
    await expect(verifyTrustList(jws, [se.anchorPublic])).rejects.toMatchObject({
      code: "ERR_TRUST_LIST_INVALID",
      reason: "issuer",
    });
  });

  it("refuses a list of another country where one country's list is expected", async () => {
    await expect(verifyTrustList(no.trustListJws, [no.anchorPublic], "se")).rejects.toMatchObject({
      code: "ERR_TRUST_LIST_INVALID",
      reason: "country",
    });
  });
});

describe("verifyPartnerList: partners only through the own list", () => {
  it("takes a partner's list signed by the anchor the own list gives for it", async () => {
    const list = await verifyPartnerList(no.trustListJws, se.trustList);
    expect(list.country).toBe("no");
  });

  it("refuses a partner list the own list does not name", async () => {
    const alone = { ...se.trustList, partners: [] };
    await expect(verifyPartnerList(no.trustListJws, alone)).rejects.toMatchObject({
      code: "ERR_TRUST_LIST_INVALID",
      reason: "not_partner",
    });
  });

  it("refuses a list claiming to be Sweden's, signed by Norway's anchor", async () => {
    // Norway's anchor signs a list that says it is Sweden's, with an extra municipality.
    const forged = await signWith({ ...se.trustList, version: 99 }, noAnchor, {
      typ: "stafett-trust+jws",
    });
    await expect(verifyPartnerList(forged, no.trustList)).rejects.toMatchObject({
      code: "ERR_TRUST_LIST_INVALID",
      reason: "unknown_anchor",
    });
    // And as a partner list at a Swedish reader, a list of Sweden itself is never a partner's.
    await expect(verifyPartnerList(forged, se.trustList)).rejects.toMatchObject({
      code: "ERR_TRUST_LIST_INVALID",
      reason: "not_partner",
    });
  });
});
