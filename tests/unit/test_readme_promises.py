"""The README's promises as a checklist (docs/promises.md).

Every promise-shaped sentence of README.md must be covered by a row of docs/promises.md:
held by named tests, parked as "not a promise" with a reason, or listed as a promise no
test holds yet. Every row must still quote the README, and every test it names must exist.
The matching is deliberately plain: sentences, a fixed list of words, quoted phrases.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PROMISES = ROOT / "docs" / "promises.md"

# A sentence is promise-shaped when it says something holds always, never, for everyone or
# within a bound: these words, as whole words or phrases, in any case. The list is short on
# purpose; it catches most promises a reader would hold the project to, and a sentence it
# misses is a reason to add a word here, not to make the matching clever.
TRIGGERS = (
    "never",
    "always",
    "every",
    "exactly once",
    "only",
    "nothing",
    "nobody",
    "no one",
    "cannot",
    "refuse",
    "refuses",
    "refused",
    "guarantee",
    "guaranteed",
    "at most",
    "at least",
    "lost",
)
TRIGGER = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in TRIGGERS) + r")\b", re.IGNORECASE)

# The two side tables are for the exceptions. If either grows past this, the checklist has
# stopped being a list of tested promises and become a list of excuses: write the tests.
SIDE_TABLE_CAP = 15

HELD = "held"
NOT_PROMISES = "not promises"
UNTESTED = "untested"

# The level-2 headings of docs/promises.md that start the two side tables; rows under any
# other heading are promises held by tests.
SECTION_OF_HEADING = {
    "not promises": NOT_PROMISES,
    "promises no test holds yet": UNTESTED,
}

TEST_ID = re.compile(r"(tests/[\w/]+\.py)::(\w+)(?:\[[^\]]*\])?")
FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^#{1,6}\s+")
LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d+\.)\s+")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Row:
    """One row of a table in docs/promises.md."""

    section: str
    phrase: str
    tests_or_reason: str  # the second cell
    line: int


def normalise(text: str) -> str:
    """Lower case, one space between words: the form phrases and sentences are compared in."""
    return " ".join(text.split()).lower()


def paragraphs(markdown: str) -> list[str]:
    """The prose of a Markdown text in paragraphs: code blocks and table rows dropped, each
    heading and each list item a paragraph of its own, emphasis markers removed."""
    result: list[str] = []
    current: list[str] = []
    in_code = False

    def flush() -> None:
        if current:
            result.append(" ".join(current))
            current.clear()

    for line in markdown.splitlines():
        if FENCE.match(line):
            flush()
            in_code = not in_code
            continue
        if in_code:
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("|"):
            flush()
            continue
        if HEADING.match(stripped):
            flush()
            result.append(HEADING.sub("", stripped))
            continue
        if LIST_ITEM.match(line):
            flush()
            stripped = LIST_ITEM.sub("", stripped)
        current.append(stripped.replace("**", ""))
    flush()
    return result


def sentences(markdown: str) -> list[str]:
    """Every sentence of the prose, whitespace collapsed. A sentence ends at '.', '!' or '?'
    followed by whitespace (so "e.g. x" splits too; the pieces are still matched whole)."""
    return [
        " ".join(piece.split())
        for paragraph in paragraphs(markdown)
        for piece in SENTENCE_END.split(paragraph)
        if piece.strip()
    ]


def promise_shaped(markdown: str) -> list[str]:
    """The sentences that contain one of TRIGGERS."""
    return [s for s in sentences(markdown) if TRIGGER.search(s)]


def rows(markdown: str) -> list[Row]:
    """The body rows of every table in docs/promises.md whose first cell is a quoted phrase,
    each tagged with the section (level-2 heading) it is under."""
    section = HELD
    result: list[Row] = []
    for number, line in enumerate(markdown.splitlines(), start=1):
        if line.startswith("## "):
            section = SECTION_OF_HEADING.get(line[3:].strip().lower(), HELD)
            continue
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        quoted = re.fullmatch(r'"(.+)"', cells[0])
        if quoted is None or len(cells) < 2:
            continue
        result.append(Row(section, quoted.group(1), cells[1], number))
    return result


def uncovered(readme: str, promises: str) -> list[str]:
    """Promise-shaped README sentences that no row's phrase occurs in."""
    phrases = [normalise(row.phrase) for row in rows(promises)]
    return [s for s in promise_shaped(readme) if not any(p in normalise(s) for p in phrases)]


