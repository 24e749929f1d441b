"""The import rules of docs/architecture.md, held by reading the code (ast), per function and for
the kernel: no module reaching into layers it must not know, no file too long to read, settings
read in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/func.yaml"))
HTTP_MODULES = {"app.py", "func.py", "__init__.py"}     # and routes*.py / a routes/ package
FRAMEWORKS = ("flask", "werkzeug", "boto3", "botocore")
MAX_LINES = 400


def imports(path: Path) -> list[str]:
    """Absolute names of everything ``path`` imports (relative imports resolved), at any depth."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out += [base] + [f"{base}.{a.name}" for a in node.names]
    return out


def reads_environment(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.Attribute) and n.attr in ("environ", "getenv")
               and isinstance(n.value, ast.Name) and n.value.id == "os" for n in ast.walk(tree))


def py_files(folder: Path):
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def is_http_module(path: Path, package_dir: Path) -> bool:
    rel = path.relative_to(package_dir)
    return rel.name in HTTP_MODULES and len(rel.parts) == 1 or rel.parts[0].startswith("routes")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_a_function_stands_on_the_kernel_only(name):
    package = ROOT / "functions" / name / "function"
    wrong = []
    for path in py_files(package):
        rel = path.relative_to(ROOT)
        for imported in imports(path):
            if imported.startswith("lscloud.local"):
                wrong.append(f"{rel} imports {imported} (only `lscloud up` uses lscloud.local)")
            if imported.startswith("functions.") and not imported.startswith(f"functions.{name}."):
                wrong.append(f"{rel} imports {imported} (functions talk over HTTP and events)")
            if not is_http_module(path, package) and imported.split(".")[0] in FRAMEWORKS:
                wrong.append(f"{rel} imports {imported} (a domain module is plain Python)")
        if reads_environment(path):
            wrong.append(f"{rel} reads os.environ (settings come through lscloud.config)")
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            wrong.append(f"{rel} has {lines} lines (more than {MAX_LINES}: split it by what it holds)")
    assert not wrong, "\n".join(wrong)


def test_the_kernel_knows_no_function_and_only_local_knows_local():
    wrong = []
    for path in py_files(ROOT / "lscloud"):
        rel = path.relative_to(ROOT)
        # the command line is the local cloud's front: it may start and read it
        local = rel.parts[1] in ("local", "cli.py", "fuzz")
        for imported in imports(path):
            if imported.split(".")[0] == "functions":
                wrong.append(f"{rel} imports {imported}")
            if not local and imported.startswith("lscloud.local"):
                wrong.append(f"{rel} imports {imported} (what the cluster runs must not need lscloud.local)")
        if rel.as_posix() != "lscloud/config.py" and reads_environment(path):
            wrong.append(f"{rel} reads os.environ (only lscloud/config.py does)")
    for path in py_files(ROOT / "infra") + py_files(ROOT / "peers"):
        if reads_environment(path):
            wrong.append(f"{path.relative_to(ROOT)} reads os.environ (only lscloud/config.py does)")
    assert not wrong, "\n".join(wrong)
