import type { TenantOverrides } from "./config-sections.js";
import { type BatchLimits, ValidationError } from "../proto/validate.js";

// Per-tenant limits as Loki has them: defaults in `collector.limits` and `query.limits` (Loki's limits_config),
// and `overrides.<tenant>.<key>` (Loki's per-tenant runtime overrides) replacing any of them for one tenant. Each
// limit error names the limit, the tenant and the key that sets it for that tenant.

/** The keys a tenant's overrides may set, and the section of their defaults. */
export const TENANT_LIMIT_KEYS = {
  rate_entries_per_s: "collector.limits",
  burst_entries: "collector.limits",
  max_labels: "collector.limits",
  max_line_bytes: "collector.limits",
  max_query_series: "query.limits",
  max_query_length_hours: "query.limits",
  max_entries_limit_per_query: "query.limits",
  query_timeout_ms: "query.limits",
} as const;

export type TenantLimitKey = keyof typeof TENANT_LIMIT_KEYS;

/** The keys whose defaults are in `section`. */
type TenantLimitKeyOf<Section> = {
  [K in TenantLimitKey]: (typeof TENANT_LIMIT_KEYS)[K] extends Section ? K : never;
}[TenantLimitKey];

export type TenantLimitValues = Record<TenantLimitKey, number>;

/** A request over one of its tenant's limits; `status` is Loki's for it (429 for ingestion rate, 400 otherwise). */
export class TenantLimitError extends Error {
  override readonly name = "TenantLimitError";
  constructor(
    readonly status: 400 | 429,
    message: string,
  ) {
    super(message);
  }
}

export class TenantLimits {
  private readonly defaults: TenantLimitValues;
  private readonly overrides: TenantOverrides;

  constructor(config: {
    collector: { limits: Record<TenantLimitKeyOf<"collector.limits">, number> };
    query: { limits: Record<TenantLimitKeyOf<"query.limits">, number> };
    overrides: TenantOverrides;
  }) {
    const c = config.collector.limits;
    const q = config.query.limits;
    this.defaults = {
      rate_entries_per_s: c.rate_entries_per_s,
      burst_entries: c.burst_entries,
      max_labels: c.max_labels,
      max_line_bytes: c.max_line_bytes,
      max_query_series: q.max_query_series,
      max_query_length_hours: q.max_query_length_hours,
      max_entries_limit_per_query: q.max_entries_limit_per_query,
      query_timeout_ms: q.query_timeout_ms,
    };
    this.overrides = config.overrides;
  }

  /** One limit of a tenant. */
  get(tenant: string, key: TenantLimitKey): number {
    return this.overrides[tenant]?.[key] ?? this.defaults[key];
  }

  /** Every limit of a tenant. */
  of(tenant: string): TenantLimitValues {
    return { ...this.defaults, ...this.overrides[tenant] };
  }

  /** Where the tenant's value of `key` comes from, and where to change it for that tenant alone. */
  howToChange(tenant: string, key: TenantLimitKey): string {
    const override = `overrides.${tenant}.${key}`;
    return this.overrides[tenant]?.[key] !== undefined
      ? `set by ${override}; change it there`
      : `the default ${TENANT_LIMIT_KEYS[key]}.${key}; set ${override} to change it for this tenant`;
  }

  /** An error saying that `tenant` broke `key`, with `what` describing by how much. */
  error(tenant: string, key: TenantLimitKey, what: string, status: 400 | 429 = 400): TenantLimitError {
    return new TenantLimitError(
      status,
      `tenant ${tenant}: ${what} (limit ${key} = ${this.get(tenant, key)}, ${this.howToChange(tenant, key)})`,
    );
  }

  /** The ingest limits of a tenant: `base` with the tenant's label count and line size. */
  batchLimits(tenant: string, base: BatchLimits): BatchLimits {
    return { ...base, max_labels: this.get(tenant, "max_labels"), max_line_bytes: this.get(tenant, "max_line_bytes") };
  }

  /** A validation error's message, with the tenant and its key when a per-tenant limit was broken. */
  explain(tenant: string, err: ValidationError): string {
    const key = VALIDATION_KEYS[err.reason];
    return key === undefined ? err.message : this.error(tenant, key, err.message).message;
  }
}

const VALIDATION_KEYS: Partial<Record<ValidationError["reason"], TenantLimitKey>> = {
  too_many_labels: "max_labels",
  line_too_long: "max_line_bytes",
};
