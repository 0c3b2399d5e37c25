"""`model` console script: one subcommand per capability, each module imported lazily.

TensorFlow takes seconds to import; `model --help` and the loader must not pay for it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help)
COMMANDS = {
    "convert": ("model_tools.convert", "Keras .keras/.h5 -> versioned SavedModel for TF Serving"),
    "inspect": ("model_tools.inspection", "print a SavedModel's signatures and chart values"),
    "serve": ("model_tools.serve", "TF-Serving-compatible development model server (gRPC + REST)"),
    "train": ("model_tools.train", "train the demo classifier from a directory of class folders"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="model", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    modules = {}
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        modules[name] = module
        module.add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args, extra = parser.parse_known_args(argv)
    if extra and args.command != "serve":  # serve accepts (and logs) unknown TF Serving flags
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "serve":
        return modules["serve"].run(args, extra)
    return modules[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
