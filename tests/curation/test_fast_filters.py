"""The fast heuristic filters (blocks.py) against datatrove's own classes: the same keep/drop decision, the
same drop reason, the same text after C4's line cleaning and the same stats, document by document, on the
default corpus (this environment's documentation), the standard library's reference topics, 60-odd other
languages, spam, word salad, planted bad documents aimed at every rule, and random documents."""

from __future__ import annotations

import ast
import functools
import importlib.util
import random
from pathlib import Path

import pytest
import yaml
from curation_corpora import english_documents, spam, word_salad
from datatrove.data import Document
from datatrove.pipeline.filters import (
    C4QualityFilter,
    FineWebQualityFilter,
    GopherQualityFilter,
    GopherRepetitionFilter,
)
from datatrove.pipeline.filters.gopher_repetition_filter import (
    find_all_duplicate,
    find_duplicates,
    find_top_duplicate,
    get_n_grams,
)

from hfscratch.curation.blocks import (
    FastC4QualityFilter,
    FastFineWebQualityFilter,
    FastGopherQualityFilter,
    FastGopherRepetitionFilter,
    LanguageIDFilter,
    RegexWordTokenizer,
    WordNgrams,
    count_duplicates,
)
from hfscratch.curation.pipeline import CurateArguments, heuristic_filters

PROSE = (
    "The interpreter reads the file and executes it. Each statement is evaluated in order, and the values "
    "that it produces are bound to names in the current scope."
)


def planted_bad_documents() -> list[str]:
    """One or more documents aimed at each rule of the four filters, and at the edges of the fast paths."""
    long_word = "x" * 1001
    docs = [
        "",
        "   \n\n  \n",
        "\n".join([PROSE] * 6),  # duplicated lines
        "\n\n".join([PROSE] * 6),  # duplicated paragraphs
        "\n\n".join([PROSE, PROSE + " Once.", PROSE, "Another paragraph that is long enough to count here."] * 3),
        "the cat " * 300,  # top 2-gram
        " ".join(f"one two three {i}" for i in range(200)),  # top 3-gram
        " ".join(f"alpha beta gamma delta {i}" for i in range(150)),  # top 4-gram
        " ".join(f"w{i % 37} w{i % 11} w{i % 5}" for i in range(400)),  # repeated 5..10-grams
        # joined without separator, "ab c d e f" and "a bc d e f" are the same 5-gram in datatrove's count
        " ".join(["ab c d e f", "a bc d e f"] * 40 + [PROSE] * 2),
        " ".join(["foo bar baz qux quux corge", "foob ar baz qux quux corge", PROSE] * 15),
        "a b a b c d c d " * 30 + PROSE,  # ties between most frequent n-grams of different lengths
        "lorem ipsum dolor sit amet.\n" + (PROSE + "\n") * 6,
        (PROSE + "\n") * 3 + "function f() { return 1; }.\n" + (PROSE + "\n") * 3,
        "\n".join(
            [
                PROSE,
                "Please enable JavaScript to view this page, it is needed here.",
                "This site uses cookies to improve your experience, read more.",
                "See the terms of use and the privacy policy for the details.",
                f"A line with a very long word {long_word} in it and an end.",
                "A citation of some claim [1] and an edit link [edit] are here.",
                "A claim [citation needed] that was never checked by anyone.",
                "No terminal punctuation on this line at all",
                "Ends with an ellipsis and nothing more than that...",
                "Two words.",
                PROSE,
                PROSE + " Again? Yes! And again.",
            ]
        ),
        "\n".join(f"- item number {i} of the list." for i in range(40)),
        "\n".join(f"• bullet {i} in the list, written out." for i in range(40)),
        "\n".join(f"It trails off {i}..." for i in range(40)) + "\n" + PROSE,
        "\n".join(f"It trails off {i}…" for i in range(40)) + "\n" + PROSE,
        " ".join(f"#tag{i} and the word" for i in range(100)),
        PROSE + " ... " * 60,
        " ".join(str(i) for i in range(300)) + " the and of to be",
        " ".join(["extraordinarily", "incomprehensibilities", "counterrevolutionaries"] * 40),
        " ".join(["a", "b", "c", "d", "e"] * 40) + " the and",
        " ".join(["words", "without", "any", "common", "stopwords", "whatsoever"] * 20),
        "\n".join(["short", "lines", "only", "here", "many"] * 20),
        "\n".join(f"{PROSE} {i}" for i in range(30)),
        "\r\n".join([PROSE] * 8),  # splitlines and split("\n") disagree on \r, \x0b, \x1c, \u2028
        "\x0b".join([PROSE, PROSE + " More.", "Third line."] * 4),
        "\u2028".join([PROSE, "Second line here.", PROSE + " Three?"] * 4),
        "\x1c\x1d\x1e".join([PROSE] * 5),
        PROSE + " \ud800 lone surrogate, and ✓ ünïcödé wörds, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 — “quoted” ’tis.",
        "!!! ??? ... ;;; ::: --- ___ *** " * 40 + PROSE,
        "can't won't it’s O'Neil’s rock'n'roll " * 40 + PROSE,
        "\n".join([PROSE + "."] * 2 + ["x"] * 50),
        "\n\n\n".join(["One paragraph.", "", "Two paragraph.", "One paragraph."] * 10),
    ]
    return docs


