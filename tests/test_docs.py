"""The documentation stays true to the code.

- ``docs/equations.md``: every function it maps a paper's equation to still exists (the module
  imports and the qualified name resolves) in the file it names, and every test it names is defined
  in that test file. Renaming or moving a mapped function, or renaming a mapped test, fails here.
- Every relative link and image in ``README.md`` and ``docs/**/*.md`` points to a file inside the
  repository (what the repository page can show), and every ``#anchor`` of a link to a Markdown
  page names one of that page's headings.
- No page refers to a path outside the repository, in links or in plain or code text: no
  ``../shared``, no ``shared/spec``, no ``../`` path that climbs above the repository root, no
  absolute filesystem path such as ``/work/`` or ``/tmp/``. A user who clones the repository can
  read every page it points to (the models are stated in ``docs/models/``).
- Every env page lists each keyword of its scenario dataclass with the dataclass default.

Only the standard library, ``ast`` and imports of the project's own modules: nothing is executed
beyond importing the modules that hold the mapped functions.
"""
from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
EQUATIONS = DOCS / "equations.md"

#: the header of every equation table of docs/equations.md (tables with another header are ignored)
HEADER = ("Ref", "Item", "Function", "File", "Test", "Note")
_PIPE = re.compile(r"(?<!\\)\|")
_CODE = re.compile(r"`([^`]+)`")
_TEST_REF = re.compile(r"^(tests/[\w/]+\.py)::([A-Za-z_]\w*(?:::[A-Za-z_]\w*)?)$")
_NAME = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$")


# -- parsing ------------------------------------------------------------------------------------
def _cells(line: str) -> list[str]:
    """The cells of a Markdown table row (unescaped ``|`` separates; ``\\|`` is text)."""
    s = line.strip()
    return [c.strip() for c in _PIPE.split(s[1:-1] if s.endswith("|") else s[1:])]


