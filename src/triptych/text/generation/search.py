"""Greedy, sampling and beam-search decoding, for every model that honours `Seq2Seq`.

Kept apart from the models (as fairseq and OpenNMT do): a decoder only needs
`encode`, `init_state`, `step` and `reorder` — or, with `use_cache=False`,
only `forward`, re-run on the whole prefix at every step. The second path is
slow on purpose: it is the reference the incremental one is tested against.

All three are batched over sentences, stop early once every sentence
is finished, and drop finished sentences from the batch so the work shrinks
as they end. Conventions shared by all three:

- `max_len` bounds the generated tokens; a hypothesis that reaches it ends
  without eos. `min_len` forbids eos before that many tokens.
- `no_repeat_ngram=n` forbids any token that would repeat an n-gram already
  present in the hypothesis (counting generated tokens only).
- bos and the model's pad are never generated.
- Returned token lists exclude bos and eos.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from triptych.nn.prepacked import packed_weights

NEG_INF = float("-inf")


@dataclass
class Hypothesis:
    """One beam-search candidate.

    `logprob` sums the model's log-probabilities of `tokens`, plus that of eos
    when the hypothesis ended with one (then `len(tokens) < max_len`);
    `score = logprob / ((5 + n) / 6) ** length_penalty` with n the number of
    scored tokens (GNMT, Wu et al. 2016): the ranking key.
    """

    tokens: list[int]
    score: float
    logprob: float


@contextlib.contextmanager
def _inference(model):
    """Eval mode (no dropout), no autograd bookkeeping, and linear layers on
    weights packed for the call (`prepacked`); the mode restored afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), packed_weights():
            yield
    finally:
        model.train(was_training)


class _Stepper:
    """Next-token log-probabilities for a set of rows, with or without a cache."""

    def __init__(self, model, src: torch.Tensor, bos: int, use_cache: bool):
        self.model, self.use_cache = model, use_cache
        self.grouped = use_cache and getattr(model, "grouped_steps", False)
        if use_cache:
            self.enc = model.encode(src)
            self.state = model.init_state(self.enc)
            self.sentences = src.size(0)  # the encoder's rows
        else:
            self.src = src
            self.prefix = src.new_empty(src.size(0), 0, dtype=torch.long)  # (N, t): tokens fed so far; src may be images

    def step(self, tokens: torch.Tensor, ranking: bool = False) -> torch.Tensor:  # (N,) -> (N, V)
        """The next token's log-probabilities; with `ranking`, any scores in
        their order (`Seq2Seq.step_scores`), all that an argmax needs."""
        if self.use_cache:
            step = getattr(self.model, "step_scores", self.model.step) if ranking else self.model.step
            log_p, self.state = step(tokens, self.enc, self.state)
            return log_p
        self.prefix = torch.cat([self.prefix, tokens[:, None]], 1)
        return self.model(self.src, self.prefix)[:, -1]

    def reorder(self, index: torch.Tensor, sentences: torch.Tensor | None = None):
        """New rows = old rows `index`. `sentences`: the old sentence slots that
        remain, given whenever rows are dropped with their sentence or fanned
        out into beams (an ungrouped model's encoder rows follow the rows);
        None when every row only moves within its sentence (beam
        reordering), so the encoder's rows are unchanged."""
        if not self.use_cache:
            self.src, self.prefix = self.src[index], self.prefix[index]
            return
        self.state = self.model.reorder_state(self.state, index)
        if sentences is None:
            return
        if self.grouped:  # one encoder row a sentence: unchanged while every sentence stays in place
            if not torch.equal(sentences, torch.arange(self.sentences, device=sentences.device)):
                self.enc = self.model.reorder_encoder(self.enc, sentences)
                self.sentences = sentences.numel()
        else:
            self.enc = self.model.reorder_encoder(self.enc, index)


