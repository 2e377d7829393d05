"""Training the reader (``make train-reader``): the reader corpus's labelled questions
in, ``rag/models/reader/`` (an int8 ONNX cross-encoder and its tokenizer) out.

1. **Data** (``evals.reader_data``): each question with the 15 candidates the real
   retriever brings, labelled by the question's answer offsets; cached.
2. **Split by document**: ``HELD_OUT_DOCS`` documents (a seeded draw) are held out;
   their questions choose the epoch and are every figure this recipe reports. The
   benchmark and the article suite are never read.
3. **Model**: the first ``layers`` layers of the packaged all-MiniLM-L6-v2 as a
   cross-encoder, its head comparing the question's and the candidate's token means:
   one logit per (question, candidate) pair (``rag.answering.reader``).
4. **Loss**, per question: a listwise softmax over a "none of them" slot (logit 0) and
   the question's positives plus sampled hard negatives (the retriever's own
   candidates), whose target is the positives, or the slot when the documents do not
   answer; plus a per-candidate binary cross-entropy. The slot teaches refusal, the
   softmax teaches choosing, the per-candidate term keeps scores comparable across
   questions (the selector thresholds them).
5. **Resumable and seeded**: a checkpoint (model, optimiser, schedule, step, the
   held-out figures so far) every ``CHECKPOINT_EVERY`` steps and at each epoch's end,
   written atomically; a killed run resumes from it. Each epoch's sample order comes
   from the seed and the epoch number alone, so a resumed run takes the same steps.
6. **Shipping**: the best epoch's weights are exported to ONNX, quantized to int8 (every
   op type, the embedding lookup too), and kept only if the int8 model picks the same
   top candidate as the fp32 one for at least ``MIN_AGREEMENT`` of held-out questions
   and loses at most ``MAX_INT8_LOSS`` of held-out top-1 and right.
   ``reader.json`` records the base model, the layers, the token budget, the data hash
   and the held-out figures, including the learning curve (held-out right after one pass
   over 1,000, 2,500 and all training questions).

    python -m evals.reader_train                   # the shipped recipe
    python -m evals.reader_train --fresh           # ignore the checkpoint
    python -m evals.reader_train --limit 40 --layers 1 --out /tmp/r   # a tiny slice
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evals.reader_data import CACHE_DIR, CANDIDATES_FILE, Question, build, data_hash
from evals.reader_eval import held_out_figures, score_questions
from evals.reader_export import (
    MAX_INT8_LOSS,
    MIN_AGREEMENT,
    agreement,
    export,
    int8_logits,
    write_held_out_suite,
    write_reader,
)
from evals.reader_labels import DOCS_DIR
from evals.reader_model import encode, make_model, tokenizer, training_loss
from evals.reader_recipe import HELD_OUT_DOCS, Recipe
from rag.answering.reader import MODEL_FILE, READER_DIR, passage_text

CHECKPOINT_EVERY = 100  # steps
CURVE_POINTS = (1000, 2500)  # training questions seen in the first pass


@dataclass
class State:
    """What a checkpoint restores besides the weights."""

    epoch: int = 0
    step: int = 0  # within the epoch
    seen: int = 0  # training questions seen in all
    evaluations: list[dict[str, Any]] = field(default_factory=list)


def split(questions: Sequence[Question], recipe: Recipe) -> tuple[list[Question], list[Question]]:
    """Training and held-out questions, by document (a seeded draw of documents)."""
    documents = sorted({q.document for q in questions})
    random.Random(recipe.seed).shuffle(documents)
    held = set(documents[: recipe.held_out_docs])
    train = [q for q in questions if q.document not in held]
    test = [q for q in questions if q.document in held]
    if recipe.limit:
        train = random.Random(recipe.seed).sample(train, min(recipe.limit, len(train)))
        test = test[: max(recipe.limit // 2, 10)]
    return train, test


def _group(q: Question, recipe: Recipe, rng: np.random.Generator) -> tuple[list[str], list[int]]:
    """A question's step: up to ``max_positives`` positives and sampled negatives."""
    positives = [c for c in q.candidates if c.label][: recipe.max_positives]
    negatives = [c for c in q.candidates if not c.label]
    take = min(len(negatives), recipe.group - len(positives))
    chosen = [negatives[int(i)] for i in sorted(rng.choice(len(negatives), take, replace=False))]
    members = positives + chosen
    return [passage_text(c) for c in members], [c.label for c in members]