def tables(text: str, header: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """Rows (line number, cells) of every table in ``text`` whose header row is ``header``."""
    rows: list[tuple[int, list[str]]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("|") and tuple(_cells(lines[i])) == header:
            i += 2                                         # header and the |---| line
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append((i + 1, _cells(lines[i])))
                i += 1
        else:
            i += 1
    return rows


def resolve(name: str) -> tuple[Any, ModuleType]:
    """Import the longest module prefix of the dotted ``name``, then ``getattr`` the rest.

    Returns (object, module). Raises ``LookupError`` naming what is missing."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        mod_name = ".".join(parts[:cut])
        try:
            module = importlib.import_module(mod_name)
        except ModuleNotFoundError as exc:
            if exc.name and (mod_name == exc.name or mod_name.startswith(exc.name + ".")):
                continue                                   # no such module: try a shorter prefix
            raise LookupError(f"importing {mod_name} failed: {exc}") from exc
        obj: Any = module
        for i, attr in enumerate(parts[cut:], start=cut):
            if not hasattr(obj, attr):
                raise LookupError(f"{'.'.join(parts[:i])} has no attribute {attr!r}")
            obj = getattr(obj, attr)
        return obj, module
    raise LookupError(f"no module of {name} can be imported")


def defining_file(obj: Any, module: ModuleType) -> str | None:
    """The repository-relative file that defines ``obj`` (its source file for functions, classes
    and properties; the module's file for constants). None when it lies outside the repository."""
    target = obj.fget if isinstance(obj, property) else obj
    try:
        source = inspect.getsourcefile(target)
    except TypeError:
        source = None
    path = Path(source or module.__file__ or "").resolve()
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return None


def defined_tests(path: Path) -> set[str]:
    """Test functions a test file defines: ``test_x`` at module level and ``TestX::test_y``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names.update(f"{node.name}::{item.name}" for item in node.body
                         if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef))
                         and item.name.startswith("test"))
    return names


# -- checking -----------------------------------------------------------------------------------
def check_row(line: int, cells: list[str]) -> list[str]:
    """Every problem of one equation-table row, as messages naming the row."""
    if len(cells) != len(HEADER):
        return [f"line {line}: expected {len(HEADER)} cells, got {len(cells)}"]
    ref, _, func_cell, file_cell, test_cell, _ = cells
    where = f"line {line} ({ref})"
    errors: list[str] = []
    functions = _CODE.findall(func_cell)
    files = _CODE.findall(file_cell)
    if not functions:
        if not func_cell.startswith("none"):
            errors.append(f"{where}: Function must be names in backticks or 'none', got {func_cell!r}")
        if file_cell != "-":
            errors.append(f"{where}: File must be '-' when Function is none, got {file_cell!r}")
    else:
        found: set[str] = set()
        for name in functions:
            if not _NAME.match(name):
                errors.append(f"{where}: {name!r} is not a fully qualified dotted name")
                continue
            try:
                obj, module = resolve(name)
            except LookupError as exc:
                errors.append(f"{where}: mapped function {name} no longer exists ({exc})")
                continue
            path = defining_file(obj, module)
            if path is None:
                errors.append(f"{where}: {name} is defined outside the repository ({module.__file__})")
                continue
            found.add(path)
            if path not in files:
                errors.append(f"{where}: {name} is defined in {path}, which the File column does not list")
        stale = sorted(set(files) - found)
        if stale and not errors:
            errors.append(f"{where}: File lists {stale}, where none of the mapped functions is defined")
    tests = _CODE.findall(test_cell)
    if not tests and not test_cell.startswith("none"):
        errors.append(f"{where}: Test must be tests in backticks or 'none', got {test_cell!r}")
    for ref_test in tests:
        m = _TEST_REF.match(ref_test)
        if m is None:
            errors.append(f"{where}: {ref_test!r} is not of the form tests/test_x.py::test_name")
            continue
        path = ROOT / m.group(1)
        if not path.is_file():
            errors.append(f"{where}: test file {m.group(1)} does not exist")
        elif m.group(2) not in defined_tests(path):
            errors.append(f"{where}: {m.group(1)} defines no test {m.group(2)}")
    return errors


def check_equation_map(text: str) -> list[str]:
    """Every problem of an equation map: rows (above) and duplicate refs."""
    rows = tables(text, HEADER)
    errors = [f"no table with the header {' | '.join(HEADER)}"] if not rows else []
    seen: dict[str, int] = {}
    for line, cells in rows:
        errors += check_row(line, cells)
        ref = cells[0]
        if ref in seen:
            errors.append(f"line {line}: ref {ref!r} already used on line {seen[ref]}")
        seen.setdefault(ref, line)
    return errors


# -- the equation map ---------------------------------------------------------------------------
def _numbers(ref: str) -> set[int]:
    """Equation numbers a ref covers: "C-(16)" -> {16}, "Y-(12a)-(12c)" -> {12}, "C-(16)-(18)" ->
    {16, 17, 18}."""
    found = {int(n) for n in re.findall(r"\((\d+)[a-z]?\)", ref)}
    for lo, hi in re.findall(r"\((\d+)[a-z]?\)-\((\d+)[a-z]?\)", ref):
        found.update(range(int(lo), int(hi) + 1))
    return found


def test_equation_map_covers_both_papers_and_the_joined_model():
    refs = [cells[0] for _, cells in tables(EQUATIONS.read_text(encoding="utf-8"), HEADER)]
    yang = set().union(*(_numbers(r) for r in refs if r.startswith("Y-")))
    cai = set().union(*(_numbers(r) for r in refs if r.startswith("C-")))
    # every numbered equation is there, mapped or marked 'none' with the reason
    assert set(range(1, 19)) <= yang, f"Yang equations missing: {sorted(set(range(1, 19)) - yang)}"
    assert set(range(1, 54)) <= cai, f"Cai equations missing: {sorted(set(range(1, 54)) - cai)}"
    for item in ("Y-Thm 1", "Y-Thm 2", "Y-Lemma 1", "Y-Lemma 2", "Y-Lemma 3", "Y-Alg 1", "Y-EXH",
                 "Y-TDMA", "C-Alg 1", "C-Alg 2", "C-Alg 3", "C-Remark 1", "C-Table I", "C-Table II",
                 *(f"C-C{i}" for i in range(1, 14))):
        assert item in refs, f"{item} missing"
    for prefix in ("YS-", "CS-", "Q-"):
        assert any(r.startswith(prefix) for r in refs), f"no {prefix} rows"


def test_every_mapped_function_and_test_exists():
    errors = check_equation_map(EQUATIONS.read_text(encoding="utf-8"))
    assert not errors, "docs/equations.md is out of date:\n" + "\n".join(errors)


def test_a_renamed_function_or_test_is_reported():
    """The check itself, on a row that maps this file's own ``check_row`` (so it does not depend on
    any library function): a renamed, moved or deleted function or test is an error."""
    good = ("| X-1 | item | `test_docs.check_row` | `tests/test_docs.py` "
            "| `tests/test_docs.py::test_a_renamed_function_or_test_is_reported` | |")
    head = "| " + " | ".join(HEADER) + " |\n|---|---|---|---|---|---|\n"
    assert check_equation_map(head + good) == []
    renamed = good.replace("check_row`", "check_row_renamed`")
    errors = check_equation_map(head + renamed)
    assert len(errors) == 1 and "test_docs.check_row_renamed no longer exists" in errors[0], errors
    moved = good.replace("`tests/test_docs.py` ", "`tests/test_other.py` ")
    assert any("defined in tests/test_docs.py" in e for e in check_equation_map(head + moved))
    gone_test = good.replace("is_reported`", "is_reported_renamed`")
    assert any("defines no test" in e for e in check_equation_map(head + gone_test))
    gone_module = good.replace("`test_docs.check_row`", "`test_docs_renamed.check_row`")
    assert any("no longer exists" in e for e in check_equation_map(head + gone_module))
    missing = head + good.replace("`test_docs.check_row`", "check_row")
    assert any("Function must be names in backticks" in e for e in check_equation_map(missing))


# -- links --------------------------------------------------------------------------------------
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)


def markdown_pages() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def relative_links(text: str) -> list[str]:
    """Targets of inline links, images and reference definitions, outside code, that are not
    URLs (a scheme such as https: or mailto:) or in-page anchors."""
    text = _INLINE_CODE.sub("", _FENCE.sub("", text))
    targets = _LINK.findall(text) + _REF_DEF.findall(text)
    return [t for t in targets if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", t) and not t.startswith("#")]


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_point_to_files_in_the_repository(page):
    bad = []
    for target in relative_links(page.read_text(encoding="utf-8")):
        path = unquote(target.split("#", 1)[0].split("?", 1)[0])
        resolved = (page.parent / path).resolve()
        if not resolved.exists():
            bad.append(f"{target} (no such file)")
        elif not resolved.is_relative_to(ROOT):
            bad.append(f"{target} (outside the repository)")
    assert not bad, f"{page.relative_to(ROOT)}: broken links: {bad}"


#: the model pages: every equation as implemented (docs/models/)
MODEL_PAGES = ("models/README.md", "models/qkd_noma.md", "models/uav_ofdma.md", "models/quantum_uav.md")


def _link_paths(page: Path) -> set[str]:
    """Repository-relative files a page links to (anchors and queries dropped)."""
    out: set[str] = set()
    for target in relative_links(page.read_text(encoding="utf-8")):
        path = (page.parent / unquote(target.split("#", 1)[0].split("?", 1)[0])).resolve()
        if path.is_relative_to(ROOT):
            out.add(path.relative_to(ROOT).as_posix())
    return out


def test_docs_pages_exist_and_link_each_other():
    for name in ("equations.md", "results.md", "envs/qkd_noma.md", "envs/uav_secure_ofdma.md",
                 "envs/quantum_uav.md", *MODEL_PAGES):
        assert (DOCS / name).is_file(), name
    readme_links = relative_links((ROOT / "README.md").read_text(encoding="utf-8"))
    for name in ("docs/equations.md", "docs/results.md", "docs/envs/qkd_noma.md",
                 "docs/envs/uav_secure_ofdma.md", "docs/envs/quantum_uav.md",
                 *(f"docs/{m}" for m in MODEL_PAGES)):
        assert name in readme_links, f"README.md does not link {name}"
    # the docs index, the equation map and the models index link every model page; each model
    # page links its env card and the equation map; each env card links its model page
    for index in ("README.md", "equations.md", "models/README.md"):
        linked = _link_paths(DOCS / index)
        for model in MODEL_PAGES[1:]:
            assert f"docs/{model}" in linked, f"docs/{index} does not link docs/{model}"
    assert {f"docs/{m}" for m in MODEL_PAGES} <= _link_paths(DOCS / "README.md"), \
        "docs/README.md does not list every model page"
    for model, card in (("qkd_noma", "qkd_noma"), ("uav_ofdma", "uav_secure_ofdma"),
                        ("quantum_uav", "quantum_uav")):
        linked = _link_paths(DOCS / "models" / f"{model}.md")
        assert f"docs/envs/{card}.md" in linked and "docs/equations.md" in linked, model
        assert f"docs/models/{model}.md" in _link_paths(DOCS / "envs" / f"{card}.md"), card


# -- anchors ------------------------------------------------------------------------------------
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)


def heading_slug(heading: str) -> str:
    """GitHub's anchor of a heading: link text kept, backticks dropped, lower case, every character
    but letters, digits, ``_``, ``-`` and spaces removed, spaces turned into ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "").strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Anchors of a page's headings outside code fences (repeats get -1, -2, ... as on GitHub)."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    for m in _HEADING.finditer(_FENCE.sub("", text)):
        slug = heading_slug(m.group(1))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_heading_slugs_follow_github():
    assert heading_slug("Action modes (`action_mode`) and the safety layer (`safety_layer`)") == \
        "action-modes-action_mode-and-the-safety-layer-safety_layer"
    assert heading_slug("Cai et al. 2019: sub-problem 2 (30)-(53), Algorithms 2 and 3, figures") == \
        "cai-et-al-2019-sub-problem-2-30-53-algorithms-2-and-3-figures"
    assert anchors("# A\n```\n# not a heading\n```\n## A\n") == {"a", "a-1"}


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_link_anchors_name_a_heading(page):
    text = page.read_text(encoding="utf-8")
    bad = []
    for target in _LINK.findall(_INLINE_CODE.sub("", _FENCE.sub("", text))):
        if "#" not in target or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", target):
            continue
        path, fragment = target.split("#", 1)
        linked = page if not path else (page.parent / unquote(path)).resolve()
        if linked.suffix == ".md" and linked.is_file() and unquote(fragment) not in anchors(
                linked.read_text(encoding="utf-8")):
            bad.append(target)
    assert not bad, f"{page.relative_to(ROOT)}: links to missing anchors: {bad}"


# -- nothing outside the repository -------------------------------------------------------------
#: text that names the workspace outside the repository (the specification and the papers' copies)
_OUTSIDE_TEXT = ("../shared", "shared/spec", "shared/papers")
#: absolute filesystem paths (not the path part of a URL: no word character, ':', '/' or '.' before)
_ABSOLUTE = re.compile(r"(?<![\w:/.~-])(/(?:work|tmp|home|Users|root|mnt|var|opt|srv|private)/\S*"
                       r"|[A-Za-z]:\\\S+|~/\S*)")
#: a relative path that climbs: one or more ../ then a name
_CLIMB = re.compile(r"(?<![\w/.])((?:\.\./)+[\w.-]*)")


def outside_references(text: str, page: Path) -> list[str]:
    """Every place ``text`` (a page at ``page``) refers to a path outside the repository, in links,
    code or prose: the workspace's shared folder, absolute filesystem paths, and ``../`` paths or
    relative links that resolve above the repository root."""
    problems = [f"{needle!r}" for needle in _OUTSIDE_TEXT if needle in text]
    problems += [f"absolute path {m.group(1)!r}" for m in _ABSOLUTE.finditer(text)]
    targets = {m.group(1) for m in _CLIMB.finditer(text)}
    targets.update(unquote(t.split("#", 1)[0].split("?", 1)[0]) for t in relative_links(text))
    for target in sorted(t for t in targets if t):
        if not (page.parent / target).resolve().is_relative_to(ROOT):
            problems.append(f"{target!r} resolves outside the repository")
    return problems


@pytest.mark.parametrize("page", markdown_pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_page_refers_to_a_path_outside_the_repository(page):
    problems = outside_references(page.read_text(encoding="utf-8"), page)
    assert not problems, f"{page.relative_to(ROOT)} refers outside the repository: {problems}"


def test_outside_references_are_reported():
    """The check itself, on made-up pages: each kind of reference outside the repository is found,
    and links, URLs and paths inside the repository are not."""
    page = DOCS / "envs" / "qkd_noma.md"
    clean = ("See [the map](../equations.md#x), [README](../../README.md), `docs/models/`, "
             "https://example.org/tmp/x and `runs/reproduce/`.")
    assert outside_references(clean, page) == []
    for bad in ("## Choices (see `../shared/spec/yang2019_model.md`)",
                "kept in the workspace's shared/spec/ folder",
                "[spec](../../../spec.md)",
                "run `cat ../../../notes.txt`",
                "written to /tmp/run/ by default",
                "the venv at /work/venv/bin/python"):
        assert outside_references(bad, page), bad


# -- env pages: every scenario keyword with its default ---------------------------------------
KEYWORD_HEADER = ("Keyword", "Default", "Unit", "Meaning")


def _env_pages() -> list[tuple[str, str]]:
    return [("envs/qkd_noma.md", "secure_env.scenarios.yang2019.QkdNomaScenario"),
            ("envs/uav_secure_ofdma.md", "secure_env.scenarios.cai2019.UavOfdmaScenario"),
            ("envs/quantum_uav.md", "secure_env.scenarios.quantum_uav.QuantumUavScenario")]


@pytest.mark.parametrize("page, scenario", _env_pages(), ids=[p for p, _ in _env_pages()])
def test_env_page_lists_every_keyword_with_its_default(page, scenario):
    cls, _ = resolve(scenario)
    rows = tables((DOCS / page).read_text(encoding="utf-8"), KEYWORD_HEADER)
    listed: dict[str, Any] = {}
    for line, cells in rows:
        names, defaults = _CODE.findall(cells[0]), _CODE.findall(cells[1])
        assert len(names) == 1 and len(defaults) == 1, f"{page} line {line}: expected `name` and `default`"
        listed[names[0]] = ast.literal_eval(defaults[0])
    fields = {f.name: f.default for f in dataclasses.fields(cls)}
    assert sorted(listed) == sorted(fields), f"{page}: keywords differ from {cls.__name__}'s fields"
    wrong = {k: (v, fields[k]) for k, v in listed.items() if v != fields[k]}
    assert not wrong, f"{page}: documented default != dataclass default: {wrong}"
