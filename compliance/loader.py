"""Loading rules and building a ready checker: the file-system edge of the engine.

``load_rule_set(dirs)`` reads the default packs (shipped as the ``livestream_compliance_rules``
package) and then each given directory or file in order; a later rule with the same id replaces
an earlier one. ``load_checker()`` additionally builds the normaliser, the jieba segmenter and the
automata, so that the first message costs no more than any other.
"""

from __future__ import annotations

from array import array
import atexit
import contextlib
import dataclasses
import gc
import hashlib
import io
import marshal
import os
import pickle
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

from .classifier import ParaphraseModel, parse_model
from .engine import Checker, CompiledRules, _no_pause
from .errors import RuleError, RuleIssue, UsageError
from .findings import Source
from .literals import defer_seeds, export_prepared, from_recipe
from .matcher import DEFAULT_BACKEND, MatcherBuild, _native
from .normalize import Normalizer
from .rules import FileRules, RuleSet, build_rule_set
from . import delta as _delta
from .tables import fold_table, homophone_table, near_folds, pinyin_table, traditional_to_simplified
from . import verify as _verify
from .verify import JiebaSegmenter

RULE_SUFFIX = ".toml"

#: ``load_checker(cache_dir=DEFAULT_CACHE)``: the per-user cache directory (see :func:`default_cache_dir`).
DEFAULT_CACHE = "default"
#: ``load_checker(prebuilt=PACKAGED)``: the state the install built for the default packs
#: (:data:`PREBUILT_DIR`, written by ``python -m livestream_compliance.prebuild`` from setup.py).
PACKAGED = "packaged"
#: ``load_checker(save=...)``: write a new state in a child process and return at once, or before returning.
SAVE_BACKGROUND = "background"
SAVE_NOW = "now"
#: Where an install keeps the prebuilt state of the default packs (inside the installed package).
PREBUILT_DIR = Path(__file__).resolve().parent / "prebuilt"


def default_rule_files() -> list[tuple[str, str]]:
    """``(name, text)`` of every default rule pack, in name order."""
    root = resources.files("livestream_compliance_rules")
    out = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(RULE_SUFFIX) and entry.is_file():
            out.append((f"<default>/{entry.name}", entry.read_text(encoding="utf-8")))
    return out


