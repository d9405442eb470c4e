"""Write libdoc HTML for every keyword library in libraries/ and every resource in resources/ (``make docs``)."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

from robot.libdoc import LibraryDocumentation

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "results" / "docs"
# Libraries whose import needs an argument are documented with a placeholder for it.
PLACEHOLDERS = {
    "base_url": "http://api.example.net/api/v1",
    "admin_url": "http://kong.example.net:8001",
    "url": "http://127.0.0.1:9001/RPC2",
}


def main() -> int:
    sys.path.insert(0, str(ROOT / "libraries"))
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    for package in sorted((ROOT / "libraries").glob("*Library")):
        name = package.name
        written.append(_write(f"{name}{_import_arguments(name)}", OUT / f"{name}.html"))
    for resource in sorted((ROOT / "resources").glob("*.resource")):
        written.append(_write(str(resource), OUT / f"{resource.stem}.resource.html"))
    sys.stdout.write("\n".join(str(path.relative_to(ROOT)) for path in written) + "\n")
    return 0


def _import_arguments(name: str) -> str:
    module = __import__(name)
    library = getattr(module, name)
    required = [
        parameter.name
        for parameter in inspect.signature(library.__init__).parameters.values()
        if parameter.default is inspect.Parameter.empty and parameter.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    return "".join(f"::{argument}={PLACEHOLDERS[argument]}" for argument in required)


def _write(source: str, target: Path) -> Path:
    LibraryDocumentation(source).save(str(target), "HTML")
    return target


if __name__ == "__main__":
    sys.exit(main())
