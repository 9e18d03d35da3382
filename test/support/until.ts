/**
 * Resolves when `predicate` holds, checking after each macrotask; fails after `rounds` of them
 * (a condition waited on, never a sleep).
 * @example await until(() => received.length === 3, 'three messages');
 */
export async function until(predicate: () => boolean, what: string, rounds = 5000): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  throw new Error(`never: ${what}`);
}
