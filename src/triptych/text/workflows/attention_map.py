"""`triptych text attention`: where the model looked while it wrote its summary.

The checkpoint summarizes the text (its own decoding settings, or those
given), then runs once more with teacher forcing on that very summary,
``forward(src, [bos] + summary, return_attention=True)``, which every model
family answers with ``(log_probs, {"cross": [per layer (B, H, T, S)],
"copy": (B, T, S) when copy attention is on})``. Row t of a map is the
attention paid while producing generated token t (the last row: the end of
the summary, when the model produced one). Layers are drawn one panel each
(or the chosen one), heads averaged (or the chosen one), copy attention as
its own panel; the picture is `triptych.plots.attention_heatmap`.

Tokens are shown as text: a byte-level BPE piece that holds only part of a
character (a CJK character is 3 bytes, often 2 or 3 pieces) is labelled
with the whole character and its part, e.g. ``这 (2/3)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from triptych.errors import SettingError, UserError
from triptych.text.config import DecodeConfig
from triptych.text.tokenizer import Tokenizer


def _byte_values() -> dict[str, int]:
    """Byte-level BPE's alphabet: the printable character standing for each byte."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[chr(b)] = b
        else:  # the unprintable bytes take the code points after 255, in order
            table[chr(256 + extra)] = b
            extra += 1
    return table


_BYTES = _byte_values()


def readable_pieces(tokenizer: Tokenizer, ids: list[int]) -> list[str]:
    """One label per token id: its text, whole characters even for partial-byte pieces.

    Pieces whose bytes can never become whole characters (what an untrained
    model may emit) are shown as their bytes, e.g. ``\\xe8``.
    """
    if tokenizer.kind != "bpe":
        return tokenizer.pieces(ids)
    special = {tokenizer.pad_id: "<pad>", tokenizer.unk_id: "<unk>", tokenizer.bos_id: "<s>", tokenizer.eos_id: "</s>"}
    labels: list[str] = []
    group: list[bytes] = []  # pieces waiting for the rest of a character

    def settle(final: bool) -> None:
        while group:
            try:
                text = b"".join(group).decode("utf-8")
            except UnicodeDecodeError as e:
                if not final and e.reason == "unexpected end of data" and len(group) < 4:
                    return  # a character cut short: the next piece may complete it
                labels.append(group.pop(0).decode("utf-8", errors="backslashreplace"))
                continue
            n = len(group)
            labels.extend([text] if n == 1 else [f"{text} ({k}/{n})" for k in range(1, n + 1)])
            group.clear()

    for i in ids:
        if i in special:
            settle(final=True)
            labels.append(special[i])
            continue
        piece = tokenizer.hf.id_to_token(i) or ""
        group.append(bytes(_BYTES.get(ch, ord("?")) for ch in piece))
        settle(final=False)
    settle(final=True)
    return labels


def _pick(value: str, count: int, option: str, word: str, what: str) -> list[int]:
    """0-based indices for an option that takes `word` (every one) or a 1-based number."""
    if value == word:
        return list(range(count))
    try:
        n = int(value)
    except ValueError:
        raise SettingError(f"{{{option}}} {value}: allowed: {word} or 1..{count}") from None
    if not 1 <= n <= count:
        raise SettingError(f"{{{option}}} {n}: this model has {count} {what}(s); allowed: {word} or 1..{count}")
    return [n - 1]


@torch.inference_mode()
def attention_maps(summarizer, text: str, decode, *, layer: str = "all", head: str = "mean") -> dict:
    """Summarize `text` and return its attention maps (numpy (T, S) each) with their labels."""
    from triptych.text.generation.generate import generate

    if not text.strip():
        raise UserError("text: the document is empty")
    model, tok = summarizer.model, summarizer.tokenizer
    src_ids = summarizer.encode_documents([text], "text")[0]
    src = torch.tensor([src_ids], device=summarizer.device)  # (1, S)
    tokens = list(generate(model, src, decode, bos=tok.bos_id, eos=tok.eos_id)[0])
    ended = len(tokens) < decode.max_len  # the summary ended with eos: its row is drawn too
    tgt_in = torch.tensor([[tok.bos_id] + tokens], device=summarizer.device)  # (1, T)
    out = model(src, tgt_in, return_attention=True)
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict) and out[1].get("cross")):
        raise UserError(f"{summarizer.directory}: model {summarizer.cfg.model.get('name')!r} returns no attention weights")
    attn = out[1]
    rows = len(tokens) + (1 if ended else 0)
    cross = [w[0, :, :rows].float().cpu() for w in attn["cross"]]  # L x (H, T, S)
    heads = cross[0].size(0)
    layers = _pick(str(layer), len(cross), "layer", "all", "layer")
    chosen_heads = _pick(str(head), heads, "head", "mean", "head")
    panels, titles = [], []
    for i in layers:
        panels.append(cross[i][chosen_heads].mean(0).numpy())  # (T, S)
        which = "" if heads == 1 else (f", mean of {heads} heads" if head == "mean" else f", head {chosen_heads[0] + 1}")
        titles.append(f"layer {i + 1} of {len(cross)}{which}")
    if attn.get("copy") is not None:
        panels.append(attn["copy"][0, :rows].float().cpu().numpy())
        titles.append("copy attention")
    target = readable_pieces(tok, tokens + ([tok.eos_id] if ended else []))
    return {
        "summary": tok.decode(tokens), "panels": panels, "titles": titles,
        "source_tokens": readable_pieces(summarizer.source_tokenizer, src_ids), "target_tokens": target,
        "layers": len(cross), "heads": heads,
    }


def draw_attention(checkpoint, text: str, output, *, layer: str = "all", head: str = "mean", decode: DecodeConfig | None = None,
                   device: str = "cpu") -> dict:
    """The `triptych text attention` command's work: maps -> picture; returns what it printed."""
    from triptych.plots import _check_path, attention_heatmap
    from triptych.text.predictor import Summarizer

    _check_path(output)  # a bad picture name fails before any model work
    summarizer = Summarizer(checkpoint, device=device)
    decode = decode or summarizer.cfg.decode
    maps = attention_maps(summarizer, text, decode, layer=layer, head=head)
    path = attention_heatmap(maps["panels"], maps["source_tokens"], maps["target_tokens"], output, titles=maps["titles"])
    print(f"triptych: wrote {path}: {len(maps['panels'])} panel(s), {len(maps['target_tokens'])} x {len(maps['source_tokens'])} tokens", file=sys.stderr)
    return {
        "output": str(Path(output)), "summary": maps["summary"], "panels": maps["titles"],
        "layers": maps["layers"], "heads": maps["heads"],
        "source_tokens": maps["source_tokens"], "target_tokens": maps["target_tokens"],
    }
