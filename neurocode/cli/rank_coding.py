"""``neurocode rank-coding``: train an LSTM or spiking classifier with rank coding (or the
non-RC baseline) on a task and write a run folder (config, metrics, speed-accuracy sweep,
model weights; the spiking model's NetworkSpec).

Example::

    neurocode rank-coding --task spotting --model lstm --mode rc --data fresh --epochs 10 \
        --lr 3e-4 --batch-size 128 --out runs/rc-spot
"""

from __future__ import annotations

import json

from neurocode.training.rank_coding import TASKS, train_run


def register(sub):
    p = sub.add_parser("rank-coding", help="train a rank-coding (or baseline) recurrent classifier",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--task", choices=TASKS, default="spotting")
    p.add_argument("--model", choices=["lstm", "spiking"], default="lstm")
    p.add_argument("--mode", choices=["rc", "full"], default="rc",
                   help="rc: loss at the first crossing; full: loss at the last step (baseline)")
    p.add_argument("--theta", type=float, default=0.95)
    p.add_argument("--beta", type=float, default=0.0)
    p.add_argument("--activation", choices=["sigmoid", "softmax"], default="sigmoid")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", type=int, default=125)
    p.add_argument("--card", default="alif", help="hidden card of the spiking model")
    p.add_argument("--train-params", nargs="+", default=[], metavar="NAME",
                   help="spiking model: card parameters trained per neuron with the weights, e.g. "
                        "'tau_m tau_a' (hidden population) or 'out.tau_m' (outputs)")
    p.add_argument("--param-lr", type=float, default=None,
                   help="learning rate of the --train-params (default: --lr)")
    p.add_argument("--input-dropout", type=float, default=0.0,
                   help="LSTM: probability of dropping each input at each training step")
    p.add_argument("--n-train", type=int, default=None)
    p.add_argument("--data", choices=["fixed", "fresh"], default="fixed",
                   help="toy tasks: 'fresh' draws a new batch every step (seeded by --seed and the step)")
    p.add_argument("--epoch-sequences", type=int, default=100_000,
                   help="with --data fresh: sequences per epoch (between evaluations)")
    p.add_argument("--n-test", type=int, default=None,
                   help="toy tasks: held-out test sequences (default 1,000; 10,000 with --data fresh)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="run folder (checkpoints every epoch; resumed if present)")
    p.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start afresh even if --out holds a checkpoint")
    p.add_argument("--progress", action="store_true", help="show a progress bar per epoch")
    p.set_defaults(func=run)


def run(args):
    m = train_run(args.task, args.model, args.mode, args.theta, args.beta, args.epochs, args.lr,
                  args.batch_size, args.hidden, args.seed, args.n_train, out=args.out,
                  activation=args.activation, card=args.card, resume=args.resume,
                  progress=args.progress, input_dropout=args.input_dropout, train_params=args.train_params,
                  param_lr=args.param_lr, data=args.data, epoch_sequences=args.epoch_sequences,
                  n_test=args.n_test)
    out = {k: m[k] for k in ("task", "model", "mode", "accuracy", "last_step_accuracy", "steps_saved_frac",
                             "epoch_seconds", "score") if k in m}
    out["mean_decision_step_1based"] = m["mean_decision_step"] + 1
    out["steps"] = m["steps"]
    print(json.dumps(out, indent=2))
    return 0
