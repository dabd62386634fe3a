import type { z } from "zod";

/**
 * The building blocks of the configuration schema (common/config.ts) that a role's own section, defined beside
 * the role, uses too: coercions from environment strings, listener addresses, TLS and keys. Handed over by the
 * composing schema, so that the role's file does not import the composition back.
 */
export interface SchemaParts {
  number(schema?: z.ZodNumber): z.ZodType<number>;
  /** Milliseconds, also written as a duration (`15s`, `1h30m`). */
  duration(schema?: z.ZodNumber): z.ZodType<number>;
  /** Bytes, also written as a size (`512MB`, `1GiB`). */
  bytes(schema?: z.ZodNumber): z.ZodType<number>;
  boolean(): z.ZodType<boolean>;
  list<T extends z.ZodType>(item: T): z.ZodType<z.output<T>[]>;
  listenAddress: z.ZodType<string>;
  serverTls: z.ZodType<ServerTlsSettings>;
  clientTls: z.ZodType<ClientTlsSettings>;
  key: z.ZodType<KeySettings>;
}

export interface ServerTlsSettings {
  enabled: boolean;
  cert_file?: string | undefined;
  key_file?: string | undefined;
  client_ca_file?: string | undefined;
  client_auth: "request" | "require";
}

export interface ClientTlsSettings {
  ca_file?: string | undefined;
  cert_file?: string | undefined;
  key_file?: string | undefined;
}

export interface KeySettings {
  id: string;
  algorithm: "ed25519" | "hmac-sha256";
  key?: string | undefined;
  file?: string | undefined;
}