def read_rule_path(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(name, text)`` of a rule file, or of every ``*.toml`` file in a directory (sorted)."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix == RULE_SUFFIX and f.is_file())
        if not files:
            raise RuleError(RuleIssue(str(p), None, None, f"no *{RULE_SUFFIX} rule files in this directory"))
    elif p.is_file():
        files = [p]
    else:
        raise RuleError(RuleIssue(str(p), None, None, "no such rule file or directory"))
    out = []
    for f in files:
        try:
            out.append((str(f), f.read_bytes().decode("utf-8-sig")))
        except UnicodeDecodeError as exc:
            raise RuleError(RuleIssue(str(f), None, None, f"rule files must be UTF-8: {exc}")) from None
        except OSError as exc:
            raise RuleError(RuleIssue(str(f), None, None, f"cannot read: {exc.strerror}")) from None
    return out


def _layers(paths: Iterable[str | os.PathLike[str]], defaults: bool) -> list[list[tuple[str, str]]]:
    layers: list[list[tuple[str, str]]] = []
    if defaults:
        layers.append(default_rule_files())
    for p in paths:
        layers.append(read_rule_path(p))
    return layers


def load_rule_set(paths: Iterable[str | os.PathLike[str]] = (), *, defaults: bool = True) -> RuleSet:
    return build_rule_set(_layers(paths, defaults))


def _jieba_base_dictionary(cache_dir: str | None) -> tuple[dict[str, int], int] | None:
    """jieba's parsed default dictionary ``(FREQ, total)``, as cheaply as it can be had.

    0. jieba's ``dict.txt`` parsed by the C extension (:func:`_native_jieba_dict`, ~0.25 s with the
       read: no slower than reading a cache file, and never stale after an upgrade of jieba);
    1. jieba's own cache file ``jieba.cache``, in ``cache_dir`` and then in the temporary directory
       (where jieba itself keeps it), read in one piece: ``jieba.Tokenizer.initialize`` reads it with
       ``marshal.load`` on the open file, about four times slower than ``marshal.loads`` of its bytes;
    2. else jieba's ``dict.txt`` parsed here (:func:`_parse_jieba_dict`, the same result as jieba's
       ``gen_pfdict`` in a fraction of its time), and the cache file written for the next start into
       ``cache_dir`` (or the temporary directory), in jieba's format: a fresh container whose
       temporary directory is empty but whose cache directory persists starts warm the second time.

    ``None``: let jieba build it (and write its cache).
    """
    native = _native_jieba_dict()
    if native is not None:
        return native
    dirs = [d for d in dict.fromkeys((cache_dir, tempfile.gettempdir())) if d]
    for d in dirs:
        try:
            with open(os.path.join(d, "jieba.cache"), "rb") as f:
                freq, total = marshal.loads(f.read())
        except Exception:  # noqa: BLE001 - missing, partial or foreign file: try the next, or rebuild
            continue
        if type(freq) is dict and type(total) is int and len(freq) >= 100_000:
            return freq, total
    parsed = _parse_jieba_dict()
    if parsed is not None:
        _write_atomic(dirs[0], "jieba.cache", marshal.dumps(parsed))
    return parsed


def _native_jieba_dict() -> tuple[dict[str, int], int] | None:
    """:func:`_parse_jieba_dict`'s result from ``_native.jieba_dictionary``, or None without the C
    extension, under a jieba version whose ``gen_pfdict`` it was not checked against, or where it
    declines the file's shape (tests/test_cache.py holds it equal to jieba's own reading)."""
    if _native is None:
        return None
    read = _jieba_dict_text()
    if read is None or not _verify._JIEBA_SAME_ALGORITHM.match(read[0]):
        return None
    return _native.jieba_dictionary(read[1])  # type: ignore[no-any-return]


def _jieba_dict_text() -> tuple[str, str] | None:
    """jieba's version and the text of its default ``dict.txt``, or None if either cannot be had
    (jieba reports a missing file itself)."""
    try:
        jieba = _verify.import_jieba()
        with open(os.path.join(os.path.dirname(jieba.__file__), "dict.txt"), "rb") as f:
            return str(getattr(jieba, "__version__", "")), f.read().decode("utf-8")
    except Exception:  # noqa: BLE001 - the other routes decide
        return None


def _parse_jieba_dict() -> tuple[dict[str, int], int] | None:
    """jieba's ``gen_pfdict`` of its default ``dict.txt`` (each word's frequency, 0 for every prefix
    of a word that is not a word itself, and the frequency total), with bulk string operations.

    ``None`` if the file is missing or not in the expected ``word freq tag`` shape (jieba decides).
    """
    read = _jieba_dict_text()
    if read is None:
        return None
    lines = read[1].splitlines()
    fields = " ".join(lines).split(" ")
    if len(fields) != 3 * len(lines) or not lines or not all(fields) or any(line != line.strip() for line in lines):
        # not exactly three non-empty fields per line (a blank line, a missing tag), or white space
        # at either end of a line (jieba strips it): jieba's parser decides
        return None
    try:
        counts = list(map(int, fields[1::3]))
    except ValueError:
        return None  # not a count: jieba's parser decides
    words = fields[0::3]
    freq = dict.fromkeys({w[:i] for w in words for i in range(1, len(w))}, 0)  # prefixes ...
    freq.update(zip(words, counts))  # ... unless a word; a repeated word keeps its last frequency
    return freq, sum(counts)


def _write_atomic(directory: str, name: str, data: bytes) -> None:
    """Write ``directory/name`` through a temporary file and a rename; never raises."""
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, os.path.join(directory, name))
        except BaseException:
            os.unlink(tmp)
            raise
    except Exception:  # noqa: BLE001 - a cache that cannot be written only costs the next start
        pass


def paraphrase_model() -> ParaphraseModel:
    """The shipped paraphrase model (``data/paraphrase_model.tsv``, see classifier.py)."""
    name = "paraphrase_model.tsv"
    text = resources.files("livestream_compliance").joinpath("data", name).read_text(encoding="utf-8")
    return parse_model(text, name)


def build_checker(
    rule_set: RuleSet,
    *,
    backend: str = DEFAULT_BACKEND,
    segmenter: JiebaSegmenter | None = None,
    jieba_cache_dir: str | None = None,
    model: ParaphraseModel | None = None,
    pause: Callable[[], None] | None = None,
) -> Checker:
    """A ready checker for ``rule_set``: translate table, taught jieba, automata. ``pause``: called
    between the long steps (see Checker)."""
    pause = pause or _no_pause
    normalizer = Normalizer.build(traditional_to_simplified())
    terms = {normalizer.normalize(t) for r in rule_set.rules for t in r.terms}
    if segmenter is None:
        protected = {normalizer.normalize(x) for r in rule_set.rules for x in r.exceptions}
        base = _jieba_base_dictionary(jieba_cache_dir)
        pause()
        segmenter = JiebaSegmenter(sorted(terms), sorted(protected), cache_dir=jieba_cache_dir, dictionary=base)
        pause()
    dictionary = getattr(segmenter, "dictionary", None)  # jieba's words: a homophone spelling that is a word is skipped
    lexicon = dictionary()[0] if callable(dictionary) else None
    return Checker(
        rule_set,
        normalizer=normalizer,
        segmenter=segmenter,
        backend=backend,
        romanize=pinyin_table("".join(terms)),
        homophones=homophone_table(),
        lexicon=lexicon,
        fold=fold_table(),
        near_fold=near_folds(),
        model=model,
        pause=pause,
    )


