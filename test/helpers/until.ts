/** Resolves once cond() holds; rejects after ms, with what() (what was seen so far) in the message. */
export async function until(cond: () => boolean, ms = 5000, what: () => string = () => ''): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out' + (what() ? ': ' + what() : ''));
    await new Promise((r) => setTimeout(r, 10));
  }
}
