/**
 * schemas/asyncapi.yaml describes every channel of the subject scheme (docs/contract.md,
 * "Subjects, streams, consumers") and passes the AsyncAPI parser without errors.
 */
import { readFileSync } from "node:fs";
import { DiagnosticSeverity, Parser, type AsyncAPIDocumentInterface } from "@asyncapi/parser";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { beforeAll, describe, expect, it } from "vitest";
import { EVENT_TYPES, asyncApiFile, createAjv, eventSchemaId, example } from "./contract-files.js";

const EVENT_CHANNELS = {
  hub: "stafett.{cc}.{region}.hub.{event}",
  municipality: "stafett.{cc}.{region}.{code}.{event}",
  liaisonOutbound: "stafett.{cc}.out.{destCc}.{event}",
  liaisonInbound: "stafett.{cc}.in.{fromCc}.{event}",
  coordinator: "stafett.{cc}.national.coordinator.{event}",
} as const;
const QUARANTINE_ADDRESS = "stafett-quarantine.{cc}.{consumer}.{code}";

// ajv-formats is CommonJS with a default export.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

let document: AsyncAPIDocumentInterface;

/** The members of a schema object (a boolean or missing schema has none). */
function fields(schema: unknown): Record<string, unknown> {
  return typeof schema === "object" && schema !== null ? (schema as Record<string, unknown>) : {};
}

beforeAll(async () => {
  // The payloads $ref the event schemas by relative path, so the parser needs the file's location
  // to resolve them (the AsyncAPI CLI passes it the same way).
  const { document: parsed, diagnostics } = await new Parser().parse(
    readFileSync(asyncApiFile, "utf8"),
    {
      source: asyncApiFile,
    },
  );
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  expect(errors.map((d) => `${d.code} at ${d.path.join("/")}: ${d.message}`)).toEqual([]);
  if (parsed === undefined) throw new Error("the AsyncAPI document did not parse");
  document = parsed;
});

describe("asyncapi.yaml", () => {
  it("is AsyncAPI 3.0.0 with no error-severity diagnostics", () => {
    expect(document.version()).toBe("3.0.0");
  });

  it("has every channel of the subject scheme, with a parameter for every placeholder", () => {
    const channels = new Map(
      document
        .channels()
        .all()
        .map((c) => [c.address(), c]),
    );
    for (const address of [...Object.values(EVENT_CHANNELS), QUARANTINE_ADDRESS]) {
      const channel = channels.get(address);
      expect(channel, address).toBeDefined();
      const placeholders = [...address.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
      expect(
        channel
          ?.parameters()
          .all()
          .map((p) => p.id())
          .sort(),
        address,
      ).toEqual(placeholders.sort());
    }
  });

  it("has every event type as a message with the canonical JSON payload and CloudEvents headers", () => {
    const messages = new Map(
      document
        .components()
        .messages()
        .all()
        .map((m) => [m.id(), m]),
    );
    for (const type of EVENT_TYPES) {
      const message = messages.get(type);
      expect(message, type).toBeDefined();
      expect(message?.contentType()).toBe("application/x-protobuf");
      const payload = fields(message?.payload()?.json());
      expect(payload.$id, type).toBe(eventSchemaId(type));
      const headers = JSON.stringify(message?.headers()?.json() ?? {});
      for (const header of [
        "Nats-Msg-Id",
        "ce-id",
        "ce-type",
        "ce-source",
        "ce-specversion",
        "ce-time",
        "ce-dataschema",
        "Content-Type",
      ]) {
        expect(headers, `${type} header ${header}`).toContain(`"${header}"`);
      }
    }
  });

  it("lets every event channel carry every event type and names them in its {event} parameter", () => {
    for (const address of Object.values(EVENT_CHANNELS)) {
      const channel = document
        .channels()
        .all()
        .find((c) => c.address() === address);
      expect(
        channel
          ?.messages()
          .all()
          .map((m) => m.id())
          .sort(),
        address,
      ).toEqual([...EVENT_TYPES].sort());
      const event = channel
        ?.parameters()
        .all()
        .find((p) => p.id() === "event");
      expect(event?.schema()?.enum()?.map(String).sort(), address).toEqual([...EVENT_TYPES].sort());
    }
  });

  it("documents the reject headers of the quarantine channel", () => {
    const channel = document
      .channels()
      .all()
      .find((c) => c.address() === QUARANTINE_ADDRESS);
    const headers = fields(channel?.messages().all()[0]?.headers()?.json());
    expect(headers.required).toEqual(
      expect.arrayContaining(["Stafett-Reject-Code", "Stafett-Reject-Reason"]),
    );
  });

  it("says who sends and who receives on every channel", () => {
    for (const channel of document.channels().all()) {
      const actions = channel
        .operations()
        .all()
        .map((o) => o.action());
      expect(actions, channel.address() ?? channel.id()).toEqual(
        expect.arrayContaining(["send", "receive"]),
      );
    }
  });

  it("has examples that satisfy the event schemas", () => {
    const ajv = createAjv();
    for (const type of EVENT_TYPES) {
      const message = document
        .components()
        .messages()
        .all()
        .find((m) => m.id() === type);
      const examples = message?.examples().all() ?? [];
      expect(examples.length, type).toBeGreaterThan(0);
      for (const ex of examples) {
        const payload: unknown = ex.payload();
        expect(payload, type).toEqual(example(type));
        expect(ajv.getSchema(eventSchemaId(type))?.(payload), type).toBe(true);
        const headers = ex.headers();
        const e = example(type);
        expect(headers, type).toEqual({
          "Nats-Msg-Id": e.id,
          "ce-id": e.id,
          "ce-type": `eu.stafett.referral.${type}.v1`,
          "ce-source": e.source,
          "ce-specversion": "1.0",
          "ce-time": e.time,
          "ce-dataschema": e.dataschema,
          "ce-datacontenttype": "application/protobuf",
          "Content-Type": "application/protobuf; messageType=stafett.v1.SignedEvent",
        });
        // The parser annotates the dereferenced header schema (x-parser-*), so not strict here.
        const headerSchema = message?.headers()?.json();
        const validHeaders = new Ajv2020({ strict: false, allErrors: true });
        addFormats(validHeaders);
        expect(validHeaders.validate(headerSchema ?? false, headers), type).toBe(true);
        const otherType = { ...(headers ?? {}), "ce-type": "eu.stafett.referral.moved.v1" };
        expect(validHeaders.validate(headerSchema ?? false, otherType), type).toBe(false);
      }
    }
  });
});
