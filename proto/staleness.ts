// Prometheus's staleness marker (model/value.StaleNaN): a sample whose value is the NaN with the bit pattern
// 0x7ff0000000000002, written when a scraped series disappears, so that queries stop returning the series from
// that sample on instead of for the lookback window. It travels as that double through every stage (batch
// protobuf, disk buffer, Kafka, both stores), which keep a double's bits; an ordinary NaN (0x7ff8000000000000,
// or Prometheus's 0x7ff8000000000001) is a value like any other.
//
// A signalling NaN may come back quieted (bit 51 set) from a JavaScript array of doubles, so the check ignores
// that bit: 0x7ff8000000000002 is a staleness marker too, and no ordinary NaN looks like either.

const QUIET_BIT = 0x00080000;
const MARKER_HIGH = 0x7ff00000;
const MARKER_LOW = 2;

// Big-endian, DataView's default: the sign, exponent and top of the mantissa in the first word.
const scratch = new DataView(new ArrayBuffer(8));
scratch.setUint32(0, MARKER_HIGH);
scratch.setUint32(4, MARKER_LOW);

export const STALE_NAN: number = scratch.getFloat64(0);

/** Whether a sample value is a staleness marker rather than a number (ordinary NaN included). */
export function isStaleMarker(value: number): boolean {
  if (value === value) return false;
  scratch.setFloat64(0, value);
  return (scratch.getUint32(0) & ~QUIET_BIT) >>> 0 === MARKER_HIGH && scratch.getUint32(4) === MARKER_LOW;
}