def stale(readme: str, promises: str) -> list[Row]:
    """Rows whose phrase occurs in no README sentence."""
    every = [normalise(s) for s in sentences(readme)]
    return [row for row in rows(promises) if not any(normalise(row.phrase) in s for s in every)]


def missing_tests(promises: str, root: Path) -> list[str]:
    """Test ids named by the held rows whose file is absent or has no such test function, and
    held rows that name no test at all."""
    problems: list[str] = []
    for row in rows(promises):
        if row.section != HELD:
            continue
        ids = TEST_ID.findall(row.tests_or_reason)
        if not ids:
            problems.append(f"line {row.line}: {row.phrase!r} names no test")
        for path, name in ids:
            file = root / path
            source = file.read_text(encoding="utf-8") if file.is_file() else ""
            if not re.search(rf"^\s*(?:async\s+)?def {re.escape(name)}\(", source, re.MULTILINE):
                problems.append(f"line {row.line}: {path}::{name} does not exist")
    return problems


def oversized(promises: str) -> dict[str, int]:
    """The side tables with more rows than SIDE_TABLE_CAP, and their row counts."""
    counts: dict[str, int] = {}
    for row in rows(promises):
        counts[row.section] = counts.get(row.section, 0) + 1
    return {
        section: count
        for section, count in counts.items()
        if section != HELD and count > SIDE_TABLE_CAP
    }


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


# The checks on the real files.


def test_every_promise_shaped_readme_sentence_is_in_the_checklist() -> None:
    missing = uncovered(_read(README), _read(PROMISES))
    assert not missing, (
        "README sentences that look like promises but no row of docs/promises.md quotes:\n"
        + "\n".join(f"- {s}" for s in missing)
    )


def test_every_row_still_quotes_the_readme() -> None:
    gone = stale(_read(README), _read(PROMISES))
    assert not gone, "rows of docs/promises.md whose words are no longer in README.md:\n" + (
        "\n".join(f"- line {row.line}: {row.phrase!r}" for row in gone)
    )


def test_every_listed_test_exists() -> None:
    problems = missing_tests(_read(PROMISES), ROOT)
    assert not problems, "\n".join(problems)


def test_the_side_tables_stay_small() -> None:
    assert not oversized(_read(PROMISES))


def test_the_readme_has_promises_to_check() -> None:
    # Guards the splitter: if it lost the prose, every check above would pass on nothing.
    assert len(promise_shaped(_read(README))) >= 50


# The checks can fail: each is run on copies of the two files, changed, in a tmp directory.


def _copies(tmp_path: Path) -> tuple[Path, Path]:
    readme, promises = tmp_path / "README.md", tmp_path / "promises.md"
    readme.write_text(_read(README), encoding="utf-8")
    promises.write_text(_read(PROMISES), encoding="utf-8")
    return readme, promises


def test_a_new_promise_shaped_sentence_is_caught(tmp_path: Path) -> None:
    readme, promises = _copies(tmp_path)
    with readme.open("a", encoding="utf-8") as f:
        f.write("\n\nThe hub never forgets a\nchild's name. It is quick.\n")
    assert uncovered(_read(readme), _read(promises)) == ["The hub never forgets a child's name."]


