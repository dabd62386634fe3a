import { readFileSync } from "node:fs";
import { Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { type ClickHouseClient, ClickHouseError, ClickHouseLogLevel, createClient } from "@clickhouse/client";
import { backoffDelay } from "../common/backoff.js";
import type { Logger } from "../common/log.js";
import { SeriesColumns } from "./rows.js";
import type { Dialect, Params } from "./sql.js";
import { StoreError } from "./values.js";

// The ClickHouse store's connection (storage/clickhouse.ts): one HTTP(S) client, transient failures retried with
// backoff, and the few ways Bifrost talks to the server (JSON rows, RowBinary columns, commands, inserts).

export interface ClickHouseConnectionOptions {
  url: string;
  username: string;
  password: string;
  database: string;
  tls?: { ca_file?: string; cert_file?: string; key_file?: string };
  /** Attempts for a transient failure before the error is returned (default 6). */
  attempts?: number;
  log?: Logger;
}

export const clickhouseDialect: Dialect = {
  placeholder: (index, type) => `{p${index}:${type}}`,
  label: (column, name) => `${column}[${name}]`,
  regexMatch: (subject, pattern) => `match(${subject}, ${pattern})`,
  contains: (subject, needle) => `position(${subject}, ${needle}) > 0`,
};

// Errors worth retrying: the server or network is briefly unable, not the request wrong.
const TRANSIENT_CODES = new Set(["159", "164", "202", "203", "209", "210", "241", "242", "252", "319", "425", "999"]);
const TRANSIENT_NETWORK =
  /ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|socket hang up|Timeout error|other side closed/i;

// Errors about the data of an insert: a value it cannot parse or hold, a constraint it breaks. Other
// permanent errors (a missing table, no permission) are about the server, and every row would fail alike.
const ROWS_REJECTED_CODES = new Set([
  "6", // CANNOT_PARSE_TEXT
  "26", // CANNOT_PARSE_QUOTED_STRING
  "27", // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  "38", // CANNOT_PARSE_DATE
  "41", // CANNOT_PARSE_DATETIME
  "53", // TYPE_MISMATCH
  "69", // ARGUMENT_OUT_OF_BOUND
  "70", // CANNOT_CONVERT_TYPE
  "72", // CANNOT_PARSE_NUMBER
  "117", // INCORRECT_DATA
  "131", // TOO_LARGE_STRING_SIZE
  "321", // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  "395", // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
  "469", // VIOLATED_CONSTRAINT
]);

function rejectsRows(err: unknown): boolean {
  return err instanceof ClickHouseError && ROWS_REJECTED_CODES.has(err.code);
}

function isTransient(err: unknown): boolean {
  if (err instanceof ClickHouseError) return TRANSIENT_CODES.has(err.code);
  const text = `${(err as Error)?.message ?? ""} ${(err as { code?: string })?.code ?? ""}`;
  return TRANSIENT_NETWORK.test(text);
}

/** Rows as one JSONEachRow body (a single chunk: the client's own insert() writes one per row). */
export function jsonEachRow(values: object[]): Uint8Array[] {
  return [Buffer.from(values.map((v) => JSON.stringify(v)).join("\n") + "\n")];
}

/** The production store's connection to ClickHouse 24.x or later through @clickhouse/client over HTTP(S). */
export class ClickHouseDatabase {
  private readonly client: ClickHouseClient;
  /** The database of Bifrost's tables, checked to be a plain identifier. */
  readonly name: string;
  private readonly attempts: number;

  constructor(private readonly options: ClickHouseConnectionOptions) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(options.database))
      throw new StoreError(`database name ${options.database} is not a plain identifier`);
    this.name = options.database;
    this.attempts = options.attempts ?? 6;
    const tls = options.tls;
    this.client = createClient({
      url: options.url,
      username: options.username,
      password: options.password,
      request_timeout: 120_000,
      compression: { request: false, response: true },
      log: { level: ClickHouseLogLevel.OFF },
      ...(tls?.ca_file
        ? {
            tls:
              tls.cert_file && tls.key_file
                ? {
                    ca_cert: readFileSync(tls.ca_file),
                    cert: readFileSync(tls.cert_file),
                    key: readFileSync(tls.key_file),
                  }
                : { ca_cert: readFileSync(tls.ca_file) },
          }
        : {}),
    });
  }

  async withRetry<T>(what: string, run: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (err) {
        if (!isTransient(err) || attempt >= this.attempts) {
          throw new StoreError(
            `ClickHouse ${what} failed${attempt > 1 ? ` after ${attempt} attempts` : ""}: ${(err as Error).message}`,
            {
              cause: err,
              transient: isTransient(err),
              rowsRejected: rejectsRows(err),
            },
          );
        }
        const delay = backoffDelay(attempt, 200, 10_000);
        this.options.log?.warn({ err, attempt, delay_ms: Math.round(delay) }, `ClickHouse ${what} failed, retrying`);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  async rows<T>(what: string, query: string, params: Params): Promise<T[]> {
    return this.withRetry(what, () => this.rowsOnce<T>(query, params));
  }

  async rowsOnce<T>(query: string, params: Params): Promise<T[]> {
    const result = await this.client.query({ query, query_params: params.named(), format: "JSONEachRow" });
    return result.json<T>();
  }

  /**
   * A query's rows, each a UInt64 fingerprint and `width` Float64 columns, as RowBinary (storage/rows.ts
   * SeriesColumns says why).
   */
  async seriesColumns(what: string, query: string, params: Params, width: number): Promise<SeriesColumns> {
    const body = await this.rowBinary(what, query, params);
    const rowBytes = 8 * (1 + width);
    if (body.length % rowBytes !== 0)
      throw new StoreError(`ClickHouse ${what} returned ${body.length} bytes, not rows of ${rowBytes}`);
    const rows = body.length / rowBytes;
    const data = new SeriesColumns(rows, width);
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    let low = 0;
    let high = 0;
    for (let row = 0, at = 0; row < rows; row++, at += rowBytes) {
      const l = view.getUint32(at, true);
      const h = view.getUint32(at + 4, true);
      if (row === 0 || l !== low || h !== high) {
        [low, high] = [l, h];
        data.startSeries(view.getBigUint64(at, true).toString(), row);
      }
      for (let c = 0; c < width; c++) data.columns[c]![row] = view.getFloat64(at + 8 * (1 + c), true);
    }
    return data;
  }

  /**
   * A query's answer as RowBinary. The server buffers the whole answer (wait_end_of_query), so an error that
   * strikes mid-query is an HTTP error and never trailing text in the binary body.
   */
  async rowBinary(what: string, query: string, params: Params): Promise<Buffer> {
    return this.withRetry(what, async () => {
      const result = await this.client.exec({
        query: `${query} FORMAT RowBinary`,
        query_params: params.named(),
        clickhouse_settings: { wait_end_of_query: 1 },
      });
      const chunks: Buffer[] = [];
      for await (const chunk of result.stream) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    });
  }

  /** The (batch, partition) pairs a replay check (`SELECT DISTINCT batch_id, ... AS part`) finds stored, as `batch\0part`. */
  async storedParts(check: string, params: Params): Promise<Set<string>> {
    return new Set(
      (await this.rowsOnce<{ batch_id: string; part: string }>(check, params)).map(
        (r) => `${r.batch_id}\u0000${r.part}`,
      ),
    );
  }

  async command(query: string): Promise<void> {
    await this.withRetry("DDL", () => this.client.command({ query }));
  }

  /**
   * One INSERT of `values` as a single JSONEachRow body. The client's own insert() writes one chunk per row,
   * which costs a quarter of the throughput on large batches; the body is encoded once here and reused by
   * every retry.
   */
  async insert(table: string, values: object[], token?: string): Promise<void> {
    if (values.length === 0) return;
    const body = jsonEachRow(values);
    await this.withRetry(`insert into ${table}`, () => this.insertOnce(table, "FORMAT JSONEachRow", body, token));
  }

  /** One INSERT whose data is `body`, chunk after chunk; `format` is the statement's tail. */
  async insertOnce(table: string, format: string, body: Uint8Array[], token?: string): Promise<void> {
    const result = await this.client.exec({
      query: `INSERT INTO ${this.name}.${table} ${format}`,
      values: Readable.from(body),
      clickhouse_settings: {
        date_time_input_format: "basic",
        ...(token === undefined ? {} : { insert_deduplication_token: token }),
      },
    });
    result.stream.resume();
    await finished(result.stream);
  }

  /** A mutation (ALTER or lightweight DELETE) that returns once applied on every replica. */
  async mutate(what: string, query: string, params: Params): Promise<void> {
    await this.withRetry(what, () =>
      this.client.command({
        query,
        query_params: params.named(),
        clickhouse_settings: { mutations_sync: "2" },
      }),
    );
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
