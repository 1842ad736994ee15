/** A start-up refusal: ulvsd prints `ulvsd: <message>` on stderr and exits with `code`. */
export class DaemonError extends Error {
  constructor(message: string, readonly code: number) {
    super(message);
  }
}
