"""``superres bench``: how fast the project is, measured in one process run.

Six figures, each against the same run's own baseline so that a noisy machine shifts both:

1. training throughput (patches/s) of every architecture at its default and paper sizes, through
   the project's trainer and through a plain eager fp32 NCHW Adam + L1 loop on the same model and
   batch (:mod:`.training`);
2. on CUDA, the model FLOPs utilisation of EDSR-baseline x4 at batch 16 and 64 (:mod:`.peak`);
3. what the training data pipeline alone delivers, against what the trainer consumes (:mod:`.loading`);
4. the MATLAB-compatible bicubic against a straightforward numpy port of the same formula
   (:mod:`.degradation`, :mod:`.reference_bicubic`);
5. ``superres upscale`` on a 2048 x 2048 image, tiled and untiled (MP/s, peak resident memory)
   (:mod:`.inference`);
6. pipeline overhead: a no-op ``dvc repro`` and the report pipeline on existing outputs (:mod:`.pipeline`).

:mod:`.run` runs them all and judges the targets; :mod:`.report` writes the Markdown. The figures,
the targets and pass/fail per target go to a JSON file; a dated Markdown section is appended to
``BENCHMARKS.md``. A target that cannot be measured here (no CUDA, pipeline out of date) is reported
as skipped with the reason, never as passed. The package is imported only by the ``bench`` command:
``superres upscale`` never loads it.
"""
