"""Normalisation, tokenising, query parsing and snippets (pure functions)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from node.search.text import (
    _SPACE,
    MAX_CLAUSES,
    STOP_WORDS,
    Clause,
    _folded_with_offsets,
    _FoldedText,
    normalize,
    parse_query,
    parse_terms,
    snippet,
    tokens,
    tokens_of_whole_text,
)
from tests.conftest import examples


def test_accents_and_case_fold_both_ways() -> None:
    assert tokens("Sécurité") == tokens("securite") == ["securite"]
    assert tokens("ÖSTERREICH") == tokens("osterreich") == ["osterreich"]


def test_sharp_s_folds_to_ss() -> None:
    assert tokens("Straße") == tokens("STRASSE") == tokens("ẞtrasse".replace("ẞt", "St")) == ["strasse"]
    assert tokens("ẞ") == ["ss"]


def test_letters_without_decomposition_are_mapped() -> None:
    assert tokens("Ørsted Æbeltoft Œuvre Łódź Đurđevac Þórshöfn") == [
        "orsted",
        "aebeltoft",
        "oeuvre",
        "lodz",
        "durdevac",
        "thorshofn",
    ]


def test_national_scripts_are_kept_and_folded() -> None:
    assert tokens("Ασφάλεια") == tokens("ασφαλεια")
    assert tokens("Киберсигурност") == ["киберсигурност"]


def test_underscore_and_punctuation_separate_tokens() -> None:
    assert tokens("post-quantum_crypto, (AI)") == ["post", "quantum", "crypto", "ai"]


def test_long_tokens_are_cut() -> None:
    assert tokens("a" * 100) == ["a" * 64]


def test_last_bare_word_is_a_prefix() -> None:
    assert parse_query("energy kryptog") == (Clause(("energy",)), Clause(("kryptog",), prefix=True))


def test_phrases_and_hyphenated_words() -> None:
    assert parse_query('"post quantum" grid') == (Clause(("post", "quantum")), Clause(("grid",), prefix=True))
    assert parse_query('grid "post quantum"') == (Clause(("grid",)), Clause(("post", "quantum")))
    assert parse_query("post-quantum") == (Clause(("post", "quantum"), prefix=True),)


def test_unterminated_quote_runs_to_the_end() -> None:
    assert parse_query('"unterminated phrase') == (Clause(("unterminated", "phrase")),)


def test_stray_syntax_is_text() -> None:
    assert parse_query("NEAR(") == (Clause(("near",), prefix=True),)
    assert parse_query("a OR") == (Clause(("a",)), Clause(("or",), prefix=True))
    assert parse_query("'; DROP TABLE x; --") == (Clause(("drop",)), Clause(("table",)), Clause(("x",)))
    for junk in ("*", "-", "", "   ", '"', '""', "\u200b\ufffd", "^:(){}[]"):
        assert parse_query(junk) == ()


def test_clauses_are_deduplicated_and_capped() -> None:
    assert parse_query("grid grid") == (Clause(("grid",)), Clause(("grid",), prefix=True))
    assert len(parse_query(" ".join(f"w{i}" for i in range(100)))) == MAX_CLAUSES


@given(st.text())
def test_parse_never_raises_and_tokens_are_clean(text: str) -> None:
    for clause in parse_query(text):
        assert clause.tokens
        for token in clause.tokens:
            assert token and token.isalnum() and token == normalize(token)


def test_snippet_short_text_is_whole() -> None:
    assert snippet("  Sécurité \n des systèmes ", parse_query("securite")) == "Sécurité des systèmes"


def test_snippet_centres_on_first_match_with_original_accents() -> None:
    text = "Intro words. " * 40 + "Wir arbeiten für die Sicherheit in Österreich. " + "Tail. " * 40
    result = snippet(text, parse_query("osterreich"))
    assert "Österreich" in result
    assert len(result) <= 200
    assert result.startswith("…") and result.endswith("…")


def test_snippet_without_match_starts_at_the_beginning() -> None:
    text = "Description first. " + "x" * 500
    result = snippet(text, parse_query("nothing"))
    assert result.startswith("Description first.")
    assert len(result) <= 200


# Words mixing what folding treats specially: accents (precomposed and combining), ß/ẞ, ligatures,
# compatibility forms, letters mapped by hand, combining marks after whitespace, odd whitespace.
_TRICKY = st.sampled_from(
    list("aAéÉeé\u0301\u0308\u0327ßẞǰℌﬁ½①Øøæœłđþðħıŧ_-'’.") + [" ", "\t", "\n", "\u00a0", "\u2028", "\u3000", "\x1c"]
)


@settings(max_examples=examples(2000))
@given(st.one_of(st.text(), st.lists(_TRICKY, max_size=40).map("".join)))
def test_word_at_a_time_folding_equals_folding_the_whole_text(text: str) -> None:
    """tokens() folds word by word through a cache; it must give exactly the whole-text tokens."""
    assert tokens(text) == tokens_of_whole_text(text)


@settings(max_examples=examples(2000))
@given(st.one_of(st.text(), st.lists(_TRICKY, max_size=60).map("".join)))
def test_word_at_a_time_snippet_folding_equals_the_character_fold(text: str) -> None:
    """Snippets fold a word at a time through a cache; the folded text and every source offset must
    be those of folding character by character (the definition, ``_folded_with_offsets``)."""
    flat = _SPACE.sub(" ", text).strip()  # what snippet() folds: words separated by single spaces
    assert flat == " ".join(text.split())  # (how snippet() makes it)
    folded, offsets = _folded_with_offsets(flat)
    fast = _FoldedText(text.split())
    assert fast.folded == folded
    for position in range(len(folded)):
        assert fast.source(position) == offsets[position]


def test_snippet_of_long_accented_text_matches_after_multi_character_folds() -> None:
    text = "ﬁﬁ Straße ½ " * 30 + "Wir arbeiten für die Sicherheit in Österreich. " + "Tail. " * 40
    result = snippet(text, parse_query("osterreich"))
    assert "Österreich" in result and result.startswith("…") and result.endswith("…")
    shown = text.index(result[1:-1])  # an excerpt of the source, accents and ligatures kept
    assert 0 < text.index("Österreich") - shown <= 50  # a little context before the match


# --- function words (natural-language questions) --------------------------------------------------


def test_stop_words_are_left_out_of_a_question_and_reported() -> None:
    parsed = parse_terms("who does post-quantum cryptography for energy in Europe?")
    assert parsed.clauses == (
        Clause(("post", "quantum")),
        Clause(("cryptography",)),
        Clause(("energy",)),
        Clause(("europe",), prefix=True),
    )
    assert parsed.stop_words == ("who", "does", "for", "in")
    assert [clause.text for clause in parsed.clauses] == ["post-quantum", "cryptography", "energy", "Europe"]


def test_stop_words_of_each_language_are_folded_like_the_index() -> None:
    for question, kept in (
        ("Wer macht Kryptografie für Energie?", ("macht", "kryptografie", "energie")),
        ("Qui fait de la cryptographie où ?", ("fait", "cryptographie")),
        ("¿Quién hace criptografía para la energía?", ("hace", "criptografia", "energia")),
        ("Chi fa crittografia per l'energia?", ("fa", "crittografia", "energia")),
        ("Wie doet cryptografie voor de energiesector?", ("doet", "cryptografie", "energiesector")),
    ):
        assert tuple(c.tokens[0] for c in parse_query(question)) == kept, question
    assert {"fur", "ou", "quien", "e", "uber"} <= STOP_WORDS  # für, où, quién, è, über: folded


def test_a_query_of_stop_words_only_is_kept_whole() -> None:
    assert parse_query("the who") == (Clause(("the",)), Clause(("who",), prefix=True))
    assert parse_terms("the who").stop_words == ()


def test_words_inside_quotes_and_domain_terms_are_never_stop_words() -> None:
    assert parse_query('"internet of things" in') == (Clause(("internet", "of", "things")),)
    assert parse_query("IT security") == (Clause(("it",)), Clause(("security",), prefix=True))
    assert parse_query("CAN bus") == (Clause(("can",)), Clause(("bus",), prefix=True))


def test_every_combining_mark_lies_below_the_scan_end() -> None:
    """The import-time scan stops at ``COMBINING_SCAN_END`` (the whole range cost every command
    ~60 ms): it must find exactly what a scan of every code point of this Python's Unicode finds."""
    import sys
    import unicodedata

    from node.search.text import COMBINING_SCAN_END, _combining_class

    assert not [cp for cp in range(COMBINING_SCAN_END, sys.maxunicode + 1) if unicodedata.combining(chr(cp))]
    assert _combining_class().pattern == _combining_class(sys.maxunicode + 1).pattern
