"""`jbrain <command> [--flags]`: dispatch to the absl launchers of this folder
(the library, jbrain/, never imports them)."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "run": "experiments.run",
    "chat": "experiments.chat",
    "plot": "experiments.plot",
    "bench": "experiments.bench",
    "inspect": "experiments.inspect",
    "stress": "experiments.stress",
    "eval": "experiments.eval",
}
USAGE = "usage: jbrain {" + ",".join(COMMANDS) + "} [--flags]   (jbrain COMMAND --help for flags)"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    if len(argv) < 2 or argv[1] in ("-h", "--help", "help"):
        print(USAGE)
        sys.exit(0 if len(argv) >= 2 else 2)
    name = argv[1]
    if name not in COMMANDS:
        print(f"jbrain: error: unknown command {name!r}; {USAGE}", file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(COMMANDS[name])
    module.launch([f"jbrain {name}", *argv[2:]])


if __name__ == "__main__":
    main()
