"""The packages import one way only (docs/architecture.md): a plugin sees only `backends`, the
engine sees no HTTP, database or config, and no package reaches up to the ones above it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Each package, and what it may import of the project's own packages (itself aside).
ALLOWED = {
    "backends": set(),
    "backends.testing": {"backends", "gateway.engine", "gateway.apply"},
    "gateway.engine": {"backends"},
    "gateway.infra": {"backends", "gateway.engine"},
    "gateway.state": {"backends", "gateway.infra"},
    "gateway.apply": {"backends", "gateway.engine", "gateway.infra", "gateway.state"},
    "gateway.web": {"backends", "gateway.engine", "gateway.infra", "gateway.state", "gateway.apply"},
}


def package_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "backends":
        return "backends.testing" if parts[1:2] == ["testing"] else "backends"
    return ".".join(parts[:2])


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in ("gateway", "backends")}


def modules():
    for path in sorted([*ROOT.glob("gateway/**/*.py"), *ROOT.glob("backends/**/*.py")]):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        if package_of(module) in ALLOWED:
            yield module, path


@pytest.mark.parametrize(("module", "path"), list(modules()), ids=lambda value: str(value))
def test_imports_point_down(module, path):
    package = package_of(module)
    wrong = sorted(name for name in imports(path)
                   if package_of(name) != package and package_of(name) not in ALLOWED[package])
    assert not wrong, f"{module} ({package}) imports {wrong}; allowed: {sorted(ALLOWED[package])}"


def test_every_package_is_covered():
    top = {package_of(module) for module, _ in modules()}
    assert top == set(ALLOWED)
    listed = {".".join(p.relative_to(ROOT).parts) for p in (ROOT / "gateway").iterdir()
              if p.is_dir() and (p / "__init__.py").exists()}
    # commands sit above everything; the rest must be placed in the table.
    assert listed - {"gateway.commands"} <= set(ALLOWED)
