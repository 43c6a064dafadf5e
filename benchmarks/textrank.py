"""triptych's TextRank against sumy's TextRankSummarizer on the Debian test split, same run.

Both summarize every test document by its top-ranked sentence, from the
same sentences: sumy's own splitter needs NLTK's punkt data, which is not
installed, so both sides get `triptych.text.baselines.extractive.split_sentences`
(sumy's document is built from them). sumy tokenizes words with NLTK's
Treebank tokenizer (what its default `nltk.word_tokenize` runs inside a
sentence) and keeps the tokens its `Tokenizer._is_word` accepts.

Reported: how often both choose the same sentence (over the documents with
two sentences or more, where there is a choice), ROUGE of both (top
sentence, and cut to 10 words as Lead is), and the speed ratio (CPU time of
`--repeats` alternating runs, best of each; single-threaded). An ablation,
sumy with its edge weight replaced by the paper's similarity and no
self-loops (`PaperSumy`), shows how much of the disagreement those two
differences explain.

Where sumy differs from the paper (text_rank.py of sumy 0.13):
- similarity: the numerator is sum_{w in S_i} count(w in S_j) over the
  word *lists*, so repeated words count many times (the paper counts the
  distinct shared words);
- self-loops: the diagonal holds sim(S_i, S_i), so every sentence votes
  for itself in proportion to its length and repetitions;
- PageRank: teleport (1 - d) / N instead of (1 - d), and stopping when the
  L2 change falls below 1e-4 (ranks are equal up to that tolerance);
- words: NLTK tokens that start with a letter and hold only letters, ``'``
  and ``-`` (so "IPv6", "2.0" and "x86_64" are not words); ours keeps runs of
  letters and digits.

Usage: python benchmarks/textrank.py [--repeats R] [--limit N]
Prints human lines on stderr and one JSON line last on stdout with
"ratio" = sumy's CPU time over triptych's (> 1: triptych is faster).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from nltk.tokenize import NLTKWordTokenizer  # noqa: E402
from sumy.models.dom import ObjectDocumentModel, Paragraph, Sentence  # noqa: E402
from sumy.nlp.tokenizers import Tokenizer  # noqa: E402
from sumy.summarizers.text_rank import TextRankSummarizer  # noqa: E402

from triptych.hardware import describe  # noqa: E402
from triptych.text.baselines.extractive import split_sentences  # noqa: E402
from triptych.text.metrics.corpus import rouge_f1_x100  # noqa: E402
from triptych.text.baselines.textrank import similarity, textrank_many, words  # noqa: E402


class SumyWords:
    """sumy's word tokenizer without punkt: the Treebank tokenizer inside one sentence."""

    _treebank = NLTKWordTokenizer()

    def to_words(self, sentence: str):
        return tuple(filter(Tokenizer._is_word, self._treebank.tokenize(sentence)))


class PaperSumy(TextRankSummarizer):
    """sumy with the paper's graph: distinct shared words, no self-loops (the ablation)."""

    @staticmethod
    def _rate_sentences_edge(words1, words2):
        if words1 is words2:  # sumy's matrix loop passes the same list for the diagonal
            return 0.0
        return similarity(set(words1), len(words1), set(words2), len(words2))


def run_ours(documents: list[str]) -> tuple[float, list[str]]:
    start = time.process_time()
    summaries = textrank_many(documents, sentences=1)
    return time.process_time() - start, summaries


def run_sumy(documents: list[str], summarizer_cls=TextRankSummarizer) -> tuple[float, list[str]]:
    words, summarizer = SumyWords(), summarizer_cls()
    start = time.process_time()
    summaries = []
    for doc in documents:
        sentences = [Sentence(s, words) for s in split_sentences(doc)]
        best = summarizer(ObjectDocumentModel([Paragraph(sentences)]), 1)
        summaries.append(" ".join(str(s) for s in best))
    return time.process_time() - start, summaries


def _same_words(document: str) -> bool:
    """Whether both tokenizers give every sentence the same words (lower-cased) and length."""
    peer = SumyWords()
    for sentence in split_sentences(document):
        mine, theirs = words(sentence), [w.lower() for w in peer.to_words(sentence)]
        if len(mine) != len(theirs) or set(mine) != set(theirs):
            return False
    return True


def cut(text: str, k: int = 10) -> str:
    return " ".join(text.split()[:k])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "data/debian-descriptions/test.jsonl.gz"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--limit", type=int, help="only the first N documents")
    args = ap.parse_args()

    with gzip.open(args.data, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][: args.limit]
    documents, references = [r["document"] for r in rows], [r["summary"] for r in rows]

    ours_t, sumy_t = [], []
    for _ in range(args.repeats):
        t, ours = run_ours(documents)
        ours_t.append(t)
        t, peer = run_sumy(documents)
        sumy_t.append(t)
    _, paper = run_sumy(documents, PaperSumy)
    choice = [i for i, d in enumerate(documents) if len(split_sentences(d)) >= 2]
    same = sum(ours[i] == peer[i] for i in choice) / len(choice)
    same_paper = sum(ours[i] == paper[i] for i in choice) / len(choice)
    # Of the documents where even the paper-graph sumy disagrees: those whose words tokenize alike.
    differ = [i for i in choice if ours[i] != paper[i]]
    alike = sum(_same_words(documents[i]) for i in differ)
    result = {
        "documents": len(documents),
        "documents_with_a_choice": len(choice),
        "same_sentence": round(same, 4),
        "same_sentence_all_documents": round(sum(a == b for a, b in zip(ours, peer)) / len(documents), 4),
        "same_sentence_as_sumy_with_the_papers_graph": round(same_paper, 4),
        "disagreements_with_the_papers_graph": len(differ),
        "of_which_words_tokenize_alike": alike,
        "triptych_rouge": {k: round(v, 2) for k, v in rouge_f1_x100(ours, references).items()},
        "sumy_rouge": {k: round(v, 2) for k, v in rouge_f1_x100(peer, references).items()},
        "triptych_rouge_10_words": {k: round(v, 2) for k, v in rouge_f1_x100([cut(s) for s in ours], references).items()},
        "sumy_rouge_10_words": {k: round(v, 2) for k, v in rouge_f1_x100([cut(s) for s in peer], references).items()},
        "triptych_s": round(min(ours_t), 4),
        "sumy_s": round(min(sumy_t), 4),
        "triptych_docs_per_s": round(len(documents) / min(ours_t), 1),
        "sumy_docs_per_s": round(len(documents) / min(sumy_t), 1),
        "ratio": round(min(sumy_t) / min(ours_t), 2),
    }
    print(f"same sentence chosen: {100 * same:.1f}% of {len(choice)} documents with 2+ sentences "
          f"({100 * same_paper:.1f}% once sumy uses the paper's similarity without self-loops; of the "
          f"{len(differ)} left, {alike} tokenize alike)", file=sys.stderr)
    for name in ("triptych", "sumy"):
        r = result[f"{name}_rouge"]
        print(f"{name:9s} ROUGE-1/2/L {r['rouge1']:.2f} / {r['rouge2']:.2f} / {r['rougeL']:.2f}  "
              f"{result[f'{name}_docs_per_s']:.0f} docs/s", file=sys.stderr)
    print(f"speed: triptych {result['ratio']:.1f}x sumy", file=sys.stderr)
    print(json.dumps({**result, "machine": describe()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