def _constrain(log_p, hist, t: int, never: list[int], eos: int, min_len: int, no_repeat_ngram: int):
    """In place: forbid the `never` tokens (bos, pad), eos before `min_len`
    tokens, and repeated n-grams.

    log_p (N,V) for the next token after `t` generated tokens; hist (N,t)
    those tokens (only read for n-gram blocking).
    """
    log_p[:, never] = NEG_INF
    if t < min_len:
        log_p[:, eos] = NEG_INF
    n = no_repeat_ngram
    if n > 0 and t >= n:
        grams = hist.unfold(1, n, 1)  # (N, G, n): every n-gram generated so far
        if n > 1:  # an n-gram is live when its first n-1 tokens equal the last n-1 generated
            live = (grams[:, :, :-1] == hist[:, None, t - n + 1 :]).all(-1)  # (N, G)
        else:
            live = torch.ones(grams.shape[:2], dtype=torch.bool, device=hist.device)
        # -inf added at each live n-gram's last token; 0 elsewhere leaves log_p unchanged.
        penalty = torch.zeros(live.shape, dtype=log_p.dtype, device=log_p.device).masked_fill(live, NEG_INF)
        log_p.scatter_add_(1, grams[:, :, -1], penalty)


def _never(model, bos: int) -> list[int]:
    """Tokens no hypothesis may contain: bos, and the model's pad."""
    pad = getattr(model, "pad_id", None)
    return [bos] if pad is None or pad == bos else [bos, pad]


def _generate(model, src, choose, *, bos, eos, max_len, min_len, no_repeat_ngram, use_cache):
    """The one-candidate-a-sentence loop shared by `greedy` and `sample`.

    `choose(log_p (N,V)) -> tokens (N,)` picks each row's next token from
    the constrained log-probabilities; None takes the argmax, which the
    check for rows with nothing left has already found (one pass over the
    (N,V) scores a step, not two). Returns each sentence's tokens and
    whether it ended with eos (False: it reached `max_len`, or nothing
    allowed was left).
    """
    B, device = src.size(0), src.device
    out: list[list[int]] = [[] for _ in range(B)]
    closed = [False] * B
    with _inference(model):
        stepper = _Stepper(model, src, bos, use_cache)
        never = _never(model, bos)
        rows = list(range(B))  # sentence of each active row
        last = torch.full((B,), bos, dtype=torch.long, device=device)
        hist = torch.empty(B, 0, dtype=torch.long, device=device)
        for t in range(max_len):
            log_p = stepper.step(last, ranking=choose is None)  # (N, V); greedy: scores in their order
            _constrain(log_p, hist, t, never, eos, min_len, no_repeat_ngram)
            best, tok = log_p.max(-1)  # (N,), (N,): the argmax, first of equals
            dead = best == NEG_INF  # nothing allowed is left: the row stops there
            if choose is not None:
                if dead.any():
                    log_p[dead, eos] = 0.0  # something to choose; the row ends without eos below
                tok = choose(log_p)  # (N,)
            is_eos = tok == eos
            ended = is_eos | dead
            for r, k, e, d in zip(rows, tok.tolist(), is_eos.tolist(), dead.tolist()):
                if d:
                    continue
                if e:
                    closed[r] = True
                else:
                    out[r].append(k)
            if ended.any():
                alive = (~ended).nonzero().squeeze(1)
                if alive.numel() == 0:
                    break
                rows = [rows[i] for i in alive.tolist()]
                tok, hist = tok[alive], hist[alive]
                stepper.reorder(alive, alive)
            if no_repeat_ngram:  # the history is only kept when something reads it
                hist = torch.cat([hist, tok[:, None]], 1)
            last = tok
    return out, closed


def greedy(
    model,
    src: torch.Tensor,
    *,
    bos: int,
    eos: int,
    max_len: int,
    min_len: int = 0,
    no_repeat_ngram: int = 0,
    use_cache: bool = True,
) -> list[list[int]]:
    """src (B,S) -> for each sentence, the argmax continuation's tokens."""
    return _generate(model, src, None, bos=bos, eos=eos, max_len=max_len, min_len=min_len,
                     no_repeat_ngram=no_repeat_ngram, use_cache=use_cache)[0]


