/** Formatting of layer-diff results (pure). */

/** "0.93", or "—" where Dice is undefined (neither layer has the class). */
export function formatDice(dice: number | null | undefined): string {
  return dice === null || dice === undefined || !Number.isFinite(dice) ? "—" : dice.toFixed(2);
}

/** Colour band of a Dice value for the table: good ≥ 0.9, fair ≥ 0.7, else poor. */
export function diceClass(dice: number | null | undefined): "good" | "fair" | "poor" | "none" {
  if (dice === null || dice === undefined || !Number.isFinite(dice)) return "none";
  return dice >= 0.9 ? "good" : dice >= 0.7 ? "fair" : "poor";
}

/** The `n` slices with the most disagreeing voxels (ties: lower z first), leaving out slices that agree. */
export function worstSlices(slices: readonly { z: number; disagree: number }[], n: number): { z: number; disagree: number }[] {
  return slices
    .filter((s) => s.disagree > 0)
    .sort((a, b) => b.disagree - a.disagree || a.z - b.z)
    .slice(0, n);
}

/** Voxel counts for a narrow table: 952, 17.4k, 2.3M. */
export function formatCount(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1e6) return `${(n / 1e3).toFixed(n < 1e5 ? 1 : 0)}k`;
  return `${(n / 1e6).toFixed(n < 1e7 ? 1 : 0)}M`;
}
