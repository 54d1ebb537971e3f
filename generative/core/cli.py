"""One command-line front end for every package: `PROG [COMMAND] [options] [key=value ...]`.

Common options: `--config PRESET` (a module of `<pkg>/configs/`), `--workdir DIR`,
`--seed N`, `--list-presets`, and any number of `key.sub=value` overrides (also written
`--key.sub value`), which always win over the preset. Wrong arguments, and config values that
the checks of `generative.core.config` (`COMMON_CHECKS`, the package's and the preset's
`CHECKS` / `CROSS_CHECKS`, and `command_checks` here) refuse, exit with status 2 and one line
before the command starts, never a traceback. Messages the library logs (`logging`, loggers
`generative.*` and the package's) are printed one line each: information on stdout, warnings
on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import pathlib
import sys
from collections.abc import Callable, Mapping, Sequence

from generative.core import config as config_lib
from generative.core.cpu_codegen import configure_cpu_codegen
from generative.core.host_memory import configure_host_memory

__all__ = ["make_main", "Command"]

Command = Callable[..., object]  # fn(config, workdir) -> optional summary


def _resolve(command: Command | str) -> Command:
    """A command, or "module:function" imported when it runs (keeps `--help` and
    `--list-presets` from importing the heavy packages)."""
    if callable(command):
        return command
    module, _, name = command.partition(":")
    return getattr(importlib.import_module(module), name)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, status 2
        sys.stderr.write(f"{self.prog}: error: {message} (see --help)\n")
        raise SystemExit(2)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


_OWN_OPTIONS = {"--config", "-c", "--workdir", "-w", "--seed", "--list-presets", "--help", "-h"}


def _options_as_overrides(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`--key value` / `--key=value` for a config key is the override `key=value`."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        name = a.split("=", 1)[0]
        if a.startswith("--") and name not in _OWN_OPTIONS:
            if "=" in a:
                out.append(a[2:])
            elif i + 1 < len(argv):
                out.append(f"{a[2:]}={argv[i + 1]}")
                i += 1
            else:
                parser.error(f"option {a} needs a value")
        else:
            out.append(a)
        i += 1
    return out


class _Below(logging.Filter):
    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < self.level


@contextlib.contextmanager
def _print_logs(prog: str, names: Sequence[str]):
    """While a command runs, records of the loggers `names` (INFO and above) are printed as
    `PROG: message` (first line only): below WARNING on stdout, from WARNING on stderr."""
    fmt = logging.Formatter(f"{prog}: %(message)s")
    out = logging.StreamHandler(sys.stdout)
    out.addFilter(_Below(logging.WARNING))
    err = logging.StreamHandler(sys.stderr)
    err.setLevel(logging.WARNING)
    for h in (out, err):
        h.setFormatter(fmt)
    loggers = [logging.getLogger(n) for n in names]
    saved = [(lg.level, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(out)
        lg.addHandler(err)
        lg.propagate = False  # printed once, not again by a root handler another library set
        if lg.getEffectiveLevel() > logging.INFO:
            lg.setLevel(logging.INFO)
    try:
        yield
    finally:
        for lg, (level, propagate) in zip(loggers, saved):
            lg.removeHandler(out)
            lg.removeHandler(err)
            lg.setLevel(level)
            lg.propagate = propagate


@contextlib.contextmanager
def _ignore_closed_loop_callbacks():
    """When orbax fails to read one array of a checkpoint, it closes its event loop while
    TensorStore still completes the reads of the others; their callbacks then raise
    "Event loop is closed" where nobody can catch it (an unraisable exception, printed as a
    traceback). Nothing is lost: the failure itself is reported. Silence only those."""
    previous = sys.unraisablehook

    def hook(unraisable):
        e = unraisable.exc_value
        if isinstance(e, RuntimeError) and str(e) == "Event loop is closed":
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def _missing_keys(config, keys: Sequence[str]) -> list[str]:
    out = []
    for key in keys:
        node = config
        for part in key.split("."):
            if not hasattr(node, "keys") or part not in node:
                out.append(key)
                break
            node = node[part]
    return out


def make_main(
    prog: str,
    commands: Mapping[str, Command | str],
    *,
    configs_package: str,
    default_command: str,
    default_presets: Mapping[str, str],
    description: str = "",
    command_checks: Mapping[str, Mapping[str, config_lib.Check]] | None = None,
) -> Callable[[Sequence[str] | None], int]:
    """Build `main(argv) -> exit code` for a console script.

    `commands` maps each command name to `fn(config, workdir)` or to "module:fn", imported
    only when that command runs. `default_presets` maps each command to the preset it runs
    when `--config` is absent. `command_checks` maps a command to {key: Check}: keys it
    reads, which the preset must have and the check accept (on top of the checks that
    `config.resolve` applies to every command).
    """
    command_checks = dict(command_checks or {})
    unknown = sorted(set(command_checks) - set(commands))
    if unknown:
        raise ValueError(f"command_checks for unknown commands: {', '.join(unknown)}")
    log_names = ("generative", configs_package.split(".")[0])

    def main(argv: Sequence[str] | None = None) -> int:
        try:
            configure_host_memory()  # before JAX starts its backend (see host_memory.py)
            configure_cpu_codegen()  # likewise (see cpu_codegen.py)
        except ValueError as e:
            print(f"{prog}: error: {e}", file=sys.stderr)
            return 2
        argv = list(sys.argv[1:] if argv is None else argv)
        parser = _Parser(prog=prog, description=description)
        parser.add_argument(
            "command",
            nargs="?",
            default=default_command,
            help=f"one of: {', '.join(commands)} (default: {default_command})",
        )
        parser.add_argument("--config", "-c", help="preset name (see --list-presets)")
        parser.add_argument(
            "--workdir", "-w", help="run folder (default: runs/PROG-COMMAND-PRESET)"
        )
        parser.add_argument("--seed", type=int, help="random seed (overrides the preset)")
        parser.add_argument("--list-presets", action="store_true", help="list the presets and exit")
        parser.add_argument(
            "overrides",
            nargs="*",
            metavar="key=value",
            help="config overrides, e.g. optimizer.lr=1e-3",
        )
        try:
            return _main(parser, argv)
        except SystemExit as e:  # argparse's --help and errors, in-process callers included
            return e.code if isinstance(e.code, int) else 2

    def _main(parser: _Parser, argv: list[str]) -> int:
        argv = _options_as_overrides(parser, argv)
        args = parser.parse_intermixed_args(argv)
        if "=" in args.command:  # the command was omitted and an override came first
            args.overrides.insert(0, args.command)
            args.command = default_command
        if args.list_presets:
            for name, doc in config_lib.list_presets(configs_package).items():
                print(f"{name:24s} {doc}")
            return 0
        if args.command not in commands:
            parser.error(f"unknown command '{args.command}'; valid commands: {', '.join(commands)}")
        preset = args.config or default_presets[args.command]
        try:
            config = config_lib.resolve(configs_package, preset, args.overrides, seed=args.seed)
        except config_lib.ConfigError as e:
            parser.error(_one_line(e))
        checks = command_checks.get(args.command, {})
        missing = _missing_keys(config, list(checks))
        if missing:
            parser.error(
                f"command '{args.command}' reads config key(s) {', '.join(missing)}, which "
                f"preset '{preset}' lacks; its default preset is '{default_presets[args.command]}'"
            )
        try:
            config_lib.check_config(config, checks)
        except config_lib.ConfigError as e:
            parser.error(_one_line(e))
        workdir = pathlib.Path(
            args.workdir or os.path.join("runs", f"{prog}-{args.command}-{preset}")
        )
        from generative.core.checkpoint import CheckpointError
        from generative.core.train import NonFiniteError

        try:
            with _print_logs(prog, log_names), _ignore_closed_loop_callbacks():
                _resolve(commands[args.command])(config, workdir)
        except (config_lib.ConfigError, CheckpointError, FileNotFoundError, ValueError) as e:
            sys.stderr.write(f"{prog}: error: {_one_line(e)}\n")
            return 2
        except NonFiniteError as e:
            sys.stderr.write(f"{prog}: error: {_one_line(e)}\n")
            return 1
        except KeyboardInterrupt:
            sys.stderr.write(f"{prog}: interrupted; resume with the same command\n")
            return 130
        print(f"results in {workdir.absolute()}")
        return 0

    return main
