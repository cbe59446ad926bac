/**
 * "Did you mean …?" for a mistyped command, subcommand or flag: the known name
 * nearest in edit distance (optimal string alignment: a swap of two neighbours
 * counts once), when it is near enough to be a typo, or the one name that
 * starts with what was typed.
 */

/** Insertions, deletions, substitutions and adjacent transpositions, each 1. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i += 1) {
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The known name the input most likely meant, or undefined when none is close. */
export function nearest(input: string, known: readonly string[]): string | undefined {
  const typed = input.toLowerCase();
  if (!typed || typed.length > 100) return undefined;
  // at most a third of the letters wrong (one for short names, never more than three)
  const limit = Math.min(3, Math.max(1, Math.floor(typed.length / 3)));
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(typed, name.toLowerCase());
    if (distance <= limit && (!best || distance < best.distance)) best = { name, distance };
  }
  if (best) return best.name;
  // an unambiguous beginning: "reg" for registration-tokens
  const starting = typed.length >= 3 ? known.filter((name) => name.toLowerCase().startsWith(typed)) : [];
  return starting.length === 1 ? starting[0] : undefined;
}

/** ": did you mean X?" or the pointer to --help, to end an "unknown …" message. */
export function suggestion(input: string, known: readonly string[], render: (name: string) => string, help: string): string {
  const near = nearest(input, known);
  return near === undefined ? ` (see ${help})` : `: did you mean ${render(near)}? (see ${help})`;
}
