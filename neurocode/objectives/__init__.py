"""Training objectives, one module per paper.

* :mod:`neurocode.objectives.ssr` -- TTFS classification loss and the sparse-firing
  regularisers M-SSR and F-SSR (Sakemi et al. 2023).
* :mod:`neurocode.objectives.rank_coding` -- rank-coding objectives (Jeffares et al. 2022).

Import the module you need; this package imports none of them eagerly.
"""
