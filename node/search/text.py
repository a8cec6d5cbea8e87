"""Text normalisation, tokenising, query parsing and snippets.

All folding happens here, in Python, before text reaches either engine, so SQLite and PostgreSQL
index and match exactly the same tokens: NFKD, combining marks dropped, casefolded (ß → ss), and a
few letters that do not decompose mapped by hand (ø → o, æ → ae, œ → oe, ł → l, đ → d, þ → th, …).
A token is a run of letters and digits (underscore is a separator, as in FTS5's unicode61).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field

#: Letters that NFKD leaves alone but people type without the stroke/ligature.
_SPECIAL = str.maketrans(
    {"ø": "o", "æ": "ae", "œ": "oe", "ł": "l", "đ": "d", "þ": "th", "ð": "d", "ħ": "h", "ı": "i", "ŧ": "t"}
)
MAX_TOKEN_CHARS = 64
MAX_CLAUSES = 16
SNIPPET_CHARS = 200


#: Combining marks (combining class ≠ 0) lie in the first two planes: the others hold CJK ideographs,
#: tags, variation selectors and private use, all of class 0 (tests/unit/search/test_search_text.py
#: checks this against a scan of every code point of the running Python's Unicode database).
COMBINING_SCAN_END = 0x20000


def _combining_class(end: int = COMBINING_SCAN_END) -> re.Pattern[str]:
    """A character class of every combining mark below ``end``, built once at import (scanning every
    code point instead cost each ``ncc`` command ~60 ms at start)."""
    ranges: list[str] = []
    start = prev = -2
    for cp in range(end):
        if unicodedata.combining(chr(cp)):
            if cp != prev + 1:
                if start >= 0:
                    ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(prev))}")
                start = cp
            prev = cp
    ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(prev))}")
    return re.compile("[" + "".join(ranges) + "]+")


_COMBINING = _combining_class()
_TOKEN = re.compile(r"[^\W_]+")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Fold ``text`` for matching: accents dropped, casefolded, special letters mapped.

    The second NFKD/casefold pass catches characters that casefolding decomposes (ǰ) or that
    compatibility decomposition turns upper-case (ℌ).
    """
    if text.isascii():
        return text.lower()
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold()).casefold()
    return _COMBINING.sub("", folded).translate(_SPECIAL)


def tokens(text: str) -> list[str]:
    """Return the normalised tokens of ``text``, each cut to :data:`MAX_TOKEN_CHARS`.

    Folded a whitespace-separated word at a time through a cache: documents repeat their words
    (vocabulary labels, common terms), and folding is the costly part of indexing (~6× faster on
    the benchmark corpus). Equal to folding the whole text: every step of :func:`normalize` maps
    characters one by one, except canonical reordering, which never crosses a whitespace character
    (a starter); and whitespace separates tokens either way.
    """
    out: list[str] = []
    for word in text.split():
        out += _word_tokens(word)
    return out


def tokens_of_whole_text(text: str) -> list[str]:
    """:func:`tokens` without the per-word cache (the definition it must equal; used by tests)."""
    return [token[:MAX_TOKEN_CHARS] for token in _TOKEN.findall(normalize(text))]


@functools.lru_cache(maxsize=1 << 16)
def _word_tokens(word: str) -> tuple[str, ...]:
    return tuple(token[:MAX_TOKEN_CHARS] for token in _TOKEN.findall(normalize(word)))


@dataclass(frozen=True)
class Clause:
    """One required part of a query: a word (one token), or a phrase (several, adjacent, in order).

    ``prefix`` marks the last token as a prefix (the word the user is still typing). ``text`` is
    what the user typed for it (for ``ignored_terms``); it takes no part in comparisons.
    """

    tokens: tuple[str, ...]
    prefix: bool = False
    text: str = field(default="", compare=False)


