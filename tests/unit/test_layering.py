"""The house keeps its architecture (docs/architecture.md): every module lives in a room,
imports between rooms follow the allowed arrows, no module imports a room above its own,
and there is no import circle, type-only imports and imports inside functions included.

The import graph is grimp's (it reads every import statement, wherever it is)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

import grimp
import pytest

PRODUCT = ("services", "consent")
TOOLING = ("deploy",)

# Each room and the rooms it may import. Levels go up the page: a room may import only rooms
# listed before it, which is what makes the arrows a layering and not merely a list.
ARROWS: dict[str, frozenset[str]] = {}


def _room(name: str, *imports: str) -> None:
    unknown = set(imports) - ARROWS.keys()
    assert not unknown, f"{name} imports {unknown}, which are not below it"
    ARROWS[name] = frozenset(imports)


# Plumbing and contracts, one floor under the product.
_room("services.backbone")
# The pure core and the product's building blocks.
_room("consent.core", "services.backbone")
_room("services.personindex", "services.backbone")
_room("services.outbox", "services.backbone")
_room("consent.policy", "consent.core", "services.backbone")
# The product's processes.
_room("consent.registry", "consent.core", "services.backbone", "services.personindex")
_room(
    "consent.processor", "consent.core", "consent.policy", "consent.registry", "services.backbone"
)
# The audit service reads the protocol set (the pure parser) for the IG console's pages.
_room("services.audit", "consent.core", "consent.policy", "services.backbone")
# The audit trail's witness: runs apart, checks the trail's proofs with the audit's pure core.
_room("services.witness", "services.audit", "services.backbone")
# Delivery and the agency services read the protocol set to purge what they hold once a
# protocol's retention has run (consent/core/retention.py).
_room("services.delivery", "consent.core", "consent.policy", "services.backbone")
_room(
    "services.agency",
    "consent.core",
    "consent.policy",
    "services.backbone",
    "services.outbox",
    "services.personindex",
)
for _agency in ("services.education", "services.socialcare", "services.health"):
    _room(_agency, "services.agency", "services.backbone")
# Operating the product: the process table (every composition root), status, dead letters.
_room("services.ops", *ARROWS)
# Tooling, above the product.
_room("deploy.devstack", *ARROWS)
_room("deploy.bench", *ARROWS)
_room("deploy.cli", *ARROWS)
# Modules that are no room's: package markers and the tooling's one-line docstring holder.
HOUSE = frozenset({"services", "consent", "deploy"})


def room_of(module: str) -> str | None:
    for room in sorted(ARROWS, key=len, reverse=True):
        if module == room or module.startswith(room + "."):
            return room
    return None


@cache
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PRODUCT, *TOOLING, "tests", cache_dir=None)


def house_modules() -> list[str]:
    return sorted(m for m in graph().modules if m.split(".")[0] in PRODUCT + TOOLING)


def imports_of(module: str) -> set[str]:
    return graph().find_modules_directly_imported_by(module)


def where(importer: str, imported: str) -> str:
    details = graph().get_import_details(importer=importer, imported=imported)
    lines = ", ".join(str(d["line_number"]) for d in details)
    return f"{importer} (line {lines}) imports {imported}"


def test_every_module_lives_in_a_room() -> None:
    homeless = [m for m in house_modules() if room_of(m) is None and m not in HOUSE]
    assert homeless == []


def test_imports_between_rooms_follow_the_arrows() -> None:
    wrong = []
    for module in house_modules():
        room = room_of(module)
        for imported in imports_of(module):
            target = room_of(imported)
            if room is None or target is None or target == room:
                continue
            if target not in ARROWS[room]:
                wrong.append(where(module, imported))
    assert wrong == []


def strongly_connected(nodes: Iterable[str], edges: Mapping[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively: the groups of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1 or node in edges.get(node, ()):
                    groups.append(sorted(group))
    return groups


def test_no_import_circle() -> None:
    modules = house_modules()
    edges = {m: {i for i in imports_of(m) if i.split(".")[0] in PRODUCT + TOOLING} for m in modules}
    assert strongly_connected(modules, edges) == []


@pytest.mark.parametrize(
    ("edges", "circles"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"a"}}, [["a"]]),
    ],
)
def test_the_circle_finder_finds_circles(
    edges: dict[str, set[str]], circles: list[list[str]]
) -> None:
    assert strongly_connected(sorted(edges), edges) == circles


def test_the_product_imports_no_tooling() -> None:
    upward = [
        where(m, i)
        for m in house_modules()
        if m.split(".")[0] in PRODUCT
        for i in imports_of(m)
        if i.split(".")[0] in TOOLING
    ]
    assert upward == []


def test_tests_take_fixtures_from_the_dev_stack_never_from_the_cli() -> None:
    fixtures = [
        m
        for m in graph().modules
        if m.startswith("tests.") and not m.rsplit(".", 1)[-1].startswith("test_")
    ]
    from_cli = [where(m, i) for m in fixtures for i in imports_of(m) if room_of(i) == "deploy.cli"]
    assert from_cli == []


def test_the_arrow_check_sees_a_wrong_arrow() -> None:
    """The check is not vacuous: the processor really imports the consent registry, which
    the delivery service may not."""
    assert "consent.registry" not in ARROWS["services.delivery"]
    assert any(room_of(i) == "consent.registry" for i in imports_of("consent.processor.loop"))