def sample(
    model,
    src: torch.Tensor,
    *,
    bos: int,
    eos: int,
    max_len: int,
    min_len: int = 0,
    no_repeat_ngram: int = 0,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    use_cache: bool = True,
) -> tuple[list[list[int]], list[bool]]:
    """src (B,S) -> for each sentence, tokens drawn from the model, and whether it ended with eos.

    Multinomial sampling, one draw a step, from the same constrained
    distribution greedy takes the argmax of (softened by `temperature`).
    No gradient is kept: a policy gradient re-scores the samples in one
    teacher-forced pass, which on CPU costs a fraction of back-propagating
    through every incremental step (see `triptych.text.rl`). The draws come
    from `generator`, or torch's global generator (seeded by the engine).

    `top_k` > 0 draws from the k likeliest tokens only (Fan et al. 2018),
    `top_p` < 1 from the smallest set whose probability reaches p (nucleus
    sampling, Holtzman et al. 2019); both cut the unreliable tail that makes
    plain samples wander.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")

    def choose(log_p):  # (N, V) -> (N,)
        if top_k > 0 or top_p < 1.0:
            log_p = truncate(log_p, top_k, top_p)
        probs = (log_p / temperature).softmax(-1) if temperature != 1.0 else log_p.exp()
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)

    return _generate(model, src, choose, bos=bos, eos=eos, max_len=max_len, min_len=min_len,
                     no_repeat_ngram=no_repeat_ngram, use_cache=use_cache)


def truncate(log_p: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """(N, V) log-probabilities with all but the top-k / top-p nucleus set to -inf.

    Top-k keeps every token scoring at least the k-th (ties kept). Top-p keeps,
    in descending order, each token while the mass before it is below p — so
    the likeliest token always stays, and the kept set is the smallest whose
    mass reaches p.
    """
    if 0 < top_k < log_p.size(-1):
        kth = log_p.topk(top_k, dim=-1).values[:, -1:]  # (N, 1)
        log_p = log_p.masked_fill(log_p < kth, NEG_INF)
    if top_p < 1.0:
        ordered, index = log_p.sort(-1, descending=True)  # (N, V)
        probs = ordered.softmax(-1)
        before = probs.cumsum(-1) - probs  # mass of the likelier tokens
        cut = before >= top_p
        cut[:, 0] = False  # the likeliest stays even when p rounds to 0 in the tensor's dtype (p = 1e-300)
        ordered = ordered.masked_fill(cut, NEG_INF)
        log_p = torch.full_like(log_p, NEG_INF).scatter(-1, index, ordered)
    return log_p


def beam_search(
    model,
    src: torch.Tensor,
    *,
    beam: int,
    bos: int,
    eos: int,
    max_len: int,
    min_len: int = 0,
    length_penalty: float = 0.6,
    no_repeat_ngram: int = 0,
    nbest: int = 1,
    use_cache: bool = True,
) -> list[list[Hypothesis]]:
    """src (B,S) -> for each sentence, its `nbest` hypotheses, best score first.

    Each step scores the K*V continuations of a sentence's K beams and takes
    the best 2K: eos among the first K closes a hypothesis, the best K that are
    not eos carry on (at most K of 2K can be eos, one per beam, so K always
    remain). A sentence is done once it holds K closed hypotheses and its best
    open beam, closed now, would not beat the worst of them (Hugging Face's
    default rule). fairseq stops at the K-th closed hypothesis, which can drop
    a far better beam still open: with a peaked model over a small vocabulary,
    eos enters the top K at the first steps and closes K poor hypotheses
    before the best one ends. Without a length penalty scores only fall, so
    the rule then loses nothing. At `max_len` the open beams are closed as
    they are.
    """
    if not 1 <= nbest <= beam:
        raise ValueError(f"nbest must be between 1 and beam ({beam}), got {nbest}")
    B, K, device = src.size(0), beam, src.device
    penalty = lambda n: ((5.0 + n) / 6.0) ** length_penalty  # noqa: E731
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    with _inference(model):
        stepper = _Stepper(model, src, bos, use_cache)
        never = _never(model, bos)
        sent = list(range(B))  # sentence of each active group of K rows
        scores = torch.zeros(B, K, device=device)
        scores[:, 1:] = NEG_INF  # the K beams start identical: expand only the first
        # The first step decodes one row a sentence (the K beams would be K
        # equal rows); the rows become K a sentence from its choices.
        width = 1  # rows a sentence in the stepper
        last = torch.full((B,), bos, dtype=torch.long, device=device)
        hist = torch.empty(B, 0, dtype=torch.long, device=device)
        for t in range(max_len):
            nb = len(sent)
            log_p = stepper.step(last)  # (nb*width, V)
            _constrain(log_p, hist, t, never, eos, min_len, no_repeat_ngram)
            V = log_p.size(1)
            # With one row a sentence its scores serve all K beams (the other K-1 score -inf).
            cand = (scores[:, :, None] + log_p.view(nb, width, V)).view(nb, K * V)
            top_s, top_i = cand.topk(min(2 * K, K * V), dim=1)  # (nb, 2K), best first
            from_beam, tok = top_i // V, top_i % V
            is_eos = tok == eos
            closing = is_eos[:, :K] & (top_s[:, :K] > NEG_INF)
            if closing.any():
                for b, j in closing.nonzero().tolist():
                    s = top_s[b, j].item()
                    row = b * width + min(from_beam[b, j].item(), width - 1)
                    _keep_best(finished[sent[b]], Hypothesis(hist[row].tolist(), s / penalty(t + 1), s), K)
            scores, pick = top_s.masked_fill(is_eos, NEG_INF).topk(K, dim=1)  # (nb, K)
            tok = tok.gather(1, pick)
            # The stepper's row of each new beam (with one row a sentence, a
            # pick from another beam has score -inf and reads row 0).
            rows = torch.arange(0, nb * width, width, device=device)[:, None] + from_beam.gather(1, pick).clamp_max(width - 1)
            if t == max_len - 1:  # out of length: close the open beams as they are
                for b, k in (scores > NEG_INF).nonzero().tolist():
                    s = scores[b, k].item()
                    tokens = hist[rows[b, k]].tolist() + [tok[b, k].item()]
                    finished[sent[b]].append(Hypothesis(tokens, s / penalty(t + 1), s))
                break
            best_open = (scores[:, 0] / penalty(t + 1)).tolist()  # each sentence's best open beam, closed now
            open_ = [b for b in range(nb) if len(finished[sent[b]]) < K or best_open[b] > finished[sent[b]][-1].score]
            if not open_:
                break
            keep = None
            if len(open_) < nb:  # drop finished sentences from the batch
                keep = torch.tensor(open_, device=device)
                rows, scores, tok = rows[keep], scores[keep], tok[keep]
                sent = [sent[b] for b in open_]
            rows = rows.view(-1)
            if width < K:  # K rows a sentence from now on; an ungrouped model's encoder rows follow
                stepper.reorder(rows, keep if keep is not None else torch.arange(nb, device=device))
                hist, width = hist[rows], K
            elif keep is not None or not torch.equal(rows, torch.arange(rows.numel(), device=device)):
                stepper.reorder(rows, keep)
                hist = hist[rows]
            last = tok.view(-1)
            hist = torch.cat([hist, last[:, None]], 1)
    results = []
    for done in finished:
        done.sort(key=lambda h: h.score, reverse=True)
        results.append(done[:nbest] or [Hypothesis([], NEG_INF, NEG_INF)])
    return results


def _keep_best(done: list[Hypothesis], hyp: Hypothesis, k: int) -> None:
    """Add `hyp` to a sentence's closed hypotheses, keeping the best `k`, best first."""
    done.append(hyp)
    done.sort(key=lambda h: h.score, reverse=True)
    del done[k:]
