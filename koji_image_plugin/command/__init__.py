"""``koji-image``: the pipeline on one machine without a Koji hub (local mode), and the
release tools (uploads, drops, the weekly job). Exit status: 0 success, 1 the work
failed, 2 bad input (every problem, one line each, nothing created), 130 cancelled."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

from ..errors import (
    CancelledError,
    ConfigError,
    InputError,
    KojiImageError,
    RecordError,
    SpecError,
    listed,
    printable,
)
from .build import cmd_boot_test, cmd_build, cmd_config, cmd_validate
from .parser import parser
from .release import cmd_drop, cmd_weekly
from .upload import cmd_upload

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CANCELLED = 1, 2, 130
#: an error line is cut to this (its start names the field, its end the fix): a value
#: that was quoted whole (a 100 KB path the system named) does not flood the terminal
MAX_LINE = 500
#: a spec's path as each of its problem lines starts with it
MAX_SOURCE = 200

log = logging.getLogger("koji_image_plugin")


def _logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                           datefmt="%H:%M:%S"))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        # Oz's own chatter goes to logs/oz-ARCH.log; the terminal gets its warnings only.
        handler.addFilter(lambda r: not r.name.startswith("oz") or r.levelno >= logging.WARNING)
    logging.basicConfig(level=logging.DEBUG, handlers=[handler])


def _say(line: str, *, refusal: bool = True) -> None:
    """An error on stderr, every control character escaped. A refusal of bad input is
    one line (a file name with a newline stays in it) cut to MAX_LINE; a failure of
    the work keeps its own lines (a diagnosis, the files to read) whole."""
    for text in [line] if refusal else line.split("\n"):
        text = printable(text)
        if refusal and len(text) > MAX_LINE:
            text = f"{text[:MAX_LINE // 2]}...{text[-(MAX_LINE // 2 - 3):]}"
        print(text, file=sys.stderr)


def _run(args: argparse.Namespace, cancel: threading.Event) -> int:
    commands: dict[str, Callable[[], int]] = {
        "validate": lambda: cmd_validate(args),
        "build": lambda: cmd_build(args, cancel),
        "boot-test": lambda: cmd_boot_test(args, cancel),
        "upload": lambda: cmd_upload(args, cancel),
        "drop": lambda: cmd_drop(args),
        "weekly": lambda: cmd_weekly(args),
        "config": lambda: cmd_config(args),
    }
    return commands[args.command]()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _logging(args.verbose)
    cancel = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        cancel.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return _run(args, cancel)
    except SpecError as exc:
        source = exc.source if len(exc.source) <= MAX_SOURCE else (
            f"{exc.source[:MAX_SOURCE // 2]}...{exc.source[-MAX_SOURCE // 4:]}")
        for line in listed(exc.problems):
            _say(f"koji-image: {source}: {line}")
        return EXIT_BAD_INPUT
    except (InputError, ConfigError, RecordError) as exc:
        _say(f"koji-image: {exc}")
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, CancelledError):
        cancel.set()
        if args.command == "weekly":
            print("koji-image: cancelled; builds already submitted go on in Koji, and "
                  "the next run waits for them", file=sys.stderr)
        else:
            print("koji-image: cancelled; nothing was left behind", file=sys.stderr)
        return EXIT_CANCELLED
    except KojiImageError as exc:
        _say(f"koji-image: {exc}", refusal=False)
        return EXIT_FAILED
    except OSError as exc:
        if exc.errno == 28:
            print(f"koji-image: no space left on device: {exc.filename or ''}; free some "
                  "or choose another --workdir/--output", file=sys.stderr)
            return EXIT_FAILED
        raise