def batches(
    train: Sequence[Question], recipe: Recipe, epoch: int, tok: Any
) -> Iterator[tuple[dict[str, Any], Any, Any]]:
    """An epoch's steps, in an order fixed by the seed and the epoch alone."""
    import torch

    rng = np.random.default_rng(recipe.seed + 1000 * (epoch + 1))
    order = rng.permutation(len(train))
    for lo in range(0, len(order), recipe.questions_per_step):
        chunk = [train[int(i)] for i in order[lo : lo + recipe.questions_per_step]]
        texts: list[tuple[str, str]] = []
        labels = torch.zeros(len(chunk), recipe.group, dtype=torch.long)
        mask = torch.zeros(len(chunk), recipe.group, dtype=torch.bool)
        for row, q in enumerate(chunk):
            passages, marks = _group(q, recipe, rng)
            texts += [(q.query, p) for p in passages]
            labels[row, : len(marks)] = torch.tensor(marks)
            mask[row, : len(marks)] = True
        feeds = encode(tok, texts, recipe.max_tokens)
        yield feeds, labels, mask


def _save(path: Path, payload: dict[str, Any]) -> None:
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def train(
    questions: Sequence[Question], recipe: Recipe, work: Path, data: str, fresh: bool = False
) -> tuple[Any, State, list[Question], list[np.ndarray]]:
    """Train (resuming from ``work/last.pt`` when it was made by the same recipe on the
    same data, ``data`` being its hash); the model at its best held-out epoch, with the
    held-out questions and their fp32 logits."""
    import torch

    torch.manual_seed(recipe.seed)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    train_q, held = split(questions, recipe)
    tok = tokenizer()
    model = make_model(recipe)
    head = [p for n, p in model.named_parameters() if n.startswith("head.")]
    body = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    optimiser = torch.optim.AdamW(
        [{"params": body, "lr": recipe.lr}, {"params": head, "lr": recipe.head_lr}],
        weight_decay=recipe.weight_decay,
    )
    steps_per_epoch = math.ceil(len(train_q) / recipe.questions_per_step)
    total = steps_per_epoch * recipe.epochs
    warm = max(1, int(recipe.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm)))
    )
    state = State()
    work.mkdir(parents=True, exist_ok=True)
    last = work / "last.pt"
    if last.is_file() and not fresh:
        saved = torch.load(last, weights_only=False)
        if saved["recipe"] == asdict(recipe) and saved["data"] == data:
            model.load_state_dict(saved["model"])
            optimiser.load_state_dict(saved["optimiser"])
            schedule.load_state_dict(saved["schedule"])
            state = State(**saved["state"])
            print(f"Resuming at epoch {state.epoch + 1}, step {state.step}", file=sys.stderr)
        else:
            print("The checkpoint is for another recipe or data: starting afresh", file=sys.stderr)

    def checkpoint() -> None:
        _save(
            last,
            {
                "recipe": asdict(recipe),
                "data": data,
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "schedule": schedule.state_dict(),
                "state": asdict(state),
            },
        )

    scored: dict[str, list[np.ndarray]] = {}  # each epoch's held-out logits, this process

    def evaluate(label: str) -> None:
        scored[label] = score_questions(model, held, tok, recipe)
        figures = held_out_figures(held, scored[label])
        state.evaluations.append({"at": label, "seen": state.seen, **figures})
        print(f"  held-out ({label}): {figures}", file=sys.stderr)

    model.train()
    started = time.perf_counter()
    done = 0  # steps taken by this process (a resumed run skips the others)
    while state.epoch < recipe.epochs:
        for step, (feeds, labels, mask) in enumerate(batches(train_q, recipe, state.epoch, tok)):
            if step < state.step:
                continue  # resumed: these steps are done (the order is the same)
            optimiser.zero_grad()
            # Row-major: a question with fewer candidates than ``group`` leaves its
            # slots masked, and the flat outputs fill the rest in order.
            logits = torch.zeros(labels.shape, dtype=torch.float32)
            logits = logits.masked_scatter(mask, model(**feeds))
            loss = training_loss(logits, labels, mask, recipe)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            state.step = step + 1
            before = state.seen
            state.seen += labels.shape[0]
            done += 1
            if state.step % 50 == 0:
                rate = done * labels.shape[0] / max(time.perf_counter() - started, 1e-9)
                print(
                    f"epoch {state.epoch + 1} step {state.step}/{steps_per_epoch} "
                    f"loss {loss.item():.3f} ({rate:.1f} questions/s)",
                    file=sys.stderr,
                )
            for point in CURVE_POINTS:
                if state.epoch == 0 and before < point <= state.seen:
                    evaluate(f"curve {point}")
            if state.step % CHECKPOINT_EVERY == 0:
                checkpoint()
        evaluate(f"epoch {state.epoch + 1}")
        _save(work / f"epoch{state.epoch + 1}.pt", {"model": model.state_dict()})
        state.epoch += 1
        state.step = 0
        checkpoint()
    epochs = [e for e in state.evaluations if e["at"].startswith("epoch")]
    best = max(epochs, key=lambda e: (e["right"], e["top1_answerable"]))
    chosen = int(best["at"].split()[1])
    model.load_state_dict(torch.load(work / f"epoch{chosen}.pt", weights_only=False)["model"])
    model.eval()
    state.evaluations.append({"at": "chosen", "epoch": chosen})
    chosen_logits = scored.get(f"epoch {chosen}") or score_questions(model, held, tok, recipe)
    return model, state, held, chosen_logits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m evals.reader_train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--layers", type=int, default=Recipe.layers)
    parser.add_argument("--epochs", type=int, default=Recipe.epochs)
    parser.add_argument("--max-tokens", type=int, default=Recipe.max_tokens)
    parser.add_argument("--limit", type=int, default=0, help="train on this many questions only")
    parser.add_argument(
        "--documents",
        type=int,
        default=0,
        help="only the first N documents (by name): a quick slice",
    )
    parser.add_argument(
        "--held-out",
        type=int,
        default=HELD_OUT_DOCS,
        help="documents held out for choosing the epoch (default: %(default)s)",
    )
    parser.add_argument("--candidates", type=Path, default=CANDIDATES_FILE)
    parser.add_argument("--work", type=Path, default=CACHE_DIR / "train")
    parser.add_argument("--out", type=Path, default=READER_DIR)
    parser.add_argument("--fresh", action="store_true", help="ignore the checkpoint")
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=MIN_AGREEMENT,
        help="int8 vs fp32 same top candidate, at least (default: %(default)s)",
    )
    parser.add_argument(
        "--max-int8-loss",
        type=float,
        default=MAX_INT8_LOSS,
        help="held-out top-1 or right lost to int8, at most (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    recipe = Recipe(
        layers=args.layers,
        epochs=args.epochs,
        max_tokens=args.max_tokens,
        limit=args.limit,
        held_out_docs=args.held_out,
    )
    started = time.perf_counter()
    documents = None
    if args.documents:
        documents = sorted(p.name for p in DOCS_DIR.iterdir() if p.is_file())[: args.documents]
    questions = build(args.candidates, documents)
    if not questions:
        print("No training questions: is evals/reader/cases empty?", file=sys.stderr)
        return 1
    data = data_hash(questions)
    model, state, held, fp32_logits = train(questions, recipe, args.work, data, args.fresh)
    staged = args.work / "staged"
    write_reader(staged, export(model, recipe, args.work), recipe, data, {})
    quantized = int8_logits(staged, held)
    same = agreement(quantized, fp32_logits)
    print(f"int8 vs fp32: same top candidate for {same:.3f} of held-out questions", file=sys.stderr)
    before, after = held_out_figures(held, fp32_logits), held_out_figures(held, quantized)
    loss = max(before[k] - after[k] for k in ("top1_answerable", "right"))
    if same < args.min_agreement or loss > args.max_int8_loss:
        print(
            f"The int8 model disagrees too often (< {args.min_agreement}) or loses more than "
            f"{args.max_int8_loss} of held-out top-1 or right ({loss:.3f}); not written.",
            file=sys.stderr,
        )
        return 1
    trained = {
        "recipe": asdict(recipe),
        "questions": len(questions),
        "held_out_documents": sorted({q.document for q in held}),
        "evaluations": state.evaluations,
        "int8_top1_agreement": round(same, 4),
        "held_out_int8": after,
        "minutes_last_run": round((time.perf_counter() - started) / 60, 1),
    }
    write_reader(args.out, staged / MODEL_FILE, recipe, data, trained)
    if args.out == READER_DIR:
        write_held_out_suite(sorted({q.document for q in held}))
    print(f"Wrote {args.out} ({(args.out / MODEL_FILE).stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
