/**
 * A small seeded random number generator (sfc32), so that every fuzz case can be made again from
 * its seed and number alone: `npm run fuzz -- --seed S --only N` replays case N of run S.
 */

/** Mix a string into 32-bit seeds (the first four words of its xmur3-style hash). */
function seeds(text: string): [number, number, number, number] {
  let h = 1779033703 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 3432918353);
    h = (h << 13) | (h >>> 19);
  }
  const next = (): number => {
    h = Math.imul(h ^ (h >>> 16), 2246822507);
    h = Math.imul(h ^ (h >>> 13), 3266489909);
    return (h ^= h >>> 16) >>> 0;
  };
  return [next(), next(), next(), next()];
}

/** A deterministic stream of random choices. */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** The generator of case `index` of the run with seed `seed`: each case is independent of the others. */
  constructor(seed: number | string, index = 0) {
    [this.a, this.b, this.c, this.d] = seeds(`${seed}/${index}`);
    for (let i = 0; i < 12; i++) this.next();
  }

  /** A 32-bit unsigned integer. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.float() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  /** One element of `items`. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)]!;
  }

  /** One element of `items`, each with its weight. */
  weighted<T>(items: readonly (readonly [weight: number, item: T])[]): T {
    const total = items.reduce((sum, [w]) => sum + w, 0);
    let x = this.float() * total;
    for (const [w, item] of items) {
      if ((x -= w) < 0) return item;
    }
    return items.at(-1)![1];
  }

  /** `n` random bytes. */
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }
}
