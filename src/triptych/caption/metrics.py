"""Caption scores against several references per image.

- BLEU-4: sacrebleu's corpus BLEU with every reference caption of each image
  (multi-reference BLEU, as COCO and Flickr report it); images with fewer
  references than the most-referenced one get `None` in the missing streams,
  which sacrebleu skips.
- ROUGE-L: triptych's own ROUGE (text/rouge.py) F1 against the BEST-matching
  reference of each image (the max over references, as multi-reference
  ROUGE usually does; the COCO caption toolkit also takes the best
  reference, though with its own recall-weighted F), averaged over images.
"""

from __future__ import annotations


def caption_scores(hypotheses: list[str], references: list[list[str]]) -> dict:
    """{"bleu": BLEU-4 x 100, "rougeL": best-reference ROUGE-L F1 x 100, "bleu_signature"}."""
    from sacrebleu.metrics import BLEU

    from triptych.text.metrics.rouge import RougeScorer

    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"{len(hypotheses)} captions against {len(references)} reference lists")
    width = max(len(r) for r in references)
    streams = [[refs[k] if k < len(refs) else None for refs in references] for k in range(width)]
    scorer = BLEU()
    bleu = scorer.corpus_score(hypotheses, streams).score
    rouge = RougeScorer(["rougeL"], stem=True)
    best = [max(rouge.score(h, r)["rougeL"].fmeasure for r in refs) for h, refs in zip(hypotheses, references)]
    return {"bleu": bleu, "rougeL": 100.0 * sum(best) / len(best), "bleu_signature": str(scorer.get_signature())}