# --------------------------------------------------------------------------- checker state cache
#: Bump when the cached state's layout changes.
_STATE_FORMAT = b"livestream-compliance checker state 1"
_MAGIC = b"LSCSTATE"
#: Cache files kept per directory (one per rule-set/package combination seen; oldest removed).
_KEEP = 8


def default_cache_dir() -> str:
    """``$XDG_CACHE_HOME/livestream-compliance`` (``~/.cache/livestream-compliance`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "livestream-compliance")


def _code_digest() -> bytes:
    """Digest of this package's code and data, so an edited (e.g. editable-installed) engine misses;
    the compiled C extension included (a rebuilt extension may build other states)."""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    for f in sorted([*root.glob("*.py"), *root.glob("_native*.so"), *root.glob("_native*.pyd"), *root.glob("data/*")]):
        if f.is_file():
            h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.digest()


def _module_file_text(package: str, name: str) -> str:
    """The text of one file of an installed package, found without importing the package.

    The cache key must change when pydantic (which validated the cached rules) changes version,
    but importing pydantic costs ~0.2 s that a start from the cache otherwise never pays.
    """
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return "?"
    try:
        return (Path(next(iter(spec.submodule_search_locations))) / name).read_text(encoding="utf-8")
    except OSError:
        return "?"


def _env_key() -> bytes:
    """Digest of everything a built state depends on but the rule files: the package's code and
    data, the versions of Python and of the libraries the build uses. States of the same ``_env_key``
    differ only in their rules, so one can be the base of another's delta build."""
    import opencc

    from .verify import import_jieba

    jieba = import_jieba()

    from . import __version__

    h = hashlib.sha256(_STATE_FORMAT + b"\0")
    for part in (__version__, sys.version, jieba.__version__, getattr(opencc, "__version__", "?"),
                 _module_file_text("pydantic", "version.py")):
        h.update(str(part).encode() + b"\0")
    h.update(_code_digest())
    return h.digest()


