"""The error tree drawn in ``p402/errors.py`` is the real one, and each boundary maps it once.

As httpx pins its exported names, this pins every ``P402Error`` subclass: where it lives, its
parent, its HTTP status and its stable code. A new error class, a moved one or a changed code
fails here until the drawing says so too.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import p402
from p402 import errors
from p402.errors import P402Error
from p402.serve.errors import install

PACKAGE = Path(p402.__file__).parent
_NODE = re.compile(
    r"^(?P<indent>[│ ]*)(?:[├└]── )?(?P<name>\w+)(?: \((?P<home>[\w.]+)\))?\s+"
    r"(?P<status>\d{3}) (?P<code>\w+)$"
)


def _drawn() -> dict[str, tuple[str | None, str, int, str]]:
    """The tree in the docstring: class -> (parent, module, status, code)."""
    assert errors.__doc__ is not None
    found: dict[str, tuple[str | None, str, int, str]] = {}
    stack: list[tuple[str, str]] = []  # (name, module) by depth
    for line in errors.__doc__.splitlines():
        match = _NODE.match(line.removeprefix("    "))
        if not match:
            continue
        depth = len(match["indent"]) // 4 + (1 if "── " in line else 0)
        del stack[depth:]
        parent = stack[-1] if stack else None
        home = match["home"]
        if home == "here" or (home is None and parent is None):
            module = "p402.errors"
        elif home is not None:
            module = f"p402.{home}"
        else:  # lives with its parent
            assert parent is not None
            module = parent[1]
        status, code = int(match["status"]), match["code"]
        found[match["name"]] = (parent[0] if parent else None, module, status, code)
        stack.append((match["name"], module))
    return found


def _real() -> dict[str, tuple[str | None, str, int, str]]:
    for info in pkgutil.walk_packages(p402.__path__, "p402."):
        if not info.name.startswith("p402.ledger.migrations"):
            importlib.import_module(info.name)
    found: dict[str, tuple[str | None, str, int, str]] = {}
    pending: list[type[P402Error]] = [P402Error]
    while pending:
        cls = pending.pop()
        bases = [base for base in cls.__bases__ if issubclass(base, P402Error)]
        parent = bases[0].__name__ if bases else None
        found[cls.__name__] = (parent, cls.__module__, cls.http_status, cls.code)
        pending.extend(cls.__subclasses__())
    return found


def test_the_drawn_tree_is_the_real_one() -> None:
    assert _drawn() == _real()


def test_every_error_has_a_code_of_its_own() -> None:
    codes = [code for _, _, _, code in _real().values()]
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]+", code) for code in codes)


def test_nothing_raises_the_bare_root() -> None:
    """Every raise names the class that says what happened (and so its status and code)."""
    bare = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "P402Error":
                bare.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert bare == []


def test_no_route_builds_an_http_exception() -> None:
    """Statuses come from the error classes, mapped in serve/errors.py alone."""
    inline = [
        str(path.relative_to(PACKAGE))
        for path in (PACKAGE / "serve").rglob("*.py")
        if "HTTPException(" in path.read_text(encoding="utf-8")
    ]
    assert inline == []


def _app() -> FastAPI:
    app = FastAPI()

    @app.get("/raise/{name}")
    def _raise(name: str) -> None:
        raise _make(_classes_by_name()[name])

    @app.get("/count")
    def _count(n: int) -> dict[str, int]:
        return {"n": n}

    @app.post("/v1/messages")
    def _messages() -> None:
        raise _make(_classes_by_name()["TooLarge"])

    install(app)
    return app


def _classes() -> list[type[P402Error]]:
    _real()  # every module imported
    found, pending = [], [P402Error]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def _classes_by_name() -> dict[str, type[P402Error]]:
    return {cls.__name__: cls for cls in _classes()}


def _make(cls: type[P402Error]) -> P402Error:
    """An instance of *cls*, built as the code that raises it does."""
    build: Any = cls  # two classes take their problems rather than a message
    if cls.__name__ == "ConfigProblems":
        return build([errors.Problem("p402.toml", 3, None, "bad")])  # type: ignore[no-any-return]
    if cls.__name__ == "ImportRejected":
        return build([errors.Problem("a.jsonl", 1, "model", "missing")], 1)  # type: ignore[no-any-return]
    return cls("it went <b>wrong</b>", hint="do this")


@pytest.mark.parametrize("name", sorted(_real()))
def test_the_api_answers_each_error_with_its_status_and_code(name: str) -> None:
    cls = _classes_by_name()[name]
    answer = TestClient(_app()).get(f"/raise/{name}")
    assert answer.status_code == cls.http_status
    body = answer.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == cls.code
    assert body["error"]["message"] == _make(cls).one_line()
    assert body["error"]["type"].endswith("_error")
    assert answer.headers["x-should-retry"] == ("true" if cls.http_status >= 500 else "false")
    assert answer.headers["content-type"] == "application/json"


def test_framework_refusals_come_in_the_same_shape() -> None:
    client = TestClient(_app())
    missing = client.get("/nowhere")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.get("/count", params={"n": "many"})
    assert wrong.status_code == 422 and wrong.json()["error"]["code"] == "invalid_parameters"
    assert "n" in wrong.json()["error"]["message"]
    method = client.delete("/count")
    assert method.status_code == 405 and method.json()["error"]["code"] == "method_not_allowed"


def test_anthropic_route_gets_anthropic_envelope() -> None:
    answer = TestClient(_app()).post("/v1/messages")
    assert answer.status_code == 413
    assert answer.json()["type"] == "error" and answer.json()["error"]["code"] == "too_large"


def test_unauthenticated_says_how_to_authenticate() -> None:
    answer = TestClient(_app()).get("/raise/Unauthenticated")
    assert answer.headers["www-authenticate"] == "Bearer"
