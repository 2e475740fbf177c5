"""`dcgw templates lint [--config FILE] [PATH...]`: check templates before onboarding them.

Prints one line per problem and a summary line; exits 1 when any template is invalid.
With --config (PATH defaults to its `gateway.templates`), it also says, per template,
which configured backends cannot apply it and why (an extension they do not support),
and which templates no backend can apply at all: the template query answers 404 for those.
"""

from __future__ import annotations

import argparse
import sys

from gateway.config import Config, ConfigError, load_config
from gateway.extensions import applicable, gateway_extensions, refusal
from gateway.lint import LintReport, lint_paths
from gateway.registry import BackendRouter
from gateway.template import TemplateError, load_template

EXIT_INVALID = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("templates", help="work with Domain Connect templates")
    commands = parser.add_subparsers(dest="templates_command", metavar="COMMAND", required=True)
    lint = commands.add_parser("lint", help="validate template files or directories",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    lint.add_argument("paths", nargs="*", metavar="PATH", help="template file or directory")
    lint.add_argument("--config", metavar="FILE", help="also check the templates against this gateway's backends")
    lint.add_argument("--errors-only", action="store_true", help="do not print warnings")
    lint.set_defaults(func=run_lint)


def run_lint(args: argparse.Namespace) -> int:
    config = None
    if getattr(args, "config", None):  # callers may build the arguments themselves
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"dcgw templates lint: {exc}", file=sys.stderr)
            return EXIT_INVALID
    paths = args.paths or ([config.gateway.templates] if config is not None and config.gateway.templates else [])
    if not paths:
        print("dcgw templates lint: name a PATH, or a --config whose gateway.templates is set", file=sys.stderr)
        return EXIT_INVALID
    report = LintReport(problems=[])
    valid = []
    for path, problems in lint_paths(paths):
        report.files += 1
        if any(p.severity == "error" for p in problems):
            report.invalid += 1
        else:
            valid.append(path)
        report.problems.extend(problems)
        for problem in problems:
            if problem.severity == "error" or not args.errors_only:
                print(problem)
    if config is not None:
        try:
            print_backend_support(config, valid)
        except ConfigError as exc:
            print(f"dcgw templates lint: {exc}", file=sys.stderr)
            return EXIT_INVALID
    print(report.summary())
    return 1 if report.invalid or report.files == 0 else 0


def print_backend_support(config: Config, paths) -> None:
    """Per template: each configured backend that cannot apply it, and why."""
    router = BackendRouter.from_config(config)
    extensions = gateway_extensions(config)
    try:
        for path in paths:
            try:
                template = load_template(path)
            except TemplateError:
                continue  # reported above
            for backend in router.backends:
                problem = refusal(template, backend, extensions)
                if problem:
                    print(f"{path}: backend {backend.name!r} cannot apply it: {problem}")
            if router.backends and not any(applicable(template, b, extensions) for b in router.backends):
                print(f"{path}: no configured backend can apply it; the template query answers 404 for it")
    finally:
        router.close()
