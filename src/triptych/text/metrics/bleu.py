"""BLEU and chrF for translation (and any other seq2seq job), by sacrebleu.

Machine translation reports corpus BLEU (Papineni et al. 2002) and chrF
(Popović 2015), and their numbers are only comparable when computed the
standard way: sacrebleu's default tokenisation (13a), exponential smoothing,
one reference a sentence. So triptych does not reimplement them; it hands the
decoded text to sacrebleu and keeps the signature string beside each score,
as sacrebleu asks papers to do.

`--metric` lists which families of scores `text eval` computes: `rouge`
(ROUGE-1/2/L/Lsum F1 x 100, triptych's own implementation), `bleu`, `chrf`.
"""

from __future__ import annotations

from triptych.errors import SettingError, UserError

METRICS = ("rouge", "bleu", "chrf")
DEFAULT_METRICS = ("rouge",)


def parse_metrics(text: str | None) -> tuple[str, ...]:
    """'bleu,chrf,rouge' -> ('bleu', 'chrf', 'rouge'); unknown names are a UserError."""
    if text is None:
        return DEFAULT_METRICS
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METRICS]
    if unknown or not names:
        bad = unknown[0] if unknown else text
        raise SettingError(f"{{metric}}: unknown metric {bad!r}; allowed: {', '.join(METRICS)} (comma-separated)")
    return tuple(dict.fromkeys(names))  # keep the order, drop repeats


def translation_scores(hypotheses: list[str], references: list[str], metrics: tuple[str, ...]) -> dict:
    """Corpus BLEU and/or chrF (0..100) of one hypothesis per reference, with sacrebleu's signatures."""
    from sacrebleu.metrics import BLEU, CHRF

    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses against {len(references)} references")
    out: dict = {}
    for name, metric in (("bleu", BLEU), ("chrf", CHRF)):
        if name in metrics:
            scorer = metric()
            out[name] = scorer.corpus_score(hypotheses, [references]).score
            out[f"{name}_signature"] = str(scorer.get_signature())
    return out
