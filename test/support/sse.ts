/** A Server-Sent Events client for tests: what a case system's listener on GET /v1/events sees. */

export interface SseEvent {
  id: string;
  event: string;
  data: string;
}

export interface SseClient {
  events: SseEvent[];
  /** Resolves when the connection is closed (by either side). */
  closed: Promise<void>;
  close(): void;
}

/** Connects to `url` with the bearer token, resuming after `lastEventId` when given. */
export async function connectSse(
  url: string,
  token: string,
  lastEventId?: string,
): Promise<SseClient> {
  const abort = new AbortController();
  const res = await fetch(url, {
    headers: {
      authorization: `Bearer ${token}`,
      accept: "text/event-stream",
      ...(lastEventId === undefined ? {} : { "last-event-id": lastEventId }),
    },
    signal: abort.signal,
  });
  if (res.status !== 200 || res.body === null) throw new Error(`GET ${url} answered ${res.status}`);
  const events: SseEvent[] = [];
  const decoder = new TextDecoder();
  const reader = res.body.getReader();
  const closed = (async () => {
    let buffer = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const e: SseEvent = { id: "", event: "message", data: "" };
          let isEvent = false;
          for (const line of block.split("\n")) {
            const colon = line.indexOf(":");
            if (colon === 0) continue;
            const field = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "id") e.id = value;
            if (field === "event") e.event = value;
            if (field === "data") {
              e.data = e.data === "" ? value : `${e.data}\n${value}`;
              isEvent = true;
            }
          }
          if (isEvent) events.push(e);
        }
      }
    } catch {
      // Aborted or cut off: the stream is over.
    }
  })();
  return { events, closed, close: () => abort.abort() };
}
