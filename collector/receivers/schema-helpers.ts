import type { z } from "zod";
import type { boolean, bytes, duration, list, number } from "../../common/config.js";

/** A TLS listener's settings, as collector.tls has them. */
export interface ListenerTls {
  enabled: boolean;
  cert_file?: string | undefined;
  key_file?: string | undefined;
  client_ca_file?: string | undefined;
  client_auth: "request" | "require";
}

/**
 * The pieces of common/config.ts's schema that the inputs' schemas (kept beside each input) are built from,
 * handed over by buildSchemas so that the configuration module imports the inputs' schemas and not the reverse.
 */
export interface SchemaHelpers {
  list: typeof list;
  number: typeof number;
  duration: typeof duration;
  bytes: typeof bytes;
  boolean: typeof boolean;
  labelName: z.ZodString;
  listenAddress: z.ZodString;
  serverTls: z.ZodType<ListenerTls>;
}
