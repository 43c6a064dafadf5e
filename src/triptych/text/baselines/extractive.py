"""Extractive baselines: the sentence rule and Lead (TextRank is in `textrank`).

A summarizer is only worth its training time if it beats copying the start
of the document. On the Debian descriptions the classic baseline is "the
first 10 words of the first sentence" (README of the corpus: 32.2 / 14.7 /
28.5 ROUGE-1/2/L on test, rouge-score with stemming); `lead` reproduces it
(32.15 / 14.65 / 28.53 with `triptych.text.metrics.rouge`) and `lead_words` the
plain lead-10 (31.59 / 14.21 / 28.00; the README says 31.5 / 14.2 / 28.0).

Sentence splitting is a small documented rule, not a trained model, so
that the baseline is reproducible anywhere:

- lines (``"\\n"``, the corpus' paragraph separator) always end sentences;
- inside a line a sentence ends after ``.``, ``!`` or ``?`` (possibly
  repeated, possibly followed by closing quotes or brackets) that is
  followed by whitespace or the end of the line — so version numbers
  (``1.2.3``), file names (``foo.conf``) and URLs never split;
- except after a known abbreviation (``e.g.``, ``i.e.``, ``cf.``, ``vs.``,
  ``Mr.``, ...; the list is `ABBREVIATIONS`) or a single-letter initial
  (``Donald E. Knuth``), and except after ``etc.`` when the next word starts
  in lower case;
- CJK text (no spaces between sentences) ends a sentence after ``。``,
  ``！`` or ``？`` (possibly repeated, possibly followed by closing quotes
  or brackets such as ``」``), whatever follows.
"""

from __future__ import annotations

import re
from typing import Iterator

# Lower-cased, with their final dot: words after which "." does not end a sentence.
ABBREVIATIONS = frozenset({
    "e.g.", "i.e.", "cf.", "vs.", "viz.", "approx.", "incl.", "esp.", "resp.",
    "al.", "ca.", "mr.", "mrs.", "ms.", "dr.", "prof.", "jr.", "sr.", "st.",
    "no.", "vol.", "fig.", "eq.", "ver.", "dept.", "univ.", "a.k.a.", "w.r.t.",
})

_CJK_STOPS = "。！？"
_END = re.compile(r"[.!?]+[\"')\]]*(?=\s|$)" "|" f"[{_CJK_STOPS}]+" r"[\"')\]」』”’）》】〉]*")


def _ends_sentence(line: str, end: int) -> bool:
    """Whether the terminal punctuation match ending at `end` closes a sentence.

    Looks only at the word that ends at `end` and the character after the
    following spaces, walking from `end`: never at the whole line, which made
    a 1 MB line cost 110 s (a slice per punctuation mark, quadratic)."""
    begin = end
    while begin > 0 and not line[begin - 1].isspace():
        begin -= 1
    word = line[begin:end].lower().lstrip("\"'([")
    if word in ABBREVIATIONS:
        return False
    if len(word) == 2 and word[0].isalpha() and word[1] == ".":  # an initial: "E."
        return False
    if word == "etc.":
        nxt = end
        while nxt < len(line) and line[nxt].isspace():
            nxt += 1
        return not (nxt < len(line) and line[nxt].islower())
    return True


def iter_sentences(text: str) -> Iterator[str]:
    """Sentences of `text` in order, stripped, none empty (rule in the module doc); lazily,
    so Lead reads only as far as its first sentence."""
    for line in text.split("\n"):
        start = 0
        for m in _END.finditer(line):
            if m.group()[0] in _CJK_STOPS or _ends_sentence(line, m.end()):
                sentence = line[start:m.end()].strip()
                if sentence:
                    yield sentence
                start = m.end()
        sentence = line[start:].strip()
        if sentence:
            yield sentence


def split_sentences(text: str) -> list[str]:
    """Sentences of `text` in order, stripped, none empty (rule in the module doc)."""
    return list(iter_sentences(text))


def _first_words(text: str, words: int | None) -> str:
    tokens = text.split()
    return " ".join(tokens if words is None else tokens[:words])


def lead(document: str, words: int | None = 10, first_sentence: bool = True) -> str:
    """The Lead baseline: the document's first sentence, cut to `words` words.

    ``first_sentence=False`` takes the first `words` words of the whole
    document instead (`lead_words`). ``words=None`` does not cut. Words are
    whitespace-separated and re-joined with single spaces.
    """
    if words is not None and words < 0:
        raise ValueError("words must be >= 0 or None")
    if not first_sentence:
        return _first_words(document, words)
    first = next(iter_sentences(document), None)
    return _first_words(first, words) if first is not None else ""


def lead_words(document: str, k: int = 10) -> str:
    """Lead-k: the first `k` words of the document, whatever the sentences."""
    return lead(document, words=k, first_sentence=False)