VOCABULARY = (
    "the and of to be that have with a b c ab bc abc x y z ... … # - • { } [1] [edit] . ! ? , ' \" : ; "
    "lorem ipsum javascript cookies privacy policy 42 3.14 ünï 𝔘 can't it’s"
).split()


def random_documents(n: int, seed: int = 0) -> list[str]:
    """Small-vocabulary documents with random line and paragraph breaks: many repeats, ties and edge cases."""
    rng = random.Random(seed)
    docs = []
    for _ in range(n):
        words = []
        for _ in range(rng.randint(0, 400)):
            words.append(rng.choice(VOCABULARY))
            words.append(rng.choices([" ", "\n", "\n\n", "  ", "\t", ". ", ""], [60, 8, 3, 2, 1, 4, 1])[0])
        docs.append("".join(words))
    return docs


@functools.cache
def spacy_example_texts() -> tuple[str, ...]:
    """spaCy's example sentences in 60-odd languages, one document per language, read from its source files
    (importing spaCy and its language packages would take seconds)."""
    (root,) = importlib.util.find_spec("spacy").submodule_search_locations
    texts = []
    for path in sorted(Path(root, "lang").glob("*/examples.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "sentences" for t in node.targets):
                texts.append(" ".join(ast.literal_eval(node.value)))
    return tuple(texts)


@functools.cache
def documents() -> tuple[str, ...]:
    from hfscratch.curation.sources import PythonDocsReader

    rng = random.Random(0)
    default_corpus = [doc.text for doc in PythonDocsReader(limit=60).run()]
    english = list(english_documents(min_chars=50, max_chars=100_000, max_overlap=1.0).values())
    others = list(spacy_example_texts())
    noise = [spam(rng) for _ in range(20)] + [word_salad(text, rng) for text in english[:20]]
    return tuple(default_corpus + english + others + noise + planted_bad_documents() + random_documents(300))


RECIPE = yaml.safe_load((Path(__file__).resolve().parents[2] / "recipes" / "curate" / "python-docs.yaml").read_text())
RECIPE_OPTIONS = RECIPE["filter_options"]
TIGHT = {  # thresholds low enough that most documents reach the last rules
    "gopher_repetition": {"top_n_grams": [[2, 0.5], [3, 0.5], [4, 0.5]], "dup_n_grams": [[5, 0.05], [7, 0.02]]},
    "gopher_quality": {"min_doc_words": 5, "max_doc_words": 2000, "max_non_alpha_words_ratio": 0.5},
    "c4_quality": {"min_num_sentences": 2, "min_words_per_line": 2, "max_word_length": 20},
    "fineweb_quality": {"line_punct_thr": 0.0, "short_line_thr": 0.95, "char_duplicates_ratio": 0.5},
}
PAIRS = {
    "gopher_repetition": (GopherRepetitionFilter, FastGopherRepetitionFilter),
    "gopher_quality": (GopherQualityFilter, FastGopherQualityFilter),
    "c4_quality": (C4QualityFilter, FastC4QualityFilter),
    "fineweb_quality": (FineWebQualityFilter, FastFineWebQualityFilter),
}


def run_filter(step, texts) -> tuple[list, list[str], dict]:
    docs = [Document(text=text, id=str(i)) for i, text in enumerate(texts)]
    results = [step.filter(doc) for doc in docs]
    return results, [doc.text for doc in docs], step.stats.stats.to_dict()


@pytest.mark.parametrize("options", ["datatrove", "recipe", "tight"])
@pytest.mark.parametrize("name", list(PAIRS))
def test_fast_filter_decides_like_datatrove(name, options):
    kwargs = {"datatrove": {}, "recipe": RECIPE_OPTIONS.get(name, {}), "tight": TIGHT[name]}[options]
    old_class, new_class = PAIRS[name]
    texts = documents()
    old = run_filter(old_class(language=RegexWordTokenizer(), **kwargs), texts)
    new = run_filter(new_class(language=RegexWordTokenizer(), **kwargs), texts)
    for i, (a, b) in enumerate(zip(old[0], new[0])):
        assert a == b, (i, a, b, texts[i][:200])
    assert old[1] == new[1]  # C4 rewrites the text: the same kept lines
    assert old[2] == new[2]  # the same counters, C4's per-line ones too
    reasons = {r[1] for r in old[0] if r is not True}
    if options == "datatrove":  # the corpus reaches more than one rule of each filter
        assert len(reasons) >= 2, reasons


def test_default_chain_keeps_and_drops_like_datatrove():
    """The recipe's chain as pipeline steps (language ID, then the four filters as `build_stages` makes
    them) against the stock classes: the same documents out, the same text, the same stats per step."""
    args = CurateArguments(**{k: v for k, v in RECIPE.items() if k != "sources"})
    new_steps = heuristic_filters(args)
    assert [type(s) for s in new_steps] == [PAIRS[n][1] for n in PAIRS]
    old_steps = [PAIRS[n][0](language=RegexWordTokenizer(), **args.filter_options.get(n, {})) for n in PAIRS]

    def run(steps):
        steps = [LanguageIDFilter(args.languages, args.language_threshold), *steps]
        data = (Document(text=text, id=str(i)) for i, text in enumerate(documents()))
        for step in steps:
            data = step.run(data)
        kept = [(doc.id, doc.text) for doc in data]
        return kept, [step.stats.stats.to_dict() for step in steps], [step.name for step in steps]

    old, new = run(old_steps), run(new_steps)
    assert old[2] == new[2]  # the same step names: the report's funnel rows
    assert old[1] == new[1]
    assert old[0] == new[0]
    assert 0 < len(new[0]) < len(documents())


@pytest.mark.parametrize("seed", range(30))
def test_ngram_counts_match_datatrove_functions(seed):
    rng = random.Random(seed)
    vocabulary = ["a", "b", "ab", "ba", "aba", "c", "bc", "abc", "ü", "𝔘", "."][: rng.randint(2, 11)]
    words = [rng.choice(vocabulary) for _ in range(rng.randint(0, 300))]
    ngrams = WordNgrams(words)
    for n in range(1, 11):
        grams = get_n_grams(words, n)
        assert ngrams.top_chars(n) == (find_top_duplicate(grams) if grams else None), n
    for n in range(1, 11):
        exact = find_all_duplicate(words, n)
        assert WordNgrams(words).repeated_chars(n) == exact, n
        bounded = WordNgrams(words).repeated_chars(n, text_length=1000, fraction=0.2)
        assert bounded == exact or (exact <= bounded and bounded / 1000 <= 0.2), n
    lines = ["".join(rng.choices(vocabulary, k=rng.randint(0, 3))) for _ in range(rng.randint(0, 50))]
    assert count_duplicates(lines) == find_duplicates(lines)


def test_spacy_words_decide_like_datatrove():
    """With another word tokenizer (spaCy's, the recipe's `word_tokenizer: spacy`) the filters whose fast
    path needs RegexWordTokenizer's words run datatrove's own code; the others stay exact with any words."""
    texts = tuple(t for t in documents() if len(t) < 2000)[:20] + tuple(planted_bad_documents())
    texts = tuple(t for t in texts if "\ud800" not in t)  # spaCy cannot encode a lone surrogate
    for name, (old_class, new_class) in PAIRS.items():
        old = run_filter(old_class(language="en", **RECIPE_OPTIONS.get(name, {})), texts)
        new = run_filter(new_class(language="en", **RECIPE_OPTIONS.get(name, {})), texts)
        assert old == new, name