#: Function words of the main EU languages (en, de, fr, es, it, nl), dropped from queries so that
#: a question ("who does post-quantum cryptography for energy in Europe?") reads as its keywords.
#: Written as people type them and folded at import like indexed text. Left out on purpose: words
#: that are also terms of this registry's field ("it" = IT, "us", "can" = CAN bus, "ot").
_STOP_WORDS_TYPED = """
    a an the and or nor of for to in on at by with from as into about over under than then so
    is are was were be been being do does did doing has have had having will would shall should
    may might must could who whom whose what which where when why how that this these those there
    here i me my we our you your he she they them their its not no any some all each such also
    der die das den dem des ein eine einer eines einem einen und oder für von vom zu zum zur mit
    im am an auf aus bei nach über unter ist sind war wer was wo wie welche welcher welches auch
    nicht kein keine wir ich sie er es
    le la les l un une des du de d et ou où pour par avec dans en sur au aux qui que qu quoi
    quel quelle quels quelles est sont ce cette ces il elle ils elles nous vous je ne pas se sa
    son ses leur leurs
    el los las unos unas del al y o u para por con sobre quien quién quienes cual cuál cuales
    donde dónde como cómo son su sus lo
    il lo gli uno di della dei degli delle da dal dalla nel nella per tra fra e ed che chi cosa
    dove come è sono non si dell nell dall sull
    het een en of van voor met op aan bij uit naar door wie wat waar hoe welke zijn niet dat deze
    dit ook
"""
STOP_WORDS: frozenset[str] = frozenset(
    token for word in _STOP_WORDS_TYPED.split() for token in tokens(word)
)
_EDGE_JUNK = re.compile(r"^[\W_]+|[\W_]+$")
_APOSTROPHE = re.compile(r"['’]")


def _without_elision(word: str) -> str:
    """``word`` without an elided function word in front ("l'energia" → "energia", "d’Europe" →
    "Europe"), which would otherwise make the word a two-token phrase."""
    parts = _APOSTROPHE.split(word, maxsplit=1)
    if len(parts) == 2 and tokens(parts[1]):
        head = tokens(parts[0])
        if len(head) == 1 and head[0] in STOP_WORDS:
            return parts[1]
    return word


@dataclass(frozen=True)
class ParsedQuery:
    """The clauses of a query and the words left out of them as function words."""

    clauses: tuple[Clause, ...]
    stop_words: tuple[str, ...] = ()


def parse_query(q: str) -> tuple[Clause, ...]:
    """The clauses of ``q`` (see :func:`parse_terms`). Never raises."""
    return parse_terms(q).clauses


#: A query that matches nothing is relaxed only when it reads as a question — one word absent from
#: every record the reader may see, at least this many words still present — so that "… in Europe?"
#: does not empty the answer, while a name of several words none of which the reader may see (a
#: hidden record's, a misspelt one's) still finds nothing rather than whatever shares a common word.
RELAX_MIN_PRESENT = 3


def relaxable(absent: int, clauses: int) -> bool:
    """Whether a query of ``clauses`` clauses, ``absent`` of which no visible record has, is run again
    without them (see :data:`RELAX_MIN_PRESENT`)."""
    return absent == 1 and clauses - absent >= RELAX_MIN_PRESENT


def parse_terms(q: str) -> ParsedQuery:
    """Turn free text into clauses, all of which must match. Never raises.

    Double quotes delimit phrases (an unterminated quote runs to the end); a bare word that folds
    into several tokens ("post-quantum") is a phrase too. Every other character is text. The last
    bare word is a prefix. Bare one-token words in :data:`STOP_WORDS` are left out (and reported)
    unless nothing else would remain; words inside quotes are always kept. At most
    :data:`MAX_CLAUSES` clauses are kept; duplicates are dropped.
    """
    clauses: list[Clause] = []
    stop: list[int] = []  # positions of bare stop words in ``clauses``
    segments = q.split('"')
    last_bare: int | None = None
    for index, segment in enumerate(segments):
        if index % 2:  # inside quotes
            phrase = tuple(tokens(segment))
            if phrase:
                clauses.append(Clause(phrase, text=" ".join(segment.split()) or " ".join(phrase)))
            last_bare = None
            continue
        for word in segment.split():
            word = _without_elision(word)
            word_tokens = tuple(tokens(word))
            last_bare = None
            if word_tokens:
                if len(word_tokens) == 1 and word_tokens[0] in STOP_WORDS:
                    stop.append(len(clauses))
                clauses.append(Clause(word_tokens, text=_EDGE_JUNK.sub("", word) or word))
                last_bare = len(clauses) - 1
    # Only the very last word of q is still being typed (not one followed by a phrase or by junk).
    if last_bare is not None:
        held = clauses[last_bare]
        clauses[last_bare] = Clause(held.tokens, prefix=True, text=held.text)
    dropped: list[str] = []
    if stop and len(stop) < len(clauses):
        dropped = [clauses[i].text for i in stop]
        skip = set(stop)
        clauses = [clause for i, clause in enumerate(clauses) if i not in skip]
    unique: list[Clause] = []
    for clause in clauses:
        if clause not in unique:
            unique.append(clause)
    return ParsedQuery(tuple(unique[:MAX_CLAUSES]), tuple(dict.fromkeys(dropped)))


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    return normalize(char)


