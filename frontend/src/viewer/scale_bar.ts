/** Scale bar: the longest 1/2/5 x 10^k length that fits in `maxPx` screen pixels. */

export interface ScaleBar {
  nm: number;
  px: number;
  label: string;
}

export function formatLength(nm: number): string {
  if (nm >= 1e6) return `${+(nm / 1e6).toPrecision(3)} mm`;
  if (nm >= 1e3) return `${+(nm / 1e3).toPrecision(3)} µm`;
  return `${+nm.toPrecision(3)} nm`;
}

export function scaleBar(pxPerNm: number, maxPx = 120): ScaleBar {
  if (!(pxPerNm > 0)) throw new RangeError(`pxPerNm must be positive, got ${pxPerNm}`);
  const maxNm = maxPx / pxPerNm;
  // 1e-9 guards against log10 landing just below an exact power of ten.
  const decade = 10 ** Math.floor(Math.log10(maxNm) + 1e-9);
  const nm = [5, 2, 1].map((m) => m * decade).find((v) => v <= maxNm * (1 + 1e-9)) ?? decade;
  return { nm, px: nm * pxPerNm, label: formatLength(nm) };
}