def _state_key(layers: list[list[tuple[str, str]]], defaults: bool, env: bytes | None = None) -> str:
    """Content hash of everything the built state depends on: rule files, package code, versions."""
    h = hashlib.sha256(_env_key() if env is None else env)
    h.update(b"defaults\0" if defaults else b"no-defaults\0")
    for layer in layers:
        h.update(b"\1layer\0")
        for name, text in layer:
            h.update(name.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()


def _regex_recipe(rx: re.Pattern[str]) -> tuple[Any, ...]:
    """What ``re`` hands to ``_sre.compile`` for ``rx`` (CPython's compiled pattern code).

    Compiling a few hundred rule patterns (parse + code generation, in Python) is the largest part
    of a start from the cache; the code itself depends only on the pattern and the interpreter
    version (part of the cache key), so the cache keeps it. :func:`_regex_from_recipe` falls back to
    ``re.compile`` whenever this internal route is unavailable or disagrees.
    """
    import re._compiler as rc
    import re._parser as rp

    p = rp.parse(rx.pattern, rx.flags)
    code = [int(c) for c in rc._code(p, rx.flags)]  # plain ints (the opcodes are named int subclasses)
    groupindex = dict(p.state.groupdict)
    indexgroup: list[str | None] = [None] * p.state.groups
    for k, i in groupindex.items():
        indexgroup[i] = k
    return (rx.pattern, rx.flags | p.state.flags, code, p.state.groups - 1, groupindex, tuple(indexgroup))


#: rebuilds a pattern from its cached recipe (``re.compile`` when the interpreter refuses the code)
_regex_from_recipe = from_recipe


def _split_strings(joined: str) -> list[str]:
    return joined.split("\0")


def _frozenset_of_strings(joined: str) -> frozenset[str]:
    return frozenset(joined.split("\0"))


def _joinable(items: Any) -> bool:
    """A large collection of strings without NUL: pickled as one joined string (unpickling 100,000
    short strings one by one costs ~3x more than one split)."""
    return len(items) >= 1000 and all(type(x) is str and "\0" not in x for x in items)


class _StatePickler(pickle.Pickler):
    def __init__(self, *args: Any, recipes: dict[str, tuple[Any, ...]] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._recipes = recipes or {}

    def reducer_override(self, obj: Any) -> Any:
        if type(obj) is re.Pattern:
            recipe = self._recipes.get(obj.pattern)  # kept by the build (same parse), else made here
            if recipe is not None and recipe[1] == obj.flags:
                return _regex_from_recipe, recipe
            try:
                return _regex_from_recipe, _regex_recipe(obj)
            except Exception:  # noqa: BLE001 - pickle it the ordinary way (re.compile on load)
                return NotImplemented
        if type(obj) is list and obj and type(obj[0]) is str and _joinable(obj):
            return _split_strings, ("\0".join(obj),)
        if type(obj) is frozenset and len(obj) >= 1000 and _joinable(obj):
            return _frozenset_of_strings, ("\0".join(obj),)
        return NotImplemented


def _seal(magic: bytes, payload: bytes) -> bytes:
    """A cache file's bytes: ``magic``, the payload's SHA-256, the payload (see :func:`_unseal`)."""
    return magic + hashlib.sha256(payload).digest() + payload


def _unseal(magic: bytes, blob: bytes) -> memoryview | None:
    """The payload of a :func:`_seal`-ed file (a view of ``blob``: a 21 MB state is not copied), or
    None if it is foreign, truncated or damaged."""
    n = len(magic)
    if len(blob) < n + 32 or blob[:n] != magic:
        return None
    payload = memoryview(blob)[n + 32 :]
    if hashlib.sha256(payload).digest() != blob[n : n + 32]:
        return None
    return payload


def _read_state(cache_dir: str, key: str | None, path: str | None = None, env: bytes | None = None) -> dict[str, Any] | None:
    """The cached state for ``key`` (or, with ``key`` None, the state in ``path`` if it was built
    with the code and versions of ``env``: a delta build's base), or None if absent, foreign,
    truncated or corrupt."""
    if path is None:
        path = os.path.join(cache_dir, f"{(key or '')[:32]}.state")
    try:
        with open(path, "rb") as f:
            if env is not None and f.read(len(_MAGIC) + 64)[len(_MAGIC) + 32 :] != env:
                return None  # another version's state: not read further
            f.seek(0)
            blob = f.read()
    except OSError:
        return None
    payload = _unseal(_MAGIC, blob)
    if payload is None or (env is not None and payload[:32] != env):
        return None
    try:
        state = pickle.loads(payload[32:])
    except Exception:  # noqa: BLE001 - written by another version of the code: rebuild
        return None
    if not isinstance(state, dict) or (key is not None and state.get("key") != key):
        return None
    return state


def _write_state(
    cache_dir: str, key: str, checker: Checker, keep: int = _KEEP, strict: bool = False, *,
    env: bytes | None = None, files: list[list[FileRules]] | None = None,
) -> None:
    """Store ``checker``'s build result atomically (temp file + rename), keeping the ``keep`` newest
    states of the directory; never raises unless ``strict``. ``files``: what each rule file gave
    (``build_rule_set(files_out=)``), so that a delta build can take its rules instead of parsing
    an unchanged file again; the state then also keeps what teaching jieba changed."""
    try:
        seg = checker.segmenter
        compiled = checker.compiled()
        recipes, compiled = compiled.recipes, dataclasses.replace(compiled, recipes=None)  # recipes travel in the patterns
        freq, total = seg.dictionary() if isinstance(seg, _verify.JiebaSegmenter) else (None, None)
        state = {
            "key": key,
            "rules": checker.rules,
            "mapping": dict(checker.normalizer.mapping),
            "rebus": dict(checker.normalizer.rebus),
            "fold": checker.fold_index(),
            "compiled": compiled,
            # jieba's dictionary as it was before the rule words were taught, packed, and what
            # teaching set (a start makes the one from the other; a delta build teaches the base anew)
            "jieba": None,
            "jieba_taught": None,
            # for a delta build from this state (see _delta_checker)
            "files": files,
            # the near-syllable table (static data, in the env key): a delta build reads it (~25 ms to make)
            "near": near_folds(),
        }
        if freq is not None:
            state["jieba"], state["jieba_taught"] = _jieba_state(freq, total, getattr(seg, "undo", None))
        buf = io.BytesIO(env if env is not None else _env_key())
        buf.seek(0, io.SEEK_END)
        _StatePickler(buf, protocol=pickle.HIGHEST_PROTOCOL, recipes=recipes).dump(state)
        payload = buf.getvalue()
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".tmp-", suffix=".state")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(_seal(_MAGIC, payload))
            os.replace(tmp, os.path.join(cache_dir, f"{key[:32]}.state"))
        except BaseException:
            os.unlink(tmp)
            raise
        files = sorted(Path(cache_dir).glob("*.state"), key=lambda f: f.stat().st_mtime, reverse=True)
        for old in files[keep:]:
            old.unlink(missing_ok=True)
    except Exception:  # noqa: BLE001 - a cache that cannot be written only costs the next start
        if strict:
            raise


def _jieba_state(
    freq: Mapping[str, int], total: int, undo: tuple[dict[str, int | None], int] | None
) -> tuple[bytes | None, tuple[dict[str, int], int] | None]:
    """A taught dictionary as the state keeps it: its base (untaught) packed, and the entries
    teaching set with the taught total; ``(None, None)`` when the base cannot be told apart (no
    ``undo``). ``freq``: a dict, or a Lexicon whose overlay is what teaching set."""
    if undo is None:
        return None, None
    before, base_total = undo
    if _native is not None and type(freq) is _native.Lexicon:
        words, counts = freq.packed()
        return marshal.dumps((words, counts, base_total)), (freq.overlay(), total)
    base = {k: v for k, v in freq.items() if k not in before}
    base.update((k, v) for k, v in before.items() if v is not None)
    overlay = {k: freq[k] for k, v in before.items() if k in freq and freq[k] != v}
    return _pack_dictionary(base, base_total), (overlay, total)


def _taught_dictionary(state: dict[str, Any]) -> tuple[Mapping[str, int], int, int] | None:
    """``(freq, taught total, base total)`` from a state's jieba fields: the base dictionary (see
    _base_dictionary) with the entries teaching set."""
    try:
        overlay, total = state["jieba_taught"]
    except (TypeError, ValueError, KeyError):
        return None
    base = _base_dictionary(state.get("jieba"))
    if base is None or type(overlay) is not dict or type(total) is not int:
        return None
    freq, base_total = base
    for k, v in overlay.items():
        freq[k] = v  # type: ignore[index]
    return freq, total, base_total


def _pack_dictionary(freq: Mapping[str, int], total: int) -> bytes | None:
    """jieba's prefix dictionary as (words joined by newlines, frequencies as an int64 array, total):
    loads in ~0.23 s instead of ~0.30 s for a marshalled dict of its 500,000 entries."""
    words = "\n".join(freq)
    if words.count("\n") != len(freq) - 1:
        return None  # a word with a newline (cannot happen in jieba's format): not cached
    return marshal.dumps((words, array("q", freq.values()).tobytes(), total))


def _base_dictionary(blob: object) -> tuple[Mapping[str, int], int] | None:
    """``(freq, total)`` of a packed dictionary (see _pack_dictionary), or None if it is not one:
    with the C extension a ``Lexicon`` over the packed words (~40 ms, no object per word), else a
    dict (~0.3 s for jieba's 511,847 entries). Either takes the entries teaching sets."""
    try:
        words, counts, total = marshal.loads(blob)  # type: ignore[arg-type]
        if type(total) is not int or type(words) is not str or type(counts) is not bytes:
            return None
        if _native is not None:
            return _native.Lexicon(words, counts), total
        values = array("q", counts)
        keys = words.split("\n") if words else []
    except (TypeError, ValueError, EOFError):
        return None
    if len(keys) != len(values):
        return None
    return dict(zip(keys, values)), total


def _checker_from_state(
    state: dict[str, Any], backend: str, model: ParaphraseModel | None = None, pause: Callable[[], None] | None = None
) -> Checker | None:
    rules = state["rules"]
    compiled = state["compiled"]
    # (whether ``compiled`` fits ``rules`` is checked by Checker, which rebuilds when it does not)
    if not isinstance(rules, RuleSet) or not isinstance(compiled, CompiledRules):
        return None
    normalizer = Normalizer.from_mapping(state["mapping"], state.get("rebus"))
    if state["jieba"] is None:
        return None
    fold_index = state.get("fold")
    # the automata of the state's folded keys build in threads of their own (see MatcherBuild)
    # while jieba's dictionary is made here; Checker uses them if the index fits its rules
    matchers = _start_matchers(fold_index, backend)
    taught = _taught_dictionary(state)
    if taught is None:
        return None
    if pause is not None:
        pause()
    freq, total, _base_total = taught
    segmenter = _verify.JiebaSegmenter.taught(freq, total)
    checker = Checker(rules, normalizer=normalizer, segmenter=segmenter, backend=backend, compiled=compiled,
                      fold=fold_table() if fold_index is None else None,
                      near_fold=near_folds() if fold_index is None else None, fold_index=fold_index, model=model,
                      pause=pause, matchers=matchers)
    if fold_index is not None and checker.fold_index() is None:
        return None  # a folding index that does not fit these keys: rebuild
    return checker


def _start_matchers(fold_index: Any, backend: str) -> dict[Source, MatcherBuild] | None:
    """Builds of the automata of a state's folded keys, started now (see MatcherBuild), or None when
    the index has not the expected shape (Checker then checks it and builds what it needs)."""
    try:
        _table, by_source = fold_index
        return {s: MatcherBuild(fkeys, backend) for s, (fkeys, _groups, _entries) in by_source.items()
                if isinstance(s, Source) and type(fkeys) is list}
    except (TypeError, ValueError, AttributeError):
        return None


def state_path(
    paths: Sequence[str | os.PathLike[str]] = (), *, defaults: bool = True, cache_dir: str | os.PathLike[str] | None = None
) -> Path:
    """The start-up cache file :func:`load_checker` reads and writes for these rules (``cache_dir``:
    None for :func:`default_cache_dir`)."""
    key = _state_key(_layers(paths, defaults), defaults)
    return Path(default_cache_dir() if cache_dir is None else os.fspath(cache_dir)) / f"{key[:32]}.state"


def load_checker(
    paths: Sequence[str | os.PathLike[str]] = (),
    *,
    defaults: bool = True,
    backend: str = DEFAULT_BACKEND,
    cache_dir: str | os.PathLike[str] | None = DEFAULT_CACHE,
    model: bool = True,
    pause: Callable[[], None] | None = None,
    prebuilt: str | os.PathLike[str] | None = PACKAGED,
    save: str = SAVE_BACKGROUND,
) -> Checker:
    """Load the default rules (plus ``paths``, which extend or override them) and build a checker.

    ``cache_dir`` keeps the build result (validated rules, normaliser table, automaton keys and
    entries, jieba's dictionary taught the rule words) in a file named by the content hash of the
    rule files, this package's code and the versions it depends on, so a restart with unchanged
    rules skips parsing, validation and the build (the automata are rebuilt from the cached keys).
    Any change to a rule file or the package gives a new key; a truncated or corrupt file fails
    its checksum and is rebuilt. ``DEFAULT_CACHE``: :func:`default_cache_dir`; ``None``: no cache.
    jieba's parsed base dictionary (``jieba.cache``, jieba's own format) is looked up in the cache
    directory and then in the temporary directory, and written to the cache directory when missing.
    ``model``: also load the paraphrase model, which reports through the rule set's classifier
    rules (``classifier = true``) on lines no other rule flagged; ``False``: rules only.
    ``pause``: called between the long steps of loading and building, each a single call into C or
    Rust that holds the interpreter lock throughout (reading the state, building an automaton,
    writing the state): a caller loading in a thread (the sidecar's reload) lets its event loop
    catch up there. Nothing else depends on it.
    ``prebuilt``: a directory of read-only states made ahead of time, read when ``cache_dir`` has
    none for this key (``PACKAGED``: :data:`PREBUILT_DIR`, where ``pip install`` puts the state of
    the default packs, so that even the first start of a fresh container skips the build; ``None``:
    none). A state is used only under its exact key (rule files, package code, versions), so a
    prebuilt state never stands in for other rules or another version; nothing is written there.
    The directory's pattern analyses (``patterns.memo``, the default packs' patterns, keyed by the
    package's code) serve any other build too: custom rules on top of the default packs analyse
    only their own patterns, even on a first start with an empty cache.
    ``save``: after a build, write the state to ``cache_dir`` in a child process and return at once
    (``SAVE_BACKGROUND``, the default, where ``os.fork`` exists), or before returning (``SAVE_NOW``:
    the file is there when this returns, as ``compliance rules build`` needs).
    """
    with _collector_paused():
        return _load_checker(paths, defaults, backend, cache_dir, model, pause, prebuilt, save)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a checker is read or built, then as it was before.

    A build makes a few hundred thousand lists, tuples and dicts and keeps nearly all of them; each
    700 of them started a young collection, and the old collections walked jieba's dictionary and
    everything built so far again and again: ~15% of a build, for no garbage (the build makes no
    cycles to collect). The collector's state is restored however the build ends.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _load_checker(
    paths: Sequence[str | os.PathLike[str]],
    defaults: bool,
    backend: str,
    cache_dir: str | os.PathLike[str] | None,
    model: bool,
    pause: Callable[[], None] | None,
    prebuilt: str | os.PathLike[str] | None,
    save: str,
) -> Checker:
    if save not in (SAVE_BACKGROUND, SAVE_NOW):
        raise UsageError(f"save must be {SAVE_BACKGROUND!r} or {SAVE_NOW!r}, not {save!r}")
    pause = pause or _no_pause
    layers = _layers(paths, defaults)
    pm = paraphrase_model() if model else None
    cdir = None if cache_dir is None else default_cache_dir() if cache_dir == DEFAULT_CACHE else os.fspath(cache_dir)
    pdir = None if prebuilt is None else str(PREBUILT_DIR) if prebuilt == PACKAGED else os.fspath(prebuilt)
    env = _env_key() if cdir is not None or pdir is not None else b""
    key = _state_key(layers, defaults, env) if env else ""
    for directory in (cdir, pdir):
        if directory is None:
            continue
        state = _read_state(directory, key, env=env)
        pause()
        if state is None:
            continue
        try:
            checker = _checker_from_state(state, backend, pm, pause)
        except Exception:  # noqa: BLE001 - an unusable state is rebuilt
            checker = None
        if checker is not None:
            return checker
    for directory in (pdir, cdir):  # the install's analyses (the default packs'), then the last build's
        if directory is not None:  # read when a pattern is first analysed (a delta build asks for few)
            defer_seeds(partial(_patterns_in, directory))
    files: list[list[FileRules]] = []
    checker = None
    for base in _delta_bases(cdir, pdir, env):  # the last build's state, then the install's
        pause()
        try:
            checker, rule_set = _delta_checker(base, layers, backend, pm, pause, files)
            break
        except _delta.Unpatchable:
            files.clear()
    if checker is None:
        rule_set = build_rule_set(layers, files_out=files)
        pause()
        checker = build_checker(rule_set, backend=backend, jieba_cache_dir=cdir, model=pm, pause=pause)
    if cdir is not None:
        pause()
        _save(cdir, key, checker, rule_set, save, env, files)
    return checker


