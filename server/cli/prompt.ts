/**
 * Reading a password for `checkstand user create`: on a terminal without echo (raw mode, nothing
 * written back), otherwise the first line of standard input, so scripts can pipe it in without
 * putting it in the process list or the shell history as --password would.
 */
export async function readPassword(prompt: string, input: NodeJS.ReadStream = process.stdin, output: NodeJS.WriteStream = process.stderr): Promise<string> {
  if (!input.isTTY) return readFirstLine(input);
  // Raw before the prompt shows: whatever is typed once it is visible must not be echoed.
  input.setRawMode(true);
  output.write(prompt);
  return new Promise<string>((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      input.setRawMode(false);
      input.pause();
      input.off('data', onData);
      output.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new Error('cancelled'));
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else if (ch >= ' ') value += ch;
      }
    };
    input.resume();
    input.on('data', onData);
  });
}

async function readFirstLine(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += chunk.toString();
    const nl = text.search(/\r?\n/);
    if (nl >= 0) return text.slice(0, nl);
    if (text.length > 4096) break;
  }
  return text.replace(/\r?\n$/, '');
}
