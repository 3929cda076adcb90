/** A small client for the services' HTTP APIs, as a case system would call them. */
import type { LocalCountry } from "@stafett/devkit";

export interface ApiResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

export class Api {
  constructor(
    private readonly baseUrl: string,
    readonly token: string,
  ) {}

  static async for(country: LocalCountry, id: string, url: string): Promise<Api> {
    return new Api(url, await country.token(id));
  }

  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<ApiResponse<T>> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: (text.length > 0 ? JSON.parse(text) : undefined) as T,
      headers: res.headers,
    };
  }

  get<T = Record<string, unknown>>(path: string): Promise<ApiResponse<T>> {
    return this.call<T>("GET", path);
  }

  post<T = Record<string, unknown>>(
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<ApiResponse<T>> {
    return this.call<T>("POST", path, body ?? {}, headers);
  }
}

export interface TimelineView {
  referralId: string;
  status: string;
  holder?: string;
  timeline: { type: string; by: string; to?: string; code?: string; eventId: string }[];
}
