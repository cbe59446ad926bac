import { parseArgs } from 'node:util';
import type { ServiceError } from '../services/errors.js';
import { CliError, output, usageError, type Output } from './context.js';
import { suggestion } from './suggest.js';

/**
 * One table per command: its flags, its help text and its run. Parsing, --help,
 * --json, positional checks and usage errors (exit 2) come from here, so
 * adding a flag touches one table.
 */

export interface Flag {
  type: 'string' | 'boolean';
  /** repeatable */
  multiple?: boolean;
  /** the value's placeholder in help, e.g. "<uri>" */
  arg?: string;
  help: string;
}

export type Flags = Record<string, Flag>;
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

export interface RunContext {
  values: Values;
  /** the positional argument, when the usage names one (the first, when it names several) */
  arg: string;
  /** every positional argument, in the usage's order */
  args: string[];
  out: Output;
}

export interface Subcommand {
  /** the name, then its positionals, e.g. "show <client-id>"; each named positional must be given, and no other */
  usage: string;
  summary: string;
  /** what the positional is called in errors, e.g. "client id" (default: from the usage) */
  argName?: string;
  flags?: Flags;
  /** a paragraph after the options, in this subcommand's help and the command's */
  notes?: string;
  run(ctx: RunContext): Promise<void>;
}

export interface Command {
  name: string;
  /** other names that run the same command (kept for scripts written against them) */
  aliases?: string[];
  summary: string;
  /** a paragraph under the usage line */
  intro?: string;
  /** a command with one form has a single entry whose usage starts with the command's name */
  subcommands: Subcommand[];
  /** a paragraph after the options */
  notes?: string;
  /** the flag behind each input field, so errors name what the admin typed */
  fieldFlags?: Record<string, string>;
}

/** A service's refusal as one CLI line, naming flags rather than fields. */
function serviceFailure(err: ServiceError, fieldFlags: Record<string, string> = {}): CliError {
  if (!err.problems.length) return new CliError(err.message);
  return new CliError(err.problems.map((p) => `${fieldFlags[String(p.path[0])] ?? String(p.path[0] ?? 'input')}: ${p.message}${p.hint ? ` (${p.hint})` : ''}`).join('; '));
}

const nameOf = (s: Subcommand) => s.usage.split(' ')[0];
const positionalsOf = (s: Subcommand) => [...s.usage.split(' ').slice(1).join(' ').matchAll(/<([^>]+)>/g)].map((m) => m[1].replace(/-/g, ' '));
const single = (c: Command) => c.subcommands.length === 1 && nameOf(c.subcommands[0]) === c.name;

function flagLine(name: string, flag: Flag): string {
  const left = `  --${name}${flag.arg ? ` ${flag.arg}` : ''}`;
  const text = `${flag.help}${flag.multiple ? ' (repeatable)' : ''}`;
  return left.length < 26 ? `${left.padEnd(26)}${text}` : `${left}\n${' '.repeat(26)}${text}`;
}

/** The help text, naming the command as it was invoked. */
export function helpText(command: Command, invokedAs = command.name): string {
  const lines: string[] = [];
  if (single(command)) lines.push(`Usage: gatehouse ${invokedAs}${command.subcommands[0].usage.slice(command.name.length)} [--json]`, '');
  else lines.push(`Usage: gatehouse ${invokedAs} <command> [options]`, '');
  if (command.intro) lines.push(command.intro, '');
  if (!single(command)) {
    lines.push('Commands:');
    for (const s of command.subcommands) {
      lines.push(s.usage.length < 24 ? `  ${s.usage.padEnd(24)}${s.summary}` : `  ${s.usage}\n${' '.repeat(26)}${s.summary}`);
    }
    lines.push('');
  }
  const seen = new Set<string>();
  for (const s of command.subcommands) {
    const flags = Object.entries(s.flags ?? {}).filter(([name]) => !seen.has(name));
    if (!flags.length) continue;
    const shared = flags.length < Object.keys(s.flags ?? {}).length;
    const notHere = [...seen].filter((name) => !(name in (s.flags ?? {}))).map((name) => `--${name}`);
    const also = shared ? ` (and those above${notHere.length ? `, except ${notHere.join(', ')}` : ''})` : '';
    lines.push(single(command) ? 'Options:' : `Options for ${nameOf(s)}${also}:`);
    for (const [name, flag] of flags) {
      seen.add(name);
      lines.push(flagLine(name, flag));
    }
    lines.push('');
  }
  lines.push('  --json                  machine-readable output', '  --help                  this text', '');
  if (command.notes) lines.push(command.notes, '');
  for (const s of command.subcommands) if (s.notes && !single(command)) lines.push(s.notes, '');
  return lines.join('\n');
}

