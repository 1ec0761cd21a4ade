"""Print the project's internal import graph: one line per module, with the project modules it imports.

    python scripts/import_graph.py            # every module under app/ and training/
    python scripts/import_graph.py --check    # also fail if a layering rule is broken
    python scripts/import_graph.py --root /tmp/old-checkout   # another checkout, e.g. before a change

Reads the source with `ast` (nothing is imported or run), so it works without the
dependencies installed; used to show the graph before and after a restructuring.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("app", "training")
WEB_STACK = ("fastapi", "starlette", "uvicorn")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, absolute names only (the project uses no relative imports)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def graph(root: Path = ROOT) -> dict[str, tuple[set[str], set[str]]]:
    """module -> (project modules it imports, third-party top-level packages it imports)."""
    files = sorted(path for package in PACKAGES for path in (root / package).rglob("*.py"))
    modules = {module_name(path, root): path for path in files}
    result = {}
    for name, path in modules.items():
        imported = imports_of(path)
        internal = {target for target in imported if target in modules and target != name}
        external = {target.split(".")[0] for target in imported if target.split(".")[0] not in PACKAGES}
        result[name] = (internal, external)
    return result


def layering_problems(edges: dict[str, tuple[set[str], set[str]]]) -> list[str]:
    """The rules the layout promises: training never speaks HTTP; the app uses only the neutral core."""
    problems = []
    for name, (internal, external) in edges.items():
        if name.startswith("training") and external & set(WEB_STACK):
            problems.append(f"{name} imports {', '.join(sorted(external & set(WEB_STACK)))}")
        if name.startswith("app"):
            outside_core = sorted(
                target for target in internal if target.startswith("training.") and not _in_core(target)
            )
            if outside_core:
                problems.append(f"{name} imports training code outside training.core: {', '.join(outside_core)}")
    return problems


def _in_core(module: str) -> bool:
    return module == "training.core" or module.startswith("training.core.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if a layering rule is broken")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout to read (default: this one)")
    args = parser.parse_args()
    edges = graph(args.root.resolve())
    for name, (internal, _) in edges.items():
        print(f"{name:32} -> {', '.join(sorted(internal)) or '-'}")
    problems = layering_problems(edges)
    for problem in problems:
        print(f"layering: {problem}", file=sys.stderr)
    return 1 if args.check and problems else 0


if __name__ == "__main__":
    sys.exit(main())