#: How many of a cache directory's newest states a delta build tries as its base (each costs a read).
_DELTA_BASES = 1


def _delta_bases(cdir: str | None, pdir: str | None, env: bytes) -> Iterator[dict[str, Any]]:
    """States that may serve as a delta build's base: built by this code and these versions, with
    the per-file rules and jieba's teaching recorded. The cache directory's newest first (the last
    build: a restart after an edit changes one file of it), then the install's prebuilt states (the
    default packs: a custom pack on top of them adds its rules)."""
    if not env:
        return
    for directory, limit in ((cdir, _DELTA_BASES), (pdir, None)):
        if directory is None:
            continue
        try:
            paths = sorted(Path(directory).glob("*.state"), key=lambda f: f.stat().st_mtime, reverse=True)
        except OSError:
            continue
        for path in paths[:limit]:
            state = _read_state(directory, None, path=str(path), env=env)
            if state is not None and state.get("files") and state.get("jieba_taught") is not None:
                yield state


def _delta_checker(
    base: dict[str, Any], layers: list[list[tuple[str, str]]], backend: str, model: ParaphraseModel | None,
    pause: Callable[[], None], files: list[list[FileRules]],
) -> tuple[Checker, RuleSet]:
    """A checker for ``layers`` patched from the build in ``base`` (see delta.py): the files the
    base parsed are not parsed again, jieba's base dictionary is taught the new rules' words, and
    only what the changed rules touch is redone. Raises delta.Unpatchable when the base does not
    serve (the caller builds in full), RuleError for invalid rules as a full build would."""
    base_rules, compiled, fold = base["rules"], base["compiled"], base.get("fold")
    if not isinstance(base_rules, RuleSet) or not isinstance(compiled, CompiledRules):
        raise _delta.Unpatchable("not a state of this code")
    try:
        known = {(name, fd): rules for layer in base["files"] for name, fd, rules in layer}
        old_overlay, _ = base["jieba_taught"]
    except (TypeError, ValueError, KeyError):
        raise _delta.Unpatchable("no usable file list or dictionary") from None
    untaught = _base_dictionary(base["jieba"])
    if untaught is None:
        raise _delta.Unpatchable("no usable dictionary")
    rule_set = build_rule_set(layers, known=known, files_out=files)
    base_ids = {id(x) for x in base_rules.rules}
    if not any(id(r) in base_ids for r in rule_set.rules):
        raise _delta.Unpatchable("no rule in common")
    pause()
    freq, base_total = untaught  # jieba's dictionary before any teaching, taught the new words below
    normalizer = Normalizer.from_mapping(base["mapping"], base.get("rebus"))
    norm = normalizer.normalize
    terms = {norm(t) for r in rule_set.rules for t in r.terms}
    protected = {norm(x) for r in rule_set.rules for x in r.exceptions}
    segmenter = JiebaSegmenter(sorted(terms), sorted(protected), dictionary=(freq, base_total))  # type: ignore[arg-type]
    before = segmenter.undo[0] if segmenter.undo is not None else {}

    def untaught(w: str) -> int:
        f = before[w] if w in before else freq.get(w, 0)
        return f or 0

    # the words that are words (frequency above 0) in one of the two taught dictionaries only: a
    # homophone spelling that is a word is skipped, so they may change other rules' spellings
    changed = {w for w in old_overlay.keys() | before.keys()
               if len(w) >= 2 and (old_overlay.get(w, untaught(w)) > 0) != (freq.get(w, 0) > 0)}
    pause()
    near = base.get("near")
    if not isinstance(near, dict):
        near = near_folds()  # a state written before it kept the table
    romanize = pinyin_table("".join(terms))
    compiled, fold_index = _delta.patch(
        compiled, fold, base_rules, rule_set, normalize=norm, norm_table=normalizer.table,
        romanize=romanize, homophones=homophone_table(), lexicon=freq, lexicon_changed=changed, near_fold=near,
    )
    matchers = _start_matchers(fold_index, backend)  # built beside the rest of the checker
    pause()
    checker = Checker(rule_set, normalizer=normalizer, segmenter=segmenter, backend=backend, romanize=romanize,
                      homophones=homophone_table(), lexicon=freq, compiled=compiled,
                      fold=fold_table() if fold_index is None else None, near_fold=near if fold_index is None else None,
                      fold_index=fold_index, model=model, pause=pause, matchers=matchers)
    if fold_index is not None and checker.fold_index() is None:
        raise _delta.Unpatchable("the patched folding index does not fit")  # cannot happen: a full build then
    return checker, rule_set


