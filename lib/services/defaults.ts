/*
 * Defaults that entry points name in their help text. No imports: the CLI's help reads them without loading the
 * services themselves.
 */

/** Images restored at once. Each also runs `concurrency` blob transfers, so 4 × 4 transfers by default. */
export const DEFAULT_PARALLEL = 4;