def _folded_with_offsets(text: str) -> tuple[str, list[int]]:
    """Fold ``text`` character by character; ``offsets[i]`` is the source index of folded char i."""
    if text.isascii():
        return text.lower(), list(range(len(text)))
    parts: list[str] = []
    offsets: list[int] = []
    for index, char in enumerate(text):
        folded = _fold_char(char)
        parts.append(folded)
        offsets.extend([index] * len(folded))
    return "".join(parts), offsets


@functools.lru_cache(maxsize=1 << 16)
def _fold_word(word: str) -> tuple[str, tuple[int, ...] | None]:
    """``word`` folded character by character, and where each folded character comes from in it
    (None when every character folds to exactly one: the offsets are then the identity)."""
    if word.isascii():
        return word.lower(), None
    parts = [_fold_char(char) for char in word]
    folded = "".join(parts)
    if all(len(part) == 1 for part in parts):
        return folded, None
    return folded, tuple(index for index, part in enumerate(parts) for _ in part)


class _FoldedText:
    """:func:`_folded_with_offsets` of the text ``" ".join(words)``, a word at a time through a
    cache (snippets fold every hit's text: the per-character loop was ~0.15 ms per hit); the source
    offset is computed only for the one position asked. Equal to the character by character fold:
    a space folds to itself, so folding the words and joining them with spaces folds every
    character in turn."""

    def __init__(self, words: list[str]) -> None:
        self.words = words
        self.folds = [_fold_word(word) for word in self.words]
        self.folded = " ".join(fold for fold, _ in self.folds)

    def source(self, position: int) -> int:
        """The index in the source text of the folded character at ``position``."""
        folded_start = source_start = 0
        for word, (fold, offsets) in zip(self.words, self.folds, strict=True):
            within = position - folded_start
            if within <= len(fold):
                if within == len(fold):  # the separating space after the word
                    return source_start + len(word)
                return source_start + (within if offsets is None else offsets[within])
            folded_start += len(fold) + 1
            source_start += len(word) + 1
        raise IndexError(position)


def _clause_pattern(clause: Clause) -> str:
    """A regex over folded text matching ``clause`` as whole words (a prefix clause: its whole last word)."""
    pattern = r"(?<![^\W_])" + r"[\W_]+".join(re.escape(w) for w in clause.tokens)
    return pattern + (r"[^\W_]*" if clause.prefix else r"(?![^\W_])")


def _first_match(folded: str, clauses: tuple[Clause, ...]) -> int | None:
    best: int | None = None
    for clause in clauses:
        found = re.search(_clause_pattern(clause), folded)
        if found and (best is None or found.start() < best):
            best = found.start()
    return best


def match_spans(text: str, clauses: tuple[Clause, ...]) -> list[tuple[int, int]]:
    """Where ``clauses`` match in ``text``, folded as the index folds it: ``(start, end)`` offsets into
    ``text`` itself, sorted, overlapping ones merged (for highlighting a snippet)."""
    if not clauses or not text:
        return []
    folded, offsets = _folded_with_offsets(text)
    found: list[tuple[int, int]] = []
    for clause in clauses:
        for m in re.finditer(_clause_pattern(clause), folded):
            if m.end() > m.start():
                found.append((offsets[m.start()], offsets[m.end() - 1] + 1))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def snippet(text: str, clauses: tuple[Clause, ...], max_chars: int = SNIPPET_CHARS) -> str:
    """Return plain text of at most ``max_chars`` around the first match in ``text``.

    Without a match (or without clauses) the excerpt starts at the beginning of ``text``.
    Whitespace is collapsed; "…" marks a cut.
    """
    words = text.split()  # the same whitespace as _SPACE's \s (str.isspace), without the regex
    flat = " ".join(words)
    if len(flat) <= max_chars:
        return flat
    start = 0
    if clauses:
        text_folded = _FoldedText(words)
        position = _first_match(text_folded.folded, clauses)
        if position is not None:
            start = text_folded.source(position)
    if start > 0:
        # Show a little context before the match, beginning at a word boundary.
        lead = max(0, start - max_chars // 4)
        space = flat.find(" ", lead, start)
        start = lead if lead == 0 else (space + 1 if space >= 0 else start)
    prefix = "…" if start > 0 else ""
    budget = max_chars - len(prefix)
    if len(flat) - start <= budget:
        return prefix + flat[start:]
    budget -= 1  # room for the trailing ellipsis
    cut = flat.rfind(" ", start, start + budget + 1)
    end = cut if cut > start else start + budget
    return prefix + flat[start:end].rstrip() + "…"


def shown_text(text: str, restricted_text: str | None, restricted: bool) -> str:
    """The text a snippet is cut from: the public part, and the restricted part after it only for
    readers who may see it (anonymous snippets and highlights never come from restricted fields)."""
    return f"{text}\n{restricted_text}" if restricted and restricted_text else text