/** The help of one subcommand: its usage, what it does, and its flags only. */
export function subcommandHelpText(command: Command, sub: Subcommand, invokedAs = command.name): string {
  const flags = Object.entries(sub.flags ?? {});
  const lines = [`Usage: gatehouse ${invokedAs} ${sub.usage}${flags.length ? ' [options]' : ' [--json]'}`, '', `${sub.summary[0].toUpperCase()}${sub.summary.slice(1)}.`, ''];
  lines.push('Options:');
  for (const [name, flag] of flags) lines.push(flagLine(name, flag));
  lines.push('  --json                  machine-readable output', '  --help                  this text', '');
  if (sub.notes) lines.push(sub.notes, '');
  if (command.notes) lines.push(command.notes, '');
  lines.push(`See gatehouse ${invokedAs} --help for its other commands.`, '');
  return lines.join('\n');
}

const isHelp = (arg: string | undefined) => arg === undefined || arg === '--help' || arg === '-h' || arg === 'help';

/** Strict parsing: an unknown flag is a usage error. --json and --help are everywhere. */
function parse(args: string[], flags: Flags, helpFor: string): { values: Values; positionals: string[] } {
  const options = Object.fromEntries(Object.entries(flags).map(([name, f]) => [name, { type: f.type, multiple: f.multiple ?? false }]));
  try {
    return parseArgs({ args, options: { ...options, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    const unknown = e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /'(-[^']*)'/.exec(e.message)?.[1] : undefined;
    if (unknown !== undefined) {
      const typed = unknown.replace(/^--?/, '').split('=')[0];
      const known = [...Object.keys(flags), 'json', 'help'];
      throw usageError(`unknown option ${unknown}${suggestion(typed, known, (n) => `--${n}`, `gatehouse ${helpFor} --help`)}`);
    }
    throw usageError(e.message.split('. To specify')[0].split('\n')[0]);
  }
}

/** Runs `gatehouse <invokedAs> …args`. */
export async function runCommand(command: Command, invokedAs: string, args: string[]): Promise<void> {
  const help = () => void process.stdout.write(helpText(command, invokedAs));
  const [first, ...rest] = args;
  let sub: Subcommand | undefined;
  let subArgs: string[];
  if (single(command)) {
    [sub, subArgs] = [command.subcommands[0], args];
  } else {
    if (isHelp(first)) return help();
    sub = command.subcommands.find((s) => nameOf(s) === first);
    if (!sub) {
      const names = command.subcommands.map(nameOf);
      throw usageError(`unknown command: ${invokedAs} ${first}${suggestion(first, names, (n) => `${invokedAs} ${n}`, `gatehouse ${invokedAs} --help`)}`);
    }
    subArgs = rest;
  }
  const helpFor = single(command) ? invokedAs : `${invokedAs} ${nameOf(sub)}`;
  const { values, positionals } = parse(subArgs, sub.flags ?? {}, helpFor);
  if (values.help) return single(command) ? help() : void process.stdout.write(subcommandHelpText(command, sub, invokedAs));
  const named = positionalsOf(sub);
  if (named.length === 1 && positionals.length !== 1) throw usageError(`expected exactly one ${sub.argName ?? named[0]}`);
  if (named.length > 1 && positionals.length !== named.length) throw usageError(`expected ${named.join(', then ')}`);
  if (!named.length && positionals.length) throw usageError(`unexpected argument: ${positionals[0]}`);
  // loaded when a command runs: --help and usage errors load no service or storage
  const [{ withActor }, { ServiceError }] = await Promise.all([import('../services/audit.js'), import('../services/errors.js')]);
  try {
    // every change a command makes is the CLI's in the audit trail
    await withActor({ type: 'cli' }, () => sub.run({ values, arg: positionals[0], args: positionals, out: output(Boolean(values.json)) }));
  } catch (err) {
    throw err instanceof ServiceError ? serviceFailure(err, command.fieldFlags) : err;
  }
}

export { CliError };
