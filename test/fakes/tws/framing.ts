/**
 * TWS wire framing (docs/tws-protocol.md, Framing and fields): the unframed "API\0" handshake, then messages of
 * int32 big-endian body length + fields each ending in \0, in both directions.
 */

export type Field = string | number | boolean | undefined | null;

/** Encodes one message. Booleans go out as 1/0 and unset values as "" (docs/tws-protocol.md, Framing and fields). */
export function encodeMessage(fields: readonly Field[]): Buffer {
  const text = `${fields.map(encodeField).join('\0')}\0`;
  const body = Buffer.from(text, 'utf8');
  const frame = Buffer.allocUnsafe(4 + body.length);
  frame.writeInt32BE(body.length, 0);
  body.copy(frame, 4);
  return frame;
}

function encodeField(value: Field): string {
  if (value === undefined || value === null) return '';
  if (value === true) return '1';
  if (value === false) return '0';
  return String(value);
}

export const MAX_BODY_LENGTH = 0xffffff;

export interface ClientHello {
  minVersion: number;
  maxVersion: number;
  /** Whatever followed the version range (connect options such as +PACEAPI). */
  options: string;
}

export class FramingError extends Error {
  readonly code = 'TWS_FRAMING';
}

/**
 * Reassembles what the client sends: the handshake first, then framed messages split into
 * fields. One TCP read may hold several messages or part of one.
 */
export class ClientStreamReader {
  private buffer: Buffer = Buffer.alloc(0);
  private helloDone = false;

  /** Feeds bytes; returns the hello (once) and every complete message. Throws FramingError. */
  push(chunk: Buffer): { hello?: ClientHello; messages: string[][] } {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    let hello: ClientHello | undefined;
    const messages: string[][] = [];
    if (!this.helloDone) {
      if (this.buffer.length < 8) return { messages };
      if (this.buffer.toString('latin1', 0, 4) !== 'API\0') {
        throw new FramingError('client did not start with "API\\0"');
      }
      const len = this.buffer.readInt32BE(4);
      if (len < 0 || len > MAX_BODY_LENGTH) throw new FramingError(`bad handshake length ${len}`);
      if (this.buffer.length < 8 + len) return { messages };
      const text = this.buffer.toString('utf8', 8, 8 + len);
      this.buffer = this.buffer.subarray(8 + len);
      const m = /^v(\d+)(?:\.\.(\d+))?(.*)$/s.exec(text);
      if (!m) throw new FramingError(`bad version string ${JSON.stringify(text)}`);
      const minVersion = Number(m[1]);
      hello = { minVersion, maxVersion: m[2] ? Number(m[2]) : minVersion, options: m[3].trim() };
      this.helloDone = true;
    }
    while (this.buffer.length >= 4) {
      const len = this.buffer.readInt32BE(0);
      if (len < 0 || len > MAX_BODY_LENGTH) throw new FramingError(`bad message length ${len}`);
      if (this.buffer.length < 4 + len) break;
      const body = this.buffer.toString('utf8', 4, 4 + len);
      this.buffer = this.buffer.subarray(4 + len);
      const fields = body.split('\0');
      // Every field ends with \0, so the split leaves one empty string at the end.
      if (fields[fields.length - 1] === '') fields.pop();
      messages.push(fields);
    }
    return { hello, messages };
  }
}