def _save(
    cache_dir: str, key: str, checker: Checker, rule_set: RuleSet, save: str, env: bytes | None = None,
    files: list[list[FileRules]] | None = None,
) -> None:
    """Write the state and the pattern analyses to ``cache_dir``: now, or (``SAVE_BACKGROUND``,
    where ``os.fork`` exists) in a child process, so that the caller is ready ~0.4 s sooner.

    The child is a copy of this process at the moment the build ended: it pickles the same objects
    the caller now goes on using (copy-on-write; the caller's memory is not touched), writes the
    files atomically as the caller would have, and leaves with ``os._exit`` (no atexit handlers, no
    buffered output flushed twice). It first points the standard streams at the null device and
    closes every other inherited descriptor (a server's listening socket must not outlive the server,
    a pipe reading the caller's output must end with the caller), restores the default actions of
    SIGINT, SIGTERM and SIGALRM (a signal meant for the caller's handlers ends it) and ends after
    ``_WRITER_SECONDS`` whatever happens. A daemon thread of the caller, named "livestream-compliance
    state writer", collects its exit status; a caller that leaves before the child is done waits
    for it at exit, up to ``_WRITER_WAIT_AT_EXIT`` seconds (a one-shot `compliance check` after a
    rule edit would otherwise leave the next start without the state). Saving is best effort either
    way (see _write_state): a state that was not written only costs the next start its build.
    """
    if save == SAVE_BACKGROUND and hasattr(os, "fork"):
        try:
            pid = os.fork()
        except OSError:
            pid = -1  # no process to spare: write it here
        if pid == 0:
            try:
                _detach()
                _write_state(cache_dir, key, checker, env=env, files=files)
                _write_patterns(cache_dir, rule_set)
            finally:
                os._exit(0)
        if pid > 0:
            reaper = threading.Thread(target=_reap, args=(pid,), name="livestream-compliance state writer", daemon=True)
            reaper.start()
            # a process that ends right after its start (`compliance check` after a rule edit) waits
            # for the state before leaving, so that the next start finds it
            atexit.register(reaper.join, _WRITER_WAIT_AT_EXIT)
            return
    _write_state(cache_dir, key, checker, env=env, files=files)
    _write_patterns(cache_dir, rule_set)