def test_a_row_whose_words_left_the_readme_is_caught(tmp_path: Path) -> None:
    readme, promises = _copies(tmp_path)
    text = _read(readme)
    # A row whose words stand once in the README, on one line, so one replacement removes them.
    row = next(
        r
        for r in rows(_read(promises))
        if text.lower().count(r.phrase.lower()) == normalise(text).count(normalise(r.phrase)) == 1
    )
    reworded = re.sub(re.escape(row.phrase), "words since reworded", text, flags=re.IGNORECASE)
    readme.write_text(reworded, encoding="utf-8")
    assert row in stale(_read(readme), _read(promises))
    assert row not in stale(text, _read(promises))


def test_a_row_naming_a_test_that_does_not_exist_is_caught(tmp_path: Path) -> None:
    _, promises = _copies(tmp_path)
    this = "tests/unit/test_readme_promises.py"
    rows_added = (
        f'| "exactly once" | `{this}::test_a_row_naming_a_test_that_does_not_exist_is_caught` |\n'
        f'| "at most 6 MiB" | `{this}::test_every_listed_test_exists[param]` |\n'
        f'| "no such test" | `{this}::test_that_was_never_written` |\n'
        '| "no such file" | `tests/unit/test_not_there.py::test_anything` |\n'
        '| "names nothing" | a sentence, but no test id |\n'
    )
    text = _read(promises).replace("## Not promises", rows_added + "\n## Not promises", 1)
    problems = missing_tests(text, ROOT)
    assert len(problems) == 3, problems
    assert f"{this}::test_that_was_never_written does not exist" in problems[0]
    assert "tests/unit/test_not_there.py::test_anything does not exist" in problems[1]
    assert "'names nothing' names no test" in problems[2]


def _side(text: str, section: str) -> list[Row]:
    return [row for row in rows(text) if row.section == section]


def test_side_tables_past_their_cap_are_caught(tmp_path: Path) -> None:
    _, promises = _copies(tmp_path)
    extra = "".join(f'| "excuse {n}" | because |\n' for n in range(SIDE_TABLE_CAP))
    marker = "| --- | --- |\n"
    text = _read(promises)
    start = text.index("## Not promises")
    at = text.index(marker, start) + len(marker)
    changed = text[:at] + extra + text[at:]
    assert oversized(changed) == {NOT_PROMISES: SIDE_TABLE_CAP + len(_side(text, NOT_PROMISES))}


def test_prose_is_split_into_sentences_as_documented() -> None:
    markdown = (
        "# Title never\n"
        "First line of a paragraph\n"
        "goes on here. **Bold promise.** Always? Yes!\n"
        "\n"
        "```sh\n"
        "echo never in code\n"
        "```\n"
        "| never | in a table |\n"
        "- Only a list item\n"
        "  continued. Everything else is nothing\n"
        "10. A numbered item.\n"
    )
    assert sentences(markdown) == [
        "Title never",
        "First line of a paragraph goes on here.",
        "Bold promise.",
        "Always?",
        "Yes!",
        "Only a list item continued.",
        "Everything else is nothing",
        "A numbered item.",
    ]
    # Whole words only: "Everything" is not "every", but "nothing" counts.
    assert promise_shaped(markdown) == [
        "Title never",
        "Always?",
        "Only a list item continued.",
        "Everything else is nothing",
    ]


def test_rows_are_read_from_each_table_under_its_section() -> None:
    doc = (
        "## Promises\n### Some README section\n"
        "| README words | Held by |\n| --- | --- |\n"
        '| "held words" | `tests/a.py::test_a` |\n'
        "## Not promises\n| README words | Why |\n| --- | --- |\n"
        '| "parked words" | a reason |\n'
        "## Promises no test holds yet\n| README words | What |\n| --- | --- |\n"
        '| "open words" | a test that would |\n'
    )
    assert [(r.section, r.phrase) for r in rows(doc)] == [
        (HELD, "held words"),
        (NOT_PROMISES, "parked words"),
        (UNTESTED, "open words"),
    ]
