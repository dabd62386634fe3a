import type { TenantLimitError, TenantLimits } from "./limits.js";

/** A token bucket per key (a tenant, or one key for all): `rate` tokens per second, bursts up to `burst`. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  /** Takes `count` tokens, or returns the seconds until they would be there. */
  take(tenant: string, count: number): number {
    const now = Date.now();
    const bucket = this.buckets.get(tenant) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.rate);
    bucket.at = now;
    this.buckets.set(tenant, bucket);
    if (count <= bucket.tokens) {
      bucket.tokens -= count;
      return 0;
    }
    return Math.ceil((count - bucket.tokens) / this.rate);
  }
}

/**
 * RateLimiter with each tenant's own rate and burst (overrides.<tenant>.rate_entries_per_s and burst_entries);
 * a tenant whose rate is 0 is not limited.
 */
export class TenantRateLimiter {
  private readonly limiters = new Map<string, RateLimiter | null>();

  constructor(private readonly limits: TenantLimits) {}

  /** Takes `count` tokens of the tenant's bucket, or returns the seconds until they would be there. */
  take(tenant: string, count: number): number {
    let limiter = this.limiters.get(tenant);
    if (limiter === undefined) {
      const rate = this.limits.get(tenant, "rate_entries_per_s");
      limiter = rate > 0 ? new RateLimiter(rate, this.limits.get(tenant, "burst_entries") || rate * 10) : null;
      this.limiters.set(tenant, limiter);
    }
    return limiter?.take(tenant, count) ?? 0;
  }

  /** The 429 error for a tenant over its rate with `count` entries. */
  error(tenant: string, count: number): TenantLimitError {
    return this.limits.error(
      tenant,
      "rate_entries_per_s",
      `ingestion rate limit exceeded while attempting to ingest ${count} entries (burst ${this.limits.get(tenant, "burst_entries") || "ten seconds of the rate"}); retry later`,
      429,
    );
  }
}
