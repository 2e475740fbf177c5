"""`dcgw templates lint PATH...`: check templates before onboarding them.

Prints one line per problem and a summary line; exits 1 when any template is invalid,
2 when a PATH does not exist or is a directory without template files. Unknown template
and record keys are errors, with the key they most likely misspell.
"""

from __future__ import annotations

import argparse
import sys

from gateway.commands.common import add_command

EXIT_INVALID = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("templates", help="work with Domain Connect templates",
                                   description="Work with Domain Connect templates: check them before onboarding.")
    commands = parser.add_subparsers(dest="templates_command", metavar="COMMAND", required=True)
    lint = add_command(commands, "lint", __doc__, help="validate template files or directories")
    lint.add_argument("paths", nargs="+", metavar="PATH", help="template file or directory")
    lint.add_argument("--errors-only", action="store_true", help="do not print warnings")
    lint.set_defaults(func=run_lint)


def run_lint(args: argparse.Namespace) -> int:
    from gateway.lint import LintPathError, LintReport, check_lint_paths, lint_paths

    try:
        check_lint_paths(args.paths)
    except LintPathError as exc:
        print(f"dcgw templates lint: {exc}", file=sys.stderr)
        return EXIT_INVALID
    report = LintReport(problems=[])
    for _path, problems in lint_paths(args.paths):
        report.files += 1
        if any(p.severity == "error" for p in problems):
            report.invalid += 1
        report.problems.extend(problems)
        for problem in problems:
            if problem.severity == "error" or not args.errors_only:
                print(problem)
    print(report.summary())
    return 1 if report.invalid or report.files == 0 else 0
