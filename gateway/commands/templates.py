"""`dcgw templates lint PATH...`: check templates before onboarding them.

Prints one line per problem and a summary line; exits 1 when any template is invalid.
"""

from __future__ import annotations

import argparse

from gateway.lint import LintReport, lint_paths


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("templates", help="work with Domain Connect templates")
    commands = parser.add_subparsers(dest="templates_command", metavar="COMMAND", required=True)
    lint = commands.add_parser("lint", help="validate template files or directories",
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    lint.add_argument("paths", nargs="+", metavar="PATH", help="template file or directory")
    lint.add_argument("--errors-only", action="store_true", help="do not print warnings")
    lint.set_defaults(func=run_lint)


def run_lint(args: argparse.Namespace) -> int:
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
