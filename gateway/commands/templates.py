"""`dcgw templates lint [--config FILE] [PATH...]`: check templates before onboarding them.

    dcgw templates lint [PATH...] [--config FILE] [--errors-only]
    dcgw templates sync SOURCE_DIR [--config FILE] [--allow FILE] [--yes]

Prints one line per problem and a summary line; exits 1 when any template is invalid,
2 when a PATH does not exist or is a directory without template files. Unknown template
and record keys are errors, with the key they most likely misspell. With --config (PATH
defaults to its `gateway.templates`), it also says, per template, which configured
backends cannot apply it and why (an extension they do not support), and which templates
no backend can apply at all: the template query answers 404 for those.
"""

from __future__ import annotations

import argparse
import sys

from gateway.commands.common import add_command, add_config_option, load_config_from

EXIT_INVALID = 2


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("templates", help="work with Domain Connect templates",
                                   description="Work with Domain Connect templates: check them before onboarding, and "
                                               "bring them in from the public Templates repository.")
    commands = parser.add_subparsers(dest="templates_command", metavar="COMMAND", required=True)
    lint = add_command(commands, "lint", __doc__, help="validate template files or directories")
    lint.add_argument("paths", nargs="*", metavar="PATH", help="template file or directory")
    lint.add_argument("--config", metavar="FILE", help="also check the templates against this gateway's backends")
    lint.add_argument("--errors-only", action="store_true", help="do not print warnings")
    lint.set_defaults(func=run_lint)

    sync = commands.add_parser(
        "sync", help="bring templates from a Templates repository checkout into gateway.templates",
        description=SYNC_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sync.add_argument("source", metavar="SOURCE_DIR", help="a checkout of the public Templates repository")
    add_config_option(sync)
    sync.add_argument("--allow", metavar="FILE", help="providerIds to bring in, one a line (# comments)")
    sync.add_argument("--yes", action="store_true", help="write the changes (without it, only show them)")
    sync.set_defaults(func=run_sync)


SYNC_DESCRIPTION = """\
Bring templates from a checkout of the public Templates repository into the directory
`gateway.templates` names. Only providers in the --allow list are touched (without it:
the providers found in SOURCE_DIR). Each template is linted; invalid ones are never
copied. Shows what would be added (+), changed (~) and removed (-); writes only with
--yes. Running gateways load the result on SIGHUP.

Exit status: 0 done (or nothing to do), 1 some templates were invalid and left out,
2 invalid input (config, paths).
"""


def run_sync(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway.infra.config import ConfigError
    from gateway.infra.template_sync import plan_sync, read_allowlist

    try:
        target = load_config_from(args).gateway.templates
    except ConfigError as exc:
        return _fail("sync", str(exc))
    source = Path(args.source)
    if target is None or not target.is_dir():
        return _fail("sync", f"gateway.templates: {target or 'not set'}: must name an existing directory")
    if not source.is_dir():
        return _fail("sync", f"SOURCE_DIR: {source}: not a directory")
    try:
        allowed = read_allowlist(Path(args.allow)) if args.allow else None
    except (OSError, UnicodeDecodeError) as exc:
        return _fail("sync", f"--allow: {args.allow}: cannot read: {getattr(exc, 'strerror', None) or exc}")
    plan = plan_sync(source, target, allowed)
    for line in plan.lines():
        print(line)
    if plan.is_empty:
        pass
    elif args.yes:
        plan.write()
        print(f"written to {target}; send SIGHUP to running gateways to load them")
    else:
        print("nothing written; pass --yes to write these changes")
    return 1 if plan.invalid else 0


def _fail(command: str, message: str) -> int:
    print(f"dcgw templates {command}: {message}", file=sys.stderr)
    return EXIT_INVALID


def run_lint(args: argparse.Namespace) -> int:
    from gateway.engine.lint import LintPathError, LintReport, check_lint_paths, lint_paths
    from gateway.infra.config import ConfigError, load_config

    config = None
    if getattr(args, "config", None):  # callers may build the arguments themselves
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            return _fail("lint", str(exc))
    paths = args.paths or ([config.gateway.templates] if config is not None and config.gateway.templates else [])
    if not paths:
        return _fail("lint", "name a PATH, or a --config whose gateway.templates is set")
    try:
        check_lint_paths(paths)
    except LintPathError as exc:
        return _fail("lint", str(exc))
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
            return _fail("lint", str(exc))
    print(report.summary())
    return 1 if report.invalid or report.files == 0 else 0


def print_backend_support(config, paths) -> None:
    """Per template: each configured backend that cannot apply it, and why."""
    from gateway.apply.extensions import applicable, gateway_extensions, refusal
    from gateway.engine.template import TemplateError, load_template
    from gateway.infra.registry import BackendRouter

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
