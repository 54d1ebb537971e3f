"""One command-line front end for every package: `PROG [COMMAND] [options] [key=value ...]`.

Common options: `--config PRESET` (a module of `<pkg>/configs/`), `--workdir DIR`,
`--seed N`, `--list-presets`, and any number of `key.sub=value` overrides (also written
`--key.sub value`), which always win over the preset. Wrong arguments exit with status 2 and
one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import sys
from collections.abc import Callable, Mapping, Sequence

from generative.core import config as config_lib
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


def make_main(
    prog: str,
    commands: Mapping[str, Command | str],
    *,
    configs_package: str,
    default_command: str,
    default_presets: Mapping[str, str],
    description: str = "",
) -> Callable[[Sequence[str] | None], int]:
    """Build `main(argv) -> exit code` for a console script.

    `commands` maps each command name to `fn(config, workdir)` or to "module:fn", imported
    only when that command runs. `default_presets` maps each command to the preset it runs
    when `--config` is absent.
    """

    def main(argv: Sequence[str] | None = None) -> int:
        try:
            configure_host_memory()  # before JAX starts its backend (see host_memory.py)
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
        workdir = pathlib.Path(
            args.workdir or os.path.join("runs", f"{prog}-{args.command}-{preset}")
        )
        from generative.core.checkpoint import CheckpointError
        from generative.core.train import NonFiniteError

        try:
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