def _detach() -> None:
    """In the writing child (see _save): standard streams on the null device (a pipe the caller's
    output goes to ends with the caller), no other inherited descriptor, default signal actions."""
    import signal

    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    if null > 2:
        os.close(null)
    try:
        signal.set_wakeup_fd(-1)
    except (ValueError, OSError):
        pass
    for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGALRM", signal.SIGTERM)):
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (ValueError, OSError):
            pass
    if hasattr(signal, "alarm"):
        # a lock another thread of the caller held at the fork would leave the writer waiting forever:
        # it ends after _WRITER_SECONDS whatever happens (the state is written by a rename, or not at all)
        signal.alarm(_WRITER_SECONDS)
    os.closerange(3, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536)


#: the longest a state-writing child may run (see _detach); writing the default packs' state takes ~0.5 s
_WRITER_SECONDS = 600
#: How long a process leaving while its state writer still runs waits for it (then leaves anyway).
_WRITER_WAIT_AT_EXIT = 10.0


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except OSError:  # collected elsewhere (a SIGCHLD handler ignoring children)
        pass


# --------------------------------------------------------------------------- pattern analyses
#: The analysed and compiled rule patterns of the last build (literals.export_prepared), so that a
#: build after a rule change analyses only the patterns that changed: ~1.6 s of the default packs'
#: ~5 s build is the analysis of their 873 patterns. Keyed by the package's code and the interpreter.
_PATTERNS_FILE = "patterns.memo"
_PATTERNS_MAGIC = b"LSCPATT1"


def _patterns_key() -> bytes:
    return hashlib.sha256(_code_digest() + sys.version.encode()).digest()


def _patterns_in(cache_dir: str) -> dict[str, Any]:
    """The cache directory's pattern analyses (empty when absent, foreign, corrupt or from other
    code). Never raises."""
    try:
        with open(os.path.join(cache_dir, _PATTERNS_FILE), "rb") as f:
            blob = f.read()
        payload = _unseal(_PATTERNS_MAGIC, blob)
        if payload is None or payload[:32] != _patterns_key():
            return {}
        got = pickle.loads(payload[32:])
        return got if isinstance(got, dict) else {}
    except Exception:  # noqa: BLE001 - a pattern file that cannot be used only costs the analysis
        return {}


def _write_patterns(cache_dir: str, rule_set: RuleSet) -> None:
    """Store the analyses of ``rule_set``'s patterns atomically; never raises."""
    try:
        payload = pickle.dumps(export_prepared(p for r in rule_set.rules for p in r.patterns), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - a cache that cannot be written only costs the next build
        return
    _write_atomic(cache_dir, _PATTERNS_FILE, _seal(_PATTERNS_MAGIC, _patterns_key() + payload))
