"""Rank coding (RC): train a recurrent network from the first threshold crossing of its output.

Jeffares, Guo, Stenetorp & Moraitis (ICLR 2022). A recurrent classifier reads a sequence one
step at a time and produces class outputs ``p_t = f(z_t)`` at every step (``f`` is an
element-wise sigmoid by default, or a softmax). The *decision step* of an example is the first
step ``t*`` at which any output crosses the threshold ``theta`` (the last step if none does);
the answer is the class of the output that crossed (the largest one if several cross at the
same step). RC training applies the loss only there::

    L = CE(p_t*, y) - beta * H(p_t*)

with, for sigmoid outputs, ``CE`` the one-vs-rest binary cross-entropy summed over classes and
``H`` the summed binary entropies; for softmax outputs, the categorical cross-entropy and the
categorical entropy (nats). ``beta > 0`` rewards entropy and discourages over-confident early
crossings (the paper's exact entropy term could not be read; this is our documented reading).

The truncation is real: the batch is stepped together and every example that crosses is
dropped from the *active* batch (its hidden state is ``index_select``-ed away), so neither the
forward nor the backward pass computes anything after an example's decision step.
:class:`RCResult` counts the example-steps actually computed.

A model used here follows a small step protocol (see :class:`neurocode.torch.classifiers.LSTMClassifier`):

* ``model.initial_state(batch_size)`` returns a tuple of tensors, batch first;
* ``model.step(x_t, state)`` maps inputs ``[B, F]`` and a state to ``(logits [B, C], state)``.

>>> import torch
>>> from neurocode.torch.classifiers import LSTMClassifier
>>> _ = torch.manual_seed(0)
>>> model = LSTMClassifier(3, 2, hidden=8)
>>> x, y = torch.randn(5, 10, 3), torch.tensor([0, 1, 0, 1, 1])
>>> res = rank_coding_loss(model, x, y, theta=0.6)
>>> res.decision_step.shape, res.steps_computed <= 5 * 10
(torch.Size([5]), True)
>>> res.steps_computed == int((res.decision_step + 1).sum())
True
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

ACTIVATIONS = ("sigmoid", "softmax")


@dataclass
class RCResult:
    """What one pass of :func:`rank_coding_loss` or :func:`early_exit` gives.

    Attributes
    ----------
    loss : torch.Tensor or None
        Mean loss over the batch (``None`` when no labels were given).
    logits : torch.Tensor
        ``[B, C]`` pre-activation outputs at each example's decision step.
    prediction : torch.Tensor
        ``[B]`` answer: the class whose output crossed first (argmax at the last step if none).
    decision_step : torch.Tensor
        ``[B]`` 0-based step of the decision (time to insight, in steps).
    crossed : torch.Tensor
        ``[B]`` bool: ``True`` where an output crossed ``theta`` (``False``: last step used).
    steps_computed : int
        Example-steps actually run (sum of ``decision_step + 1``).
    steps_total : int
        Example-steps a full-length pass would have run (``B * T``).
    """

    loss: torch.Tensor | None
    logits: torch.Tensor
    prediction: torch.Tensor
    decision_step: torch.Tensor
    crossed: torch.Tensor
    steps_computed: int
    steps_total: int

    @property
    def steps_saved(self):
        """Example-steps not computed thanks to the early decision."""
        return self.steps_total - self.steps_computed


def _check(x, theta, activation, beta):
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if not 0.0 < theta < 1.0:
        raise ValueError(f"threshold theta must lie in (0, 1), got {theta}")
    if beta < 0:
        raise ValueError(f"entropy weight beta must be >= 0, got {beta}")
    if x.ndim != 3:
        raise ValueError(f"inputs must have shape [batch, steps, features], got {tuple(x.shape)}")
    if x.shape[1] == 0:
        raise ValueError("inputs have zero time steps")


def activate(logits, activation="sigmoid"):
    """Output probabilities from logits: element-wise sigmoid, or softmax over classes."""
    return torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, dim=-1)


def crossing(probs, theta):
    """``[B]`` bool: does any output of each example exceed ``theta``?"""
    return (probs > theta).any(dim=-1)


def rc_loss_terms(logits, y, activation="sigmoid", beta=0.0):
    """Per-example loss ``CE - beta * H`` (nats) from logits ``[B, C]`` and labels ``[B]``.

    >>> import torch
    >>> z = torch.zeros(1, 2)
    >>> float(rc_loss_terms(z, torch.tensor([0]), "softmax"))   # log 2
    0.6931...
    >>> float(rc_loss_terms(z, torch.tensor([0]), "softmax", beta=1.0))   # log 2 - log 2
    0.0
    """
    if activation == "sigmoid":
        target = F.one_hot(y, logits.shape[-1]).to(logits.dtype)
        ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)
        if beta == 0:
            return ce
        p = torch.sigmoid(logits)
        # binary entropy from logits, stable: H = softplus(z) - p*z
        h = (F.softplus(logits) - p * logits).sum(-1)
    else:
        logp = torch.log_softmax(logits, dim=-1)
        ce = -logp.gather(-1, y[:, None])[:, 0]
        if beta == 0:
            return ce
        h = -(logp.exp() * logp).sum(-1)
    return ce - beta * h


def _run(model, x, theta, activation, stop_early=True):
    """Step ``model`` over ``x`` dropping examples from the active batch once they cross.

    Returns logits at the decision step (original order), decision steps, crossed flags and
    the number of example-steps run.
    """
    B, T = x.shape[:2]
    state = model.initial_state(B)
    active = torch.arange(B, device=x.device)
    out_logits, out_index, out_step, out_crossed = [], [], [], []
    computed = 0
    for t in range(T):
        xt = x[:, t] if active.numel() == B else x.index_select(0, active)[:, t]
        logits, state = model.step(xt, state)
        computed += active.numel()
        with torch.no_grad():
            hit = crossing(activate(logits, activation), theta)
        last = t == T - 1
        done = torch.ones_like(hit) if last else hit
        if not stop_early and not last:
            continue
        if done.any():
            sel = done.nonzero()[:, 0]
            out_logits.append(logits.index_select(0, sel))
            out_index.append(active.index_select(0, sel))
            out_step.append(torch.full((sel.numel(),), t, dtype=torch.long, device=x.device))
            out_crossed.append(hit.index_select(0, sel))
            if not last:
                keep = (~done).nonzero()[:, 0]
                active = active.index_select(0, keep)
                state = tuple(s.index_select(0, keep) for s in state)
                if active.numel() == 0:
                    break
    order = torch.cat(out_index)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.numel(), device=order.device)
    logits = torch.cat(out_logits).index_select(0, inverse)
    step = torch.cat(out_step)[inverse]
    crossed = torch.cat(out_crossed)[inverse]
    return logits, step, crossed, computed


def _result(logits, y, step, crossed, computed, total, activation, theta, beta):
    with torch.no_grad():
        probs = activate(logits, activation)
        # among outputs that crossed, the largest; where none crossed, the largest overall
        prediction = probs.argmax(-1)
    loss = None if y is None else rc_loss_terms(logits, y, activation, beta).mean()
    return RCResult(loss, logits, prediction, step, crossed, int(computed), int(total))


def rank_coding_loss(model, x, y, theta=0.95, beta=0.0, activation="sigmoid"):
    """RC training pass: loss at each example's first crossing; compute stops there.

    Parameters
    ----------
    model : module following the step protocol (module docstring)
    x : torch.Tensor
        Inputs ``[batch, steps, features]``.
    y : torch.Tensor
        Integer labels ``[batch]``.
    theta : float
        Output threshold in (0, 1) (0.95 as in the authors' sample code).
    beta : float
        Entropy reward (>= 0); loss = CE - beta * H at the decision step.
    activation : {"sigmoid", "softmax"}
        Output non-linearity used for the crossing rule and the loss.

    Returns
    -------
    RCResult
        ``loss`` is differentiable; gradients reach only the computation up to each
        example's decision step.
    """
    _check(x, theta, activation, beta)
    if y is not None and (y.ndim != 1 or y.shape[0] != x.shape[0]):
        raise ValueError(f"labels must have shape [{x.shape[0]}], got {tuple(y.shape)}")
    logits, step, crossed, computed = _run(model, x, theta, activation, stop_early=True)
    return _result(logits, y, step, crossed, computed, x.shape[0] * x.shape[1],
                   activation, theta, beta)


def last_step_loss(model, x, y, theta=0.95, beta=0.0, activation="sigmoid"):
    """Non-RC training pass (full BPTT): the whole sequence is run, loss at the last step.

    Same return type as :func:`rank_coding_loss`; ``decision_step`` is ``T - 1`` for every
    example and ``crossed`` records whether the last output exceeds ``theta``.
    """
    _check(x, theta, activation, beta)
    logits, step, crossed, computed = _run(model, x, theta, activation, stop_early=False)
    return _result(logits, y, step, crossed, computed, x.shape[0] * x.shape[1],
                   activation, theta, beta)


@torch.no_grad()
def early_exit(model, x, theta=0.95, activation="sigmoid", y=None):
    """Early-exit inference: stop reading each sequence at its first crossing.

    Returns an :class:`RCResult` (``loss`` only if ``y`` is given) with the prediction,
    decision step and the example-steps saved. The same rule reads out RC-trained and
    normally trained ("non-RC early inference") networks.
    """
    _check(x, theta, activation, 0.0)
    logits, step, crossed, computed = _run(model, x, theta, activation, stop_early=True)
    return _result(logits, y, step, crossed, computed, x.shape[0] * x.shape[1],
                   activation, theta, 0.0)


def evaluate(model, batches, theta=0.95, activation="sigmoid", score=None):
    """Early-exit accuracy over an iterable of ``(x, y)`` batches.

    With a ``score`` (e.g. :class:`neurocode.objectives.spotting.SpottingScore`), batches are
    ``(x, y, ideal_step)`` and the score's fields of all answers are added.

    Returns
    -------
    dict
        ``accuracy``, ``mean_decision_step`` (0-based), ``mean_decision_frac`` (decision step
        + 1 over sequence length), ``crossed_frac``, ``steps_saved_frac``, ``n`` (and the
        score's fields).
    """
    was_training = model.training
    model.eval()
    correct = n = steps = computed = total = crossed = 0
    frac = 0.0
    answers = []
    for batch in batches:
        x, y = batch[0], batch[1]
        if score is not None and len(batch) != 3:
            raise ValueError("evaluate() with a score needs (x, y, ideal_step) batches")
        res = early_exit(model, x, theta, activation)
        if score is not None:
            answers.append(torch.stack([res.prediction.cpu(), res.decision_step.cpu(), y.cpu(),
                                        torch.as_tensor(batch[2]).cpu()]))
        correct += int((res.prediction == y).sum())
        n += y.numel()
        steps += int(res.decision_step.sum())
        frac += float(((res.decision_step + 1).double() / x.shape[1]).sum())
        crossed += int(res.crossed.sum())
        computed += res.steps_computed
        total += res.steps_total
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluate() got no batches")
    out = {"accuracy": correct / n, "mean_decision_step": steps / n,
           "mean_decision_frac": frac / n, "crossed_frac": crossed / n,
           "steps_saved_frac": 1 - computed / total, "n": n}
    if score is not None:
        out.update(score(*torch.cat(answers, 1).numpy()))
    return out


@torch.no_grad()
def evaluate_last_step(model, batches, activation="sigmoid", score=None):
    """The answers at the last step (the whole sequence read, no early exit): the non-RC
    network's own read-out.

    Batches as in :func:`evaluate`; returns ``accuracy``, ``mean_decision_step`` (``T - 1``),
    ``n`` (and the ``score``'s fields, every answer given at the last step).
    """
    was_training = model.training
    model.eval()
    correct = n = 0
    answers = []
    for batch in batches:
        x, y = batch[0], batch[1]
        if score is not None and len(batch) != 3:
            raise ValueError("evaluate_last_step() with a score needs (x, y, ideal_step) batches")
        res = last_step_loss(model, x, None, activation=activation)
        correct += int((res.prediction == y).sum())
        n += y.numel()
        if score is not None:
            answers.append(torch.stack([res.prediction.cpu(), res.decision_step.cpu(), y.cpu(),
                                        torch.as_tensor(batch[2]).cpu()]))
    model.train(was_training)
    if n == 0:
        raise ValueError("evaluate_last_step() got no batches")
    out = {"accuracy": correct / n, "mean_decision_step": x.shape[1] - 1, "n": n}
    if score is not None:
        out.update(score(*torch.cat(answers, 1).numpy()))
    return out


def front_at(front, steps):
    """Accuracy of a speed-accuracy front (:func:`speed_accuracy_front`) at mean decision steps.

    Linear between the front's points, flat after its last one (as in
    :func:`compare_at_matched_steps`) and NaN before its fastest point (not extrapolated).

    >>> front_at(([2, 4], [0.6, 0.8]), [1, 3, 5]).tolist()
    [nan, 0.7, 0.8]
    """
    import numpy as np
    fs, fa = (np.asarray(v, float) for v in front)
    steps = np.asarray(steps, float)
    return np.where(steps < fs.min(), np.nan, np.interp(steps, fs, fa))


def train_epoch(model, optimizer, batches, mode="rc", theta=0.95, beta=0.0, activation="sigmoid",
                clip=None):
    """One optimisation pass over ``batches`` of ``(x, y)``.

    Parameters
    ----------
    mode : {"rc", "full"}
        ``"rc"``: :func:`rank_coding_loss` (loss and compute stop at the first crossing);
        ``"full"``: :func:`last_step_loss` (full BPTT, loss at the last step).
    clip : float, optional
        Gradient-norm clipping.

    Returns
    -------
    dict
        ``loss`` (mean over batches), ``accuracy`` (training predictions at the loss step),
        ``seconds`` (wall time), ``steps_computed_frac`` (example-steps run / full length).
    """
    import time
    if mode not in ("rc", "full"):
        raise ValueError(f"mode must be 'rc' or 'full', got {mode!r}")
    fn = rank_coding_loss if mode == "rc" else last_step_loss
    model.train()
    start = time.perf_counter()
    total_loss = correct = n = computed = total = 0
    n_batches = 0
    for x, y in batches:
        res = fn(model, x, y, theta=theta, beta=beta, activation=activation)
        optimizer.zero_grad(set_to_none=True)
        res.loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        total_loss += float(res.loss.detach())
        correct += int((res.prediction == y).sum())
        n += y.numel()
        computed += res.steps_computed
        total += res.steps_total
        n_batches += 1
    if n_batches == 0:
        raise ValueError("train_epoch() got no batches")
    return {"loss": total_loss / n_batches, "accuracy": correct / n,
            "seconds": time.perf_counter() - start, "steps_computed_frac": computed / total}


def speed_accuracy_front(steps, accuracy):
    """Upper envelope of speed-accuracy points: the best accuracy reached by each mean step.

    Parameters
    ----------
    steps, accuracy : array_like
        Mean decision step and accuracy of each read-out (any number of networks and
        thresholds).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Increasing steps and the non-decreasing best accuracy among points at most that
        slow (points dominated by a faster, more accurate one are dropped).

    >>> s, a = speed_accuracy_front([5, 2, 3, 4], [0.8, 0.6, 0.5, 0.7])
    >>> s.tolist(), a.tolist()
    ([2.0, 4.0, 5.0], [0.6, 0.7, 0.8])
    """
    import numpy as np
    steps, accuracy = np.asarray(steps, float), np.asarray(accuracy, float)
    if steps.shape != accuracy.shape or steps.ndim != 1 or steps.size == 0:
        raise ValueError(f"steps and accuracy must be non-empty 1-d arrays of one length, "
                         f"got shapes {steps.shape} and {accuracy.shape}")
    order = np.lexsort((-accuracy, steps))
    keep_s, keep_a = [], []
    for s, a in zip(steps[order], accuracy[order]):
        if not keep_a or a > keep_a[-1]:
            if keep_s and s == keep_s[-1]:
                continue
            keep_s.append(s)
            keep_a.append(a)
    return np.array(keep_s), np.array(keep_a)


def compare_at_matched_steps(front_a, front_b, n=6):
    """Accuracies of two speed-accuracy fronts at the same mean decision steps.

    Each front (``(steps, accuracy)`` from :func:`speed_accuracy_front`) is read as the best
    accuracy reachable at a mean decision step: linear between its points (choosing at
    random, per example, between two read-outs reaches any mix of their steps and
    accuracies) and flat after its last point (a faster read-out can always be used). Both
    are evaluated at ``n`` evenly spaced steps from the later of the two fastest points to
    the slowest point of either front; neither is extrapolated below its fastest point.

    Returns
    -------
    list of dict
        ``step``, ``accuracy_a``, ``accuracy_b``, ``difference`` (a - b).

    >>> rows = compare_at_matched_steps(([1, 3], [0.5, 0.9]), ([2, 4], [0.4, 0.8]), n=2)
    >>> [(r["step"], round(r["difference"], 3)) for r in rows]
    [(2.0, 0.3), (4.0, 0.1)]
    """
    import numpy as np
    (sa, aa), (sb, ab) = ((np.asarray(s, float), np.asarray(a, float)) for s, a in (front_a, front_b))
    lo, hi = max(sa.min(), sb.min()), max(sa.max(), sb.max())
    grid = np.linspace(lo, hi, n) if hi > lo else np.array([lo])
    ya, yb = np.interp(grid, sa, aa), np.interp(grid, sb, ab)
    return [{"step": float(g), "accuracy_a": float(a), "accuracy_b": float(b), "difference": float(a - b)}
            for g, a, b in zip(grid, ya, yb)]
