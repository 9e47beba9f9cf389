/**
 * Unpack progress on a terminal: one line on stderr, rewritten in place (as `docker pull` shows
 * "Extracting"), and nothing at all when stderr is not a TTY, so logs and pipes stay clean.
 * @module
 */
import type { UnpackListener } from './layers.js';

/** A listener that draws `Unpacking 2 layers: 12.3MB / 45.6MB` on `stream` if it is a terminal. */
export function terminalProgress(stream: NodeJS.WriteStream = process.stderr): UnpackListener {
  if (!stream.isTTY) return {};
  let total = 0;
  let count = 0;
  let read = 0;
  let drawn = 0;
  const started = Date.now();
  const draw = (): void => {
    stream.write(`\r\x1b[KUnpacking ${count} layer${count === 1 ? '' : 's'}: ${megabytes(read)} / ${megabytes(total)}`);
    drawn = Date.now();
  };
  return {
    start(layers, bytes) {
      count = layers;
      total = bytes;
      draw();
    },
    read(bytes) {
      read += bytes;
      if (Date.now() - drawn >= 100) draw(); // ten times a second is smooth, and cheap
    },
    done() {
      read = total;
      draw();
      stream.write(` done in ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
    },
  };
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)}MB`;
}
