"""The import rules of docs/ARCHITECTURE.md, checked by parsing the source (ast), not by convention.

The HTTP layer (`HTTP_LAYER` below, the same list as the document) is the only code that may
import FastAPI or Starlette, read `app.state`, or be imported for its routes; storage/ knows no
domain but the table models; only storage/ commits, rolls back or writes raw SQL; and nothing
holds mutable state at module level (the runtime owns it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from accounts.service import get_or_create_workspace
from services.runtime import build_runtime
from storage.db import write_session
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[1]
SKIP_DIRS = {".venv", "tests", "bench", "node_modules", ".git"}
# The HTTP layer: these modules, every `<domain>/routes.py` and everything under these folders.
HTTP_MODULES = {"api_server.py", "deps.py", "library/upload_body.py"}
HTTP_FOLDERS = ("api/", "pages/")
WEB_PACKAGES = {"fastapi", "starlette"}
SQL_BUILDERS = {"select", "text", "delete", "update", "insert", "func", "col"}
MUTABLE_CALLS = {
    "dict",
    "list",
    "set",
    "defaultdict",
    "OrderedDict",
    "deque",
    "Lock",
    "RLock",
    "WeakValueDictionary",
}


def source_files() -> Iterator[Path]:
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if not SKIP_DIRS.intersection(relative.parts):
            yield relative


def is_http(relative: Path) -> bool:
    name = relative.as_posix()
    return name in HTTP_MODULES or name.endswith("/routes.py") or name.startswith(HTTP_FOLDERS)


def module_name(relative: Path) -> str:
    parts = list(relative.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_http_module(name: str) -> bool:
    """Whether an imported module name (`pages.session`, `deps`) is part of the HTTP layer."""
    path = name.replace(".", "/")
    return (
        f"{path}.py" in HTTP_MODULES
        or path.endswith("/routes")
        or path in {"api", "pages"}
        or path.startswith(tuple(folder for folder in HTTP_FOLDERS))
    )


def tree(relative: Path) -> ast.Module:
    return ast.parse((ROOT / relative).read_text(), filename=str(relative))


def imports(module: ast.Module) -> Iterator[tuple[str, list[str], int]]:
    """(module, imported names, line) for every import, at any depth (TYPE_CHECKING ones included)."""
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, [alias.name for alias in node.names], node.lineno


def test_the_layout_is_what_the_rules_are_about() -> None:
    files = {f.as_posix() for f in source_files()}
    # If these move, the rules below would silently check nothing: update them and the document.
    for expected in ("services/runtime.py", "storage/db.py", "generation/service.py", "generation/runner.py"):
        assert expected in files
    assert {f for f in files if is_http(Path(f))} >= {"api_server.py", "deps.py", "library/routes.py"}
    assert not is_http(Path("generation/service.py"))
    assert is_http_module("pages.session") and is_http_module("deps") and is_http_module("library.routes")
    assert not is_http_module("library.service") and not is_http_module("services.runtime")


def test_only_the_http_layer_imports_fastapi_or_starlette() -> None:
    offenders = [
        f"{relative}:{line} imports {name}"
        for relative in source_files()
        if not is_http(relative)
        for name, _, line in imports(tree(relative))
        if name.split(".")[0] in WEB_PACKAGES
    ]
    assert offenders == []


def test_nothing_below_the_http_layer_imports_it() -> None:
    offenders = []
    for relative in source_files():
        if is_http(relative) or relative.name == "manage.py":
            continue
        for name, names, line in imports(tree(relative)):
            targets = [name, *(f"{name}.{n}" for n in names)]
            if any(is_http_module(t) for t in targets):
                offenders.append(f"{relative}:{line} imports {name} {names}")
    assert offenders == []


def test_storage_knows_only_storage_config_errors_and_the_table_models() -> None:
    project = {module_name(f).split(".")[0] for f in source_files()}
    offenders = []
    for relative in source_files():
        if relative.parts[0] != "storage":
            continue
        for name, _, line in imports(tree(relative)):
            top = name.split(".")[0]
            if top not in project or top in {"storage", "config", "errors"}:
                continue
            if relative.as_posix() == "storage/tables.py" and name.endswith(".models"):
                continue  # the one place that registers every table for migrations
            offenders.append(f"{relative}:{line} imports {name}")
    assert offenders == []


def test_only_storage_commits_rolls_back_or_builds_raw_sql() -> None:
    """One unit of work (storage.db.write_transaction); database-specific SQL in storage/ only."""
    offenders = []
    for relative in source_files():
        if relative.parts[0] == "storage":
            continue
        module = tree(relative)
        for node in ast.walk(module):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"commit", "rollback"}
            ):
                offenders.append(f"{relative}:{node.lineno} calls .{node.func.attr}()")
            if isinstance(node, ast.Constant) and str(node.value).lstrip().upper().startswith(
                ("BEGIN", "SQLITE_BEGIN")
            ):
                offenders.append(f"{relative}:{node.lineno} opens its own SQLite transaction")
        for name, names, line in imports(module):
            if name.split(".")[0] == "sqlalchemy" and "text" in names:
                offenders.append(f"{relative}:{line} writes raw SQL (sqlalchemy.text)")
    assert offenders == []


def test_no_route_runs_sql_itself() -> None:
    offenders = []
    for relative in source_files():
        if not is_http(relative):
            continue
        module = tree(relative)
        for name, names, line in imports(module):
            if name.split(".")[0] in {"sqlalchemy", "sqlmodel"} and SQL_BUILDERS.intersection(names):
                offenders.append(f"{relative}:{line} imports query builders {names}")
        for node in ast.walk(module):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"exec", "execute"}
            ):
                offenders.append(f"{relative}:{node.lineno} runs a query")
    assert offenders == []


def test_only_deps_and_the_app_factory_touch_app_state() -> None:
    offenders = []
    for relative in source_files():
        if relative.as_posix() in {"deps.py", "api_server.py"}:
            continue
        for node in ast.walk(tree(relative)):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            reads_state = node.attr == "state" and (
                (isinstance(owner, ast.Name) and owner.id == "app")
                or (isinstance(owner, ast.Attribute) and owner.attr == "app")
            )
            if reads_state or (node.attr == "app" and isinstance(owner, ast.Name) and owner.id == "request"):
                offenders.append(f"{relative}:{node.lineno} {ast.unparse(node)}")
    assert offenders == []


def _mutable(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.DictComp | ast.ListComp | ast.SetComp):
        return True
    if isinstance(value, ast.Call):
        func = value.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        return name in MUTABLE_CALLS
    return False


def module_level_state(module: ast.Module) -> list[str]:
    """Module-level names bound to a mutable container or a lock, other than UPPER_CASE tables."""
    found = []
    for node in module.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign):
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            name = target.id if isinstance(target, ast.Name) else ast.unparse(target)
            if _mutable(value) and not (name.isupper() or name.startswith("__")):
                found.append(f"{name} (line {node.lineno})")
    return found


def test_no_module_level_mutable_state_anywhere() -> None:
    offenders = [
        f"{relative}: {item}" for relative in source_files() for item in module_level_state(tree(relative))
    ]
    offenders += [
        f"{relative}:{node.lineno} uses `global`"
        for relative in source_files()
        for node in ast.walk(tree(relative))
        if isinstance(node, ast.Global)
    ]
    assert offenders == []


def test_the_similarity_module_holds_no_state_at_all() -> None:
    """Not even an UPPER_CASE table: every index lives in a `SimilarityCache` the runtime owns."""
    module = tree(Path("library/similarity.py"))
    bound = [
        ast.unparse(node)
        for node in module.body
        if isinstance(node, ast.Assign | ast.AnnAssign) and _mutable(node.value)
    ]
    assert bound == []


def test_the_checker_sees_module_state_when_there_is_some() -> None:
    sample = ast.parse("import threading\n_lock = threading.Lock()\n_cache: dict = {}\nTABLE = {1: 2}\n")
    assert module_level_state(sample) == ["_lock (line 2)", "_cache (line 3)"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.anyio
async def test_two_runtimes_in_one_process_have_their_own_similarity_caches(tmp_path: Path) -> None:
    """Built and started without FastAPI, on ONE database: a cache warmed in one is not the other's."""
    settings = make_settings(tmp_path / "data")
    first, second = build_runtime(settings), build_runtime(settings)
    assert first.similarity is not second.similarity
    await first.start()
    await second.start()
    try:
        with write_session(first.engine) as session:
            workspace_id = get_or_create_workspace(session, "alpha").id
        assert workspace_id is not None
        with first.session() as session:
            first.similarity.get_index(session, workspace_id)
            assert first.similarity.cached_size(session, workspace_id) == 0
        with second.session() as session:
            assert second.similarity.cached_size(session, workspace_id) is None
    finally:
        await first.stop()
        await second.stop()


def test_the_document_names_the_same_http_layer_and_every_folder() -> None:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    for name in [*HTTP_MODULES, *HTTP_FOLDERS, "<domain>/routes.py"]:
        assert f"`{name}`" in text, name
    folders = {f.parts[0] for f in source_files() if len(f.parts) > 1}
    for folder in folders:
        assert f"`{folder}/`" in text, folder
